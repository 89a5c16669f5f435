package awslambda_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/shared/platform/awslambda"
)

// BenchmarkInvoke is the adapter's share of a Lambda invocation: read the
// API Gateway event, build the http.Request, serve it, and encode the proxy
// (or authorizer) response. The handler answers as validate does, with no
// work behind it, so the numbers are the translation alone.
func BenchmarkInvoke(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "UkFxdGm7oAMEVhg=")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, `{"openid":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M","unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL","expires_in":86399}`+"\n")
	})
	a := awslambda.NewHandler(h, awslambda.WithLogger(slog.New(slog.DiscardHandler)))
	skey := strings.Repeat("x", 43)
	for _, ev := range []string{"validate-httpapi", "validate-rest", "authorizer", "authorizer-token"} {
		b.Run(ev, func(b *testing.B) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "lambda", ev+".json"))
			if err != nil {
				b.Fatal(err)
			}
			payload := []byte(strings.ReplaceAll(string(raw), "${SKEY}", skey))
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := a.Invoke(ctx, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
