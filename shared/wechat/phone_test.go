package wechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/reqlog"
	"github.com/wxsession/wxsession/shared/wechat"
)

func TestStableToken(t *testing.T) {
	emu, c := setup(t)
	tok, err := c.StableToken(context.Background(), appID, secret)
	if err != nil {
		t.Fatalf("StableToken: %v", err)
	}
	if !emu.ValidToken(tok.Token) || tok.ExpiresIn != emulator.DefaultTokenLifetime {
		t.Fatalf("got a token WeChat accepts: %v, expires_in %s; want a valid one for %s", emu.ValidToken(tok.Token), tok.ExpiresIn, emulator.DefaultTokenLifetime)
	}
	again, err := c.StableToken(context.Background(), appID, secret)
	if err != nil || again.Token != tok.Token {
		t.Fatalf("second call: got another token or %v; want the same token in normal mode", err)
	}
	if got := emu.Stats()["stable_token_forced_calls"]; got != 0 {
		t.Fatalf("%d calls forced a refresh, want none", got)
	}
	if s := fmt.Sprint(tok) + fmt.Sprintf("%+v", tok); strings.Contains(s, tok.Token) {
		t.Fatalf("fmt prints the token: %s", s)
	}
}

// TestStableTokenRequest checks the request itself against a server that
// records it: POST JSON, normal mode, never cgi-bin/token.
func TestStableTokenRequest(t *testing.T) {
	var got struct {
		path, method, contentType string
		body                      map[string]any
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.path, got.method, got.contentType = r.URL.Path, r.Method, r.Header.Get("Content-Type")
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		_, _ = w.Write([]byte(`{"access_token":"T","expires_in":7200}`))
	}))
	defer srv.Close()
	c := wechat.NewClient(srv.URL, appID, secret, nil)
	if _, err := c.StableToken(context.Background(), appID, secret); err != nil {
		t.Fatalf("StableToken: %v", err)
	}
	want := map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": false}
	if got.path != "/cgi-bin/stable_token" || got.method != http.MethodPost || got.contentType != "application/json" || fmt.Sprint(got.body) != fmt.Sprint(want) {
		t.Fatalf("got %s %s (%s) %v, want POST /cgi-bin/stable_token application/json %v", got.method, got.path, got.contentType, got.body, want)
	}
}

func TestStableTokenErrors(t *testing.T) {
	tests := []struct {
		name      string
		fault     *emulator.Fault
		secret    string
		wantCalls int
		errcode   int // the errcode the log line must carry; 0 for none
	}{
		{name: "40125 bad secret", secret: "wrong", wantCalls: 1, errcode: 40125},
		{name: "40164 IP not allowed", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40164}, wantCalls: 1, errcode: 40164},
		{name: "45009 daily quota", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 45009}, wantCalls: 1, errcode: 45009},
		{name: "45011 minute quota", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 45011}, wantCalls: 1, errcode: 45011},
		{name: "-1 twice", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1}, wantCalls: 2, errcode: -1},
		{name: "unknown errcode", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 48001}, wantCalls: 1, errcode: 48001},
		{name: "hang", fault: &emulator.Fault{Mode: emulator.FaultHang}, wantCalls: 1},
		{name: "HTTP 502", fault: &emulator.Fault{Mode: emulator.FaultHTTPError, Status: 502}, wantCalls: 1},
		{name: "not JSON", fault: &emulator.Fault{Mode: emulator.FaultGarbage}, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, c := setup(t)
			if tt.fault != nil {
				f := *tt.fault
				f.API = emulator.APIStableToken
				emu.SetFault(&f)
			}
			s := secret
			if tt.secret != "" {
				s = tt.secret
			}
			ctx, fields := reqlog.NewContext(context.Background())
			tok, err := c.StableToken(ctx, appID, s)
			if apperr.CodeOf(err) != apperr.WeChatUnavailable || tok.Token != "" {
				t.Fatalf("got %v (token %v), want wechat_unavailable and no token", err, tok.Token != "")
			}
			if n := emu.CallsTo(emulator.APIStableToken); n != tt.wantCalls {
				t.Fatalf("stable_token called %d times, want %d", n, tt.wantCalls)
			}
			if tt.errcode != 0 && !hasAttrValue(fields, "wechat_token_errcode", tt.errcode) {
				t.Fatalf("log fields %v lack wechat_token_errcode=%d", fields.Attrs(), tt.errcode)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q leaks the secret", err)
			}
		})
	}
}

func TestStableTokenRetryOnBusy(t *testing.T) {
	emu, c := setup(t)
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1, API: emulator.APIStableToken})
	tok, err := c.StableToken(context.Background(), appID, secret)
	if err != nil || !emu.ValidToken(tok.Token) {
		t.Fatalf("got %v, want the retry to hand out a valid token", err)
	}
	if n := emu.CallsTo(emulator.APIStableToken); n != 2 {
		t.Fatalf("stable_token called %d times, want 2", n)
	}
}

// phoneSetup returns an emulator, a client and a valid access token.
func phoneSetup(t *testing.T) (*emulator.Emulator, *wechat.Client, string) {
	t.Helper()
	emu, c := setup(t)
	tok, err := c.StableToken(context.Background(), appID, secret)
	if err != nil {
		t.Fatalf("StableToken: %v", err)
	}
	return emu, c, tok.Token
}

func TestPhoneNumber(t *testing.T) {
	emu, c, token := phoneSetup(t)
	ctx, fields := reqlog.NewContext(context.Background())
	p, err := c.PhoneNumber(ctx, token, emu.PhoneCode("alice"), emu.OpenID("alice"))
	if err != nil {
		t.Fatalf("PhoneNumber: %v", err)
	}
	want := wechat.Phone{PhoneNumber: emu.PhoneNumber("alice"), PurePhoneNumber: emu.PhoneNumber("alice"), CountryCode: "86",
		Watermark: wechat.Watermark{AppID: appID, Timestamp: p.Watermark.Timestamp}}
	if p != want || p.Watermark.Timestamp == 0 {
		t.Fatalf("got %#v, want %#v with a timestamp", p, want)
	}
	// The answer marshals with countryCode as a string.
	b, _ := json.Marshal(p)
	if !strings.Contains(string(b), `"countryCode":"86"`) {
		t.Fatalf("marshalled %s, want countryCode as a string", b)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("line", slog.Any("phone", p), slog.Any("fields", fields.Attrs()))
	if s := logged.String() + fmt.Sprint(p); strings.Contains(s, p.PhoneNumber) || strings.Contains(s, token) {
		t.Fatalf("a log line or fmt output shows the number or the token: %s", s)
	}
}

func TestPhoneNumberCountryCodeString(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{{`"86"`, "86"}, {`86`, "86"}, {`1`, "1"}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+1 2025550123","purePhoneNumber":"2025550123","countryCode":%s,"watermark":{"timestamp":1637744274,"appid":%q}}}`, tt.raw, appID)
		}))
		p, err := wechat.NewClient(srv.URL, appID, secret, nil).PhoneNumber(context.Background(), "T", "code", "openid")
		srv.Close()
		if err != nil || p.CountryCode != tt.want {
			t.Fatalf("countryCode %s: got %q, %v; want %q", tt.raw, p.CountryCode, err, tt.want)
		}
	}
}

func TestPhoneNumberErrors(t *testing.T) {
	tests := []struct {
		name       string
		fault      *emulator.Fault
		code       func(emu *emulator.Emulator) string
		openid     func(emu *emulator.Emulator) string
		token      func(emu *emulator.Emulator, token string) string
		useFirst   bool
		want       apperr.Code
		refused    bool
		retryAfter bool
		wantCalls  int
	}{
		{name: "unknown code", code: func(*emulator.Emulator) string { return "no-such-code" }, want: apperr.InvalidPhoneCode, wantCalls: 1},
		{name: "used code", useFirst: true, want: apperr.InvalidPhoneCode, wantCalls: 2},
		{name: "40029", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40029}, want: apperr.InvalidPhoneCode, wantCalls: 1},
		{name: "40163", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40163}, want: apperr.InvalidPhoneCode, wantCalls: 1},
		{name: "40013", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40013}, want: apperr.InvalidPhoneCode, wantCalls: 1},
		{name: "45011 rate limited", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 45011}, want: apperr.RateLimited, retryAfter: true, wantCalls: 1},
		{name: "-1 twice", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1}, want: apperr.WeChatUnavailable, wantCalls: 2},
		{name: "-1 then the code is gone", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1, ConsumeCode: true}, want: apperr.WeChatUnavailable, wantCalls: 2},
		{name: "40001 revoked token", token: func(emu *emulator.Emulator, tok string) string { emu.RevokeToken(""); return tok }, want: apperr.WeChatUnavailable, refused: true, wantCalls: 1},
		{name: "40001 unknown token", token: func(*emulator.Emulator, string) string { return "not-a-token" }, want: apperr.WeChatUnavailable, refused: true, wantCalls: 1},
		{name: "42001", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 42001}, want: apperr.WeChatUnavailable, refused: true, wantCalls: 1},
		{name: "40014", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40014}, want: apperr.WeChatUnavailable, refused: true, wantCalls: 1},
		{name: "another user's code", openid: func(emu *emulator.Emulator) string { return emu.OpenID("bob") }, want: apperr.WeChatUnavailable, wantCalls: 1},
		{name: "unknown errcode", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 48001}, want: apperr.WeChatUnavailable, wantCalls: 1},
		{name: "hang", fault: &emulator.Fault{Mode: emulator.FaultHang}, want: apperr.WeChatUnavailable, wantCalls: 1},
		{name: "HTTP 500", fault: &emulator.Fault{Mode: emulator.FaultHTTPError}, want: apperr.WeChatUnavailable, wantCalls: 1},
		{name: "not JSON", fault: &emulator.Fault{Mode: emulator.FaultGarbage}, want: apperr.WeChatUnavailable, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, c, token := phoneSetup(t)
			code, openid := emu.PhoneCode("alice"), emu.OpenID("alice")
			if tt.code != nil {
				code = tt.code(emu)
			}
			if tt.openid != nil {
				openid = tt.openid(emu)
			}
			if tt.token != nil {
				token = tt.token(emu, token)
			}
			if tt.useFirst {
				if _, err := c.PhoneNumber(context.Background(), token, code, openid); err != nil {
					t.Fatalf("first use: %v", err)
				}
			}
			if tt.fault != nil {
				f := *tt.fault
				f.API = emulator.APIPhoneNumber
				emu.SetFault(&f)
			}
			ctx, fields := reqlog.NewContext(context.Background())
			_, err := c.PhoneNumber(ctx, token, code, openid)
			if got := apperr.CodeOf(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			var refused interface{ TokenRefused() bool }
			if got := errors.As(err, &refused) && refused.TokenRefused(); got != tt.refused {
				t.Fatalf("error %v: token refused = %v, want %v", err, got, tt.refused)
			}
			if e := asAppErr(err); tt.retryAfter != (e.RetryAfter > 0) {
				t.Fatalf("RetryAfter = %s, want it set: %v", e.RetryAfter, tt.retryAfter)
			}
			if n := emu.CallsTo(emulator.APIPhoneNumber); n != tt.wantCalls {
				t.Fatalf("getuserphonenumber called %d times, want %d", n, tt.wantCalls)
			}
			var logged strings.Builder
			slog.New(slog.NewJSONHandler(&logged, nil)).Info("line", slog.String("err", err.Error()), slog.Any("fields", fields.Attrs()))
			if strings.Contains(logged.String(), token) || strings.Contains(logged.String(), "access_token=") {
				t.Fatalf("the log line carries the access_token: %s", logged.String())
			}
		})
	}
}

// TestPhoneNumberTransportErrorRedacted checks that a transport error, whose
// URL carries the access_token, reaches no error message.
func TestPhoneNumberTransportErrorRedacted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens any more: the dial fails
	c := wechat.NewClient(base, appID, secret, nil)
	const token = "ACCESS-TOKEN-THAT-MUST-NOT-LEAK"
	_, err := c.PhoneNumber(context.Background(), token, "code", "openid")
	if apperr.CodeOf(err) != apperr.WeChatUnavailable || strings.Contains(err.Error(), token) {
		t.Fatalf("got %v, want wechat_unavailable without the token", err)
	}
	_, err = c.StableToken(context.Background(), appID, secret)
	if apperr.CodeOf(err) != apperr.WeChatUnavailable || strings.Contains(err.Error(), secret) {
		t.Fatalf("got %v, want wechat_unavailable without the secret", err)
	}
}

func TestPhoneNumberDeadline(t *testing.T) {
	emu, c, token := phoneSetup(t)
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1, API: emulator.APIPhoneNumber})
	// Time for one attempt (past ReplyReserve), not for a retry.
	ctx, cancel := context.WithTimeout(context.Background(), wechat.ReplyReserve+400*time.Millisecond)
	defer cancel()
	_, err := c.PhoneNumber(ctx, token, emu.PhoneCode("alice"), emu.OpenID("alice"))
	if apperr.CodeOf(err) != apperr.WeChatUnavailable || emu.CallsTo(emulator.APIPhoneNumber) != 1 {
		t.Fatalf("got %v after %d calls, want wechat_unavailable after 1 (no time to retry)", err, emu.CallsTo(emulator.APIPhoneNumber))
	}
}

func hasAttrValue(f *reqlog.Fields, key string, want int) bool {
	for _, a := range f.Attrs() {
		if a.Key == key && a.Value.Int64() == int64(want) {
			return true
		}
	}
	return false
}
