package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

// BenchmarkValidate is GET /validate through the HTTP handler, the session
// service and the memory store: everything a validate costs but the store's
// round trip. Log lines are formatted as in production and discarded.
func BenchmarkValidate(b *testing.B) {
	st := memory.New(nil)
	cfg := config.Config{AppID: appID, Secret: secret, APIBase: "http://127.0.0.1:1", TTL: 24 * time.Hour, MaxAge: 720 * time.Hour}
	svc, err := boot.NewService(cfg, st, wechat.NewClient(cfg.APIBase, appID, secret, nil))
	if err != nil {
		b.Fatal(err)
	}
	skey := session.NewSkey()
	now := time.Now()
	if err := st.PutSession(context.Background(), session.SkeyHash(skey), session.Session{
		OpenID: "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", UnionID: "o6_bmasdasdsad6_2sgVt7hMZOPfL", CreatedAt: now, ExpiresAt: now.Add(cfg.TTL),
	}); err != nil {
		b.Fatal(err)
	}
	h := api.Validate(svc, api.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	for _, sc := range []struct {
		name string
		skey string
		want int
	}{
		{"live", skey, http.StatusOK},
		{"unknown", session.NewSkey(), http.StatusUnauthorized},
	} {
		b.Run(sc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/validate", nil)
			req.Header.Set("Authorization", "Bearer "+sc.skey)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != sc.want {
					b.Fatalf("got %d, want %d", rec.Code, sc.want)
				}
			}
		})
	}
}
