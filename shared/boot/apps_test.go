package boot_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

// TestPhoneNumbersPerApp: two apps, one process, one token manager: each
// app's phone numbers are fetched on its own access_token (one stable_token
// per app, with its own secret), and carry its own watermark.
func TestPhoneNumbersPerApp(t *testing.T) {
	const (
		appA, secretA = "wx00000000000000a1", "secret-a"
		appB, secretB = "wx00000000000000b2", "secret-b"
	)
	emu := emulator.New(appA, secretA, emulator.WithApp(appB, secretB))
	wx := httptest.NewServer(emu)
	defer wx.Close()
	cfg := config.Config{
		Apps:  []config.App{{ID: appA, Secret: secretA}, {ID: appB, Secret: secretB}},
		AppID: appA, Secret: secretA, APIBase: wx.URL, TTL: time.Hour, MaxAge: 2 * time.Hour,
	}
	svcs, err := boot.NewServices(cfg, memory.New(time.Now), func(a config.App) *wechat.Client {
		return wechat.NewClient(cfg.APIBase, a.ID, a.Secret, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	login := api.Login(nil, api.WithApps(svcs))
	phone := api.PhoneNumber(nil, api.WithApps(svcs))
	do := func(h http.Handler, app, skey, body string) map[string]any {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-WX-AppID", app)
		if skey != "" {
			req.Header.Set("X-WX-Skey", skey)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("%s: %d %s", app, rec.Code, rec.Body)
		}
		return out
	}
	for round := 0; round < 2; round++ {
		for _, app := range []string{appA, appB} {
			l := do(login, app, "", `{"code":"`+emu.CodeIn(app, "alice")+`"}`)
			p, _ := do(phone, app, l["skey"].(string), `{"code":"`+emu.PhoneCodeIn(app, "alice")+`"}`)["data"].(map[string]any)
			wm, _ := p["watermark"].(map[string]any)
			if wm["appid"] != app || p["purePhoneNumber"] != emu.PhoneNumber("alice") {
				t.Fatalf("%s phone: %v", app, p)
			}
		}
	}
	if n := emu.CallsTo(emulator.APIStableToken); n != 2 {
		t.Fatalf("stable_token called %d times for two apps' four phone numbers, want 2 (one per app)", n)
	}
}
