package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

const (
	appA, secretA = "wx00000000000000a1", "secret-a"
	appB, secretB = "wx00000000000000b2", "secret-b"
)

// twoApps serves both apps from one handler over one memory store, with an
// emulator playing both (each with its own secret).
func twoApps(t *testing.T) (http.Handler, *emulator.Emulator) {
	t.Helper()
	emu := emulator.New(appA, secretA, emulator.WithApp(appB, secretB))
	wx := httptest.NewServer(emu)
	t.Cleanup(wx.Close)
	cfg := config.Config{
		Apps:   []config.App{{ID: appA, Secret: secretA}, {ID: appB, Secret: secretB}},
		AppID:  appA,
		Secret: secretA,
		TTL:    time.Hour, MaxAge: 2 * time.Hour,
	}
	svcs, err := boot.NewServices(cfg, memory.New(time.Now), func(a config.App) *wechat.Client {
		return wechat.NewClient(wx.URL, a.ID, a.Secret, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	return api.All(nil, api.WithApps(svcs)), emu
}

func call(t *testing.T, h http.Handler, method, path string, hdr map[string]string, body any) (int, map[string]any) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	r := httptest.NewRequest(method, path, bytes.NewReader(b))
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func TestSeveralAppsLoginAndIsolation(t *testing.T) {
	h, emu := twoApps(t)
	logins := map[string]map[string]any{}
	for _, app := range []string{appA, appB} {
		status, body := call(t, h, "POST", "/login", map[string]string{"X-WX-AppID": app}, map[string]string{"code": emu.CodeIn(app, "alice")})
		if status != 200 {
			t.Fatalf("%s login: %d %v", app, status, body)
		}
		if body["appid"] != app || body["openid"] != emu.OpenIDIn(app, "alice") {
			t.Fatalf("%s login answered %v, want appid %s and openid %s", app, body, app, emu.OpenIDIn(app, "alice"))
		}
		logins[app] = body
	}
	if logins[appA]["openid"] == logins[appB]["openid"] {
		t.Fatal("one openid in both apps")
	}
	// Each app's skey validates for its own app, by header or by Referer.
	for _, app := range []string{appA, appB} {
		skey := logins[app]["skey"].(string)
		for _, hdr := range []map[string]string{
			{"X-WX-AppID": app, "X-WX-Skey": skey},
			{"Referer": "https://servicewechat.com/" + app + "/3/page-frame.html", "X-WX-Skey": skey},
		} {
			status, body := call(t, h, "GET", "/validate", hdr, nil)
			if status != 200 || body["appid"] != app {
				t.Fatalf("%s validate %v: %d %v", app, hdr, status, body)
			}
		}
	}
	// An skey of app B is refused for app A, and the other way round.
	for app, other := range map[string]string{appA: appB, appB: appA} {
		status, body := call(t, h, "GET", "/validate", map[string]string{"X-WX-AppID": app, "X-WX-Skey": logins[other]["skey"].(string)}, nil)
		if status != 401 || body["error"] != "session_expired" {
			t.Fatalf("%s's skey at %s: %d %v, want 401 session_expired", other, app, status, body)
		}
		enc, err := emu.Encrypt(logins[other]["openid"].(string), nil)
		if err != nil {
			t.Fatal(err)
		}
		status, body = call(t, h, "POST", "/decrypt", map[string]string{"X-WX-AppID": app, "X-WX-Skey": logins[other]["skey"].(string)}, enc)
		if status != 401 || body["error"] != "session_expired" {
			t.Fatalf("%s's skey at %s /decrypt: %d %v, want 401 session_expired", other, app, status, body)
		}
	}
	// No app named, with two served; an app not served.
	for _, hdr := range []map[string]string{
		{"X-WX-Skey": logins[appA]["skey"].(string)},
		{"X-WX-AppID": "wx00000000000000c3", "X-WX-Skey": logins[appA]["skey"].(string)},
		{"Referer": "https://servicewechat.com/wx00000000000000c3/1/page-frame.html"},
	} {
		status, body := call(t, h, "GET", "/validate", hdr, nil)
		if status != 400 || body["error"] != "invalid_request" {
			t.Fatalf("validate %v: %d %v, want 400 invalid_request", hdr, status, body)
		}
	}
	status, body := call(t, h, "POST", "/login", nil, map[string]string{"code": emu.CodeIn(appA, "bob")})
	if status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("login naming no app: %d %v", status, body)
	}
}

func TestSeveralAppsDecryptWatermark(t *testing.T) {
	h, emu := twoApps(t)
	for _, app := range []string{appA, appB} {
		_, l := call(t, h, "POST", "/login", map[string]string{"X-WX-AppID": app}, map[string]string{"code": emu.CodeIn(app, "carol")})
		enc, err := emu.Encrypt(emu.OpenIDIn(app, "carol"), nil)
		if err != nil {
			t.Fatal(err)
		}
		status, body := call(t, h, "POST", "/decrypt", map[string]string{"X-WX-AppID": app, "X-WX-Skey": l["skey"].(string)}, enc)
		if status != 200 {
			t.Fatalf("%s decrypt: %d %v", app, status, body)
		}
		wm, _ := body["data"].(map[string]any)["watermark"].(map[string]any)
		if wm["appid"] != app {
			t.Fatalf("%s decrypt: watermark %v", app, wm)
		}
	}
}

func TestOneAppRefusesAnother(t *testing.T) {
	emu := emulator.New(appA, secretA)
	wx := httptest.NewServer(emu)
	defer wx.Close()
	cfg := config.Config{AppID: appA, Secret: secretA, TTL: time.Hour, MaxAge: 2 * time.Hour}
	svcs, err := boot.NewServices(cfg, memory.New(time.Now), func(a config.App) *wechat.Client {
		return wechat.NewClient(wx.URL, a.ID, a.Secret, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	h := api.All(nil, api.WithApps(svcs))
	// The only app needs no naming.
	status, l := call(t, h, "POST", "/login", nil, map[string]string{"code": emu.Code("dave")})
	if status != 200 || l["appid"] != appA {
		t.Fatalf("login: %d %v", status, l)
	}
	status, body := call(t, h, "GET", "/validate", map[string]string{"X-WX-AppID": appB, "X-WX-Skey": l["skey"].(string)}, nil)
	if status != 400 || body["error"] != "invalid_request" {
		t.Fatalf("another app: %d %v", status, body)
	}
}
