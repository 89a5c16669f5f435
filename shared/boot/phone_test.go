package boot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/syncbuf"
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

const (
	testAppID  = "wx1234567890abcdef"
	testSecret = "0123456789abcdef0123456789abcdef"
)

// phoneServer is the real phonenumber and token handlers over a memory
// store, talking to wx.
func phoneServer(t *testing.T, wxBase string, logs *syncbuf.Buffer) (phone, tok, login http.Handler) {
	t.Helper()
	cfg := config.Config{AppID: testAppID, Secret: testSecret, APIBase: wxBase, TTL: time.Hour, MaxAge: 2 * time.Hour,
		SealKey: bytes.Repeat([]byte{7}, 32)}
	svc, err := boot.NewService(cfg, memory.New(time.Now), wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil))
	if err != nil {
		t.Fatal(err)
	}
	log := api.WithLogger(slog.New(slog.NewJSONHandler(logs, nil)))
	return api.PhoneNumber(svc, log), api.Token(svc, log), api.Login(svc, log)
}

// loginAlice logs alice in through the login handler.
func loginAlice(tb testing.TB, login http.Handler, emu *emulator.Emulator) (l struct{ Skey string }) {
	tb.Helper()
	rec := serve(login, "", `{"code":"`+emu.Code("alice")+`"}`)
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &l) != nil {
		tb.Fatalf("login: got %d %s", rec.Code, rec.Body)
	}
	return l
}

func serve(h http.Handler, skey, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if skey != "" {
		req.Header.Set("Authorization", "Bearer "+skey)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestPhoneNumberErrors maps every WeChat answer of section "Phone numbers"
// through the HTTP handler: status, error code, Retry-After; and checks no
// log line or error response carries the access_token or the number.
func TestPhoneNumberErrors(t *testing.T) {
	emu := emulator.New(testAppID, testSecret)
	wx := httptest.NewServer(emu)
	defer wx.Close()
	logs := &syncbuf.Buffer{}
	phone, tok, login := phoneServer(t, wx.URL, logs)
	l := loginAlice(t, login, emu)
	var bodies []string
	tests := []struct {
		name       string
		skey, body string
		fault      *emulator.Fault
		status     int
		code       string
	}{
		{"no skey", "", `{"code":"x"}`, nil, 401, "session_required"},
		{"unknown skey", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", `{"code":"x"}`, nil, 401, "session_expired"},
		{"no code", l.Skey, `{}`, nil, 400, "invalid_request"},
		{"code not a string", l.Skey, `{"code":1}`, nil, 400, "invalid_request"},
		{"stable_token bad secret", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 40125, API: emulator.APIStableToken, Times: 1}, 502, "wechat_unavailable"},
		{"stable_token IP not allowed", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 40164, API: emulator.APIStableToken, Times: 1}, 502, "wechat_unavailable"},
		{"stable_token quota", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 45009, API: emulator.APIStableToken, Times: 1}, 502, "wechat_unavailable"},
		{"ok", l.Skey, "", nil, 200, ""},
		{"invalid code 40029", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 40029, API: emulator.APIPhoneNumber, Times: 1}, 400, "invalid_phone_code"},
		{"used code 40163", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 40163, API: emulator.APIPhoneNumber, Times: 1}, 400, "invalid_phone_code"},
		{"other app's code 40013", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 40013, API: emulator.APIPhoneNumber, Times: 1}, 400, "invalid_phone_code"},
		{"quota 45011", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 45011, API: emulator.APIPhoneNumber, Times: 1}, 429, "rate_limited"},
		{"busy once then ok", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: -1, API: emulator.APIPhoneNumber, Times: 1}, 200, ""},
		{"busy twice", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: -1, API: emulator.APIPhoneNumber, Times: 2}, 502, "wechat_unavailable"},
		{"unknown errcode", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 61234, API: emulator.APIPhoneNumber, Times: 1}, 502, "wechat_unavailable"},
		{"token revoked, replaced", l.Skey, "", &emulator.Fault{Mode: "revoke_token"}, 200, ""},
		// WeChat refuses a token stable_token then hands out again: no
		// replacement exists, so no loop either.
		{"token refused but handed out again", l.Skey, "", &emulator.Fault{Mode: "errcode", ErrCode: 42001, API: emulator.APIPhoneNumber, Times: 1}, 502, "wechat_unavailable"},
		{"garbage", l.Skey, "", &emulator.Fault{Mode: "garbage", API: emulator.APIPhoneNumber, Times: 2}, 502, "wechat_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault != nil && tt.fault.Mode == "revoke_token" {
				emu.RevokeToken("")
			} else {
				emu.SetFault(tt.fault)
				defer emu.SetFault(nil)
			}
			body := tt.body
			if body == "" {
				body = `{"code":"` + emu.PhoneCode("alice") + `"}`
			}
			rec := serve(phone, tt.skey, body)
			var e struct{ Error string }
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != tt.status || e.Error != tt.code {
				t.Fatalf("got %d %q (%s), want %d %q", rec.Code, e.Error, rec.Body, tt.status, tt.code)
			}
			if tt.code == "rate_limited" && rec.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			if tt.status == 200 && !strings.Contains(rec.Body.String(), `"countryCode":"`) {
				t.Errorf("got %s, want countryCode as a string", rec.Body)
			}
			bodies = append(bodies, rec.Body.String())
		})
	}

	// The token, from /token, is in no other response and no log line; the
	// number is in no log line.
	rec := serve(tok, "", `{}`)
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &tr) != nil || tr.AccessToken == "" || tr.ExpiresIn <= 0 {
		t.Fatalf("/token: got %d %s", rec.Code, rec.Body)
	}
	out := logs.String()
	for _, b := range bodies {
		if strings.Contains(b, tr.AccessToken) {
			t.Errorf("a /phonenumber response carries the access_token: %s", b)
		}
	}
	if strings.Contains(out, tr.AccessToken) {
		t.Error("a log line carries the access_token")
	}
	if strings.Contains(out, emu.PhoneNumber("alice")) {
		t.Error("a log line carries the phone number")
	}
	for _, code := range []string{`"wechat_token_errcode":40125`, `"wechat_token_errcode":40164`} {
		if !strings.Contains(out, code) {
			t.Errorf("no log line has %s", code)
		}
	}
}

// TestPhoneWatermarkOfAnotherApp: WeChat answering with another app's
// watermark is 502 wechat_unavailable, the number withheld.
func TestPhoneWatermarkOfAnotherApp(t *testing.T) {
	emu := emulator.New(testAppID, testSecret)
	wx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wxa/business/getuserphonenumber" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800000000","purePhoneNumber":"13800000000","countryCode":86,"watermark":{"timestamp":1700000000,"appid":"wxffffffffffffffff"}}}`))
			return
		}
		emu.ServeHTTP(w, r)
	}))
	defer wx.Close()
	logs := &syncbuf.Buffer{}
	phone, _, login := phoneServer(t, wx.URL, logs)
	l := loginAlice(t, login, emu)
	rec := serve(phone, l.Skey, `{"code":"any"}`)
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), `"wechat_unavailable"`) || strings.Contains(rec.Body.String(), "13800000000") {
		t.Fatalf("got %d %s, want 502 wechat_unavailable without the number", rec.Code, rec.Body)
	}
	if strings.Contains(logs.String(), "13800000000") {
		t.Error("a log line carries the phone number")
	}
}

// BenchmarkPhoneNumber is a warm POST /phonenumber through the HTTP handler,
// the session service, the token manager (cached token) and the WeChat
// client, against the emulator over loopback HTTP and the memory store: one
// session read and one getuserphonenumber call per request.
func BenchmarkPhoneNumber(b *testing.B) {
	emu := emulator.New(testAppID, testSecret)
	wx := httptest.NewServer(emu)
	defer wx.Close()
	cfg := config.Config{AppID: testAppID, Secret: testSecret, APIBase: wx.URL, TTL: time.Hour, MaxAge: 2 * time.Hour}
	svc, err := boot.NewService(cfg, memory.New(time.Now), wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil))
	if err != nil {
		b.Fatal(err)
	}
	log := api.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	phone, login := api.PhoneNumber(svc, log), api.Login(svc, log)
	l := loginAlice(b, login, emu)
	if rec := serve(phone, l.Skey, `{"code":"`+emu.PhoneCode("alice")+`"}`); rec.Code != http.StatusOK {
		b.Fatalf("warm-up: got %d %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		body := `{"code":"` + emu.PhoneCode("alice") + `"}`
		b.StartTimer()
		if rec := serve(phone, l.Skey, body); rec.Code != http.StatusOK {
			b.Fatalf("got %d %s", rec.Code, rec.Body)
		}
	}
}
