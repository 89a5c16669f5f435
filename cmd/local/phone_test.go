package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/shared/config"
)

// TestLocalPhoneAndToken: the local server serves /phonenumber with the
// emulator's phone codes, and /token to callers on this machine only.
func TestLocalPhoneAndToken(t *testing.T) {
	base, _ := startLocal(t, map[string]string{})
	code := call(t, "POST", base+"/emulator/wx.login?user=alice", "", nil, 200)["code"].(string)
	skey := call(t, "POST", base+"/login", "", map[string]string{"code": code}, 200)["skey"].(string)
	pcode := call(t, "POST", base+"/emulator/getPhoneNumber?user=alice", "", nil, 200)["code"].(string)
	p := call(t, "POST", base+"/phonenumber", skey, map[string]string{"code": pcode}, 200)
	if d, _ := p["data"].(map[string]any); d == nil || d["countryCode"] != "86" || d["phoneNumber"] == nil {
		t.Fatalf("phonenumber: %v", p)
	}
	tok := call(t, "POST", base+"/token", "", map[string]string{}, 200)
	if s, _ := tok["access_token"].(string); s == "" {
		t.Fatalf("/token over loopback: %v", tok)
	}

	// The same handler, reached from another address (HOST=0.0.0.0 and a
	// caller on the network): /token is not there.
	cfg, err := config.LoadLocal(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := newServer(context.Background(), cfg, base, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/token", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "192.0.2.10:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "access_token") {
		t.Fatalf("/token from 192.0.2.10: got %d %s, want 404 not_found", rec.Code, rec.Body)
	}
}
