package emulator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

const (
	appA    = "wx00000000000000a1"
	secretA = "secret-a"
	appB    = "wx00000000000000b2"
	secretB = "secret-b"
)

type fixture struct {
	clock *storetest.Clock
	emu   *emulator.Emulator
	url   string
}

func newFixture(t *testing.T, opts ...emulator.Option) *fixture {
	t.Helper()
	clock := storetest.NewClock()
	emu := emulator.New(appA, secretA, append([]emulator.Option{emulator.WithClock(clock.Now), emulator.WithApp(appB, secretB)}, opts...)...)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &fixture{clock: clock, emu: emu, url: srv.URL}
}

// call sends a request and decodes the JSON answer.
func (f *fixture) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

func (f *fixture) stableToken(t *testing.T, appID, secret string, force bool) (string, float64, float64) {
	t.Helper()
	_, v := f.call(t, http.MethodPost, "/cgi-bin/stable_token",
		fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q,"force_refresh":%v}`, appID, secret, force))
	tok, _ := v["access_token"].(string)
	expiresIn, _ := v["expires_in"].(float64)
	errcode, _ := v["errcode"].(float64)
	return tok, expiresIn, errcode
}

func (f *fixture) phone(t *testing.T, token, code, openid string) map[string]any {
	t.Helper()
	_, v := f.call(t, http.MethodPost, "/wxa/business/getuserphonenumber?access_token="+url.QueryEscape(token),
		fmt.Sprintf(`{"code":%q,"openid":%q}`, code, openid))
	return v
}

func errcodeOf(v map[string]any) int {
	n, _ := v["errcode"].(float64)
	return int(n)
}

// TestStableTokenOverlap follows one token through its life: handed out
// again in normal mode, then, in its last 5 minutes, a new one beside it.
func TestStableTokenOverlap(t *testing.T) {
	f := newFixture(t)
	t1, in1, _ := f.stableToken(t, appA, secretA, false)
	if t1 == "" || in1 != 7200 {
		t.Fatalf("first call: got %q, expires_in %v; want a token for 7200s", t1, in1)
	}
	f.clock.Advance(7200*time.Second - emulator.TokenOverlap - time.Second)
	if t2, in2, _ := f.stableToken(t, appA, secretA, false); t2 != t1 || in2 != 301 {
		t.Fatalf("5m01s before expiry: got the same token %v, expires_in %v; want the same, 301", t2 == t1, in2)
	}
	f.clock.Advance(time.Second)
	t3, in3, _ := f.stableToken(t, appA, secretA, false)
	if t3 == t1 || in3 != 7200 {
		t.Fatalf("5m before expiry: got a new token %v, expires_in %v; want a new one for 7200s", t3 != t1, in3)
	}
	if !f.emu.ValidToken(t1) || !f.emu.ValidToken(t3) {
		t.Fatal("in the overlap, the old and the new token must both be valid")
	}
	if t4, _, _ := f.stableToken(t, appA, secretA, false); t4 != t3 {
		t.Fatal("in the overlap, a further call must hand out the new token again")
	}
	f.clock.Advance(emulator.TokenOverlap)
	code := f.emu.PhoneCode("alice")
	if v := f.phone(t, t1, code, f.emu.OpenID("alice")); errcodeOf(v) != 42001 {
		t.Fatalf("expired token: got %v, want errcode 42001", v)
	}
	if v := f.phone(t, t3, code, f.emu.OpenID("alice")); errcodeOf(v) != 0 {
		t.Fatalf("new token: got %v, want the number", v)
	}
	if got := f.emu.Stats()["stable_token_calls"]; got != 4 {
		t.Fatalf("stats count %d stable_token calls, want 4", got)
	}
}

func TestStableTokenRefusals(t *testing.T) {
	f := newFixture(t, emulator.WithTokenLifetime(time.Hour))
	if _, _, errcode := f.stableToken(t, appA, "wrong", false); errcode != 40125 {
		t.Fatalf("bad secret: got errcode %v, want 40125", errcode)
	}
	if _, _, errcode := f.stableToken(t, "wx0000000000000000", secretA, false); errcode != 40013 {
		t.Fatalf("unknown app: got errcode %v, want 40013", errcode)
	}
	if _, v := f.call(t, http.MethodGet, "/cgi-bin/stable_token", ""); errcodeOf(v) != 43002 {
		t.Fatalf("GET: got %v, want errcode 43002", v)
	}
	t1, in1, _ := f.stableToken(t, appA, secretA, false)
	if in1 != 3600 {
		t.Fatalf("expires_in %v, want the configured 3600", in1)
	}
	t2, _, _ := f.stableToken(t, appA, secretA, true)
	if t2 == t1 || f.emu.ValidToken(t1) || f.emu.Stats()["stable_token_forced_calls"] != 1 {
		t.Fatal("force_refresh must hand out a new token, revoke the old one and be counted")
	}
}

func TestPhoneCodes(t *testing.T) {
	f := newFixture(t)
	tokA, _, _ := f.stableToken(t, appA, secretA, false)
	tokB, _, _ := f.stableToken(t, appB, secretB, false)
	if tokA == tokB {
		t.Fatal("two apps share a token")
	}
	status, v := f.call(t, http.MethodPost, "/getPhoneNumber?user=alice", "")
	code, _ := v["code"].(string)
	if status != http.StatusOK || code == "" {
		t.Fatalf("POST /getPhoneNumber: got %d %v, want a code", status, v)
	}
	alice := f.emu.OpenID("alice")
	if v := f.phone(t, tokA, code, f.emu.OpenID("bob")); errcodeOf(v) != 40003 {
		t.Fatalf("another user's openid: got %v, want errcode 40003", v)
	}
	if v := f.phone(t, tokB, code, f.emu.OpenIDIn(appB, "alice")); errcodeOf(v) != 40029 {
		t.Fatalf("another app's token: got %v, want errcode 40029", v)
	}
	v = f.phone(t, tokA, code, alice)
	info, _ := v["phone_info"].(map[string]any)
	wm, _ := info["watermark"].(map[string]any)
	if errcodeOf(v) != 0 || info["purePhoneNumber"] != f.emu.PhoneNumber("alice") || info["countryCode"] != float64(86) || wm["appid"] != appA {
		t.Fatalf("got %v, want alice's number, countryCode 86 (a number, as WeChat's example) and app A's watermark", v)
	}
	if v := f.phone(t, tokA, code, alice); errcodeOf(v) != 40163 {
		t.Fatalf("used code: got %v, want errcode 40163", v)
	}
	late := f.emu.PhoneCode("alice")
	f.clock.Advance(emulator.PhoneCodeLifetime)
	if v := f.phone(t, tokA, late, alice); errcodeOf(v) != 40029 {
		t.Fatalf("expired code: got %v, want errcode 40029", v)
	}
	// App B's codes and openids are its own.
	_, v = f.call(t, http.MethodPost, "/getPhoneNumber?user=alice&appid="+appB, "")
	codeB, _ := v["code"].(string)
	if v := f.phone(t, tokB, codeB, f.emu.OpenIDIn(appB, "alice")); errcodeOf(v) != 0 {
		t.Fatalf("app B: got %v, want the number", v)
	}
	if status, _ := f.call(t, http.MethodPost, "/getPhoneNumber?appid=wx0000000000000000", ""); status != http.StatusNotFound {
		t.Fatalf("unknown app: got %d, want 404", status)
	}
}

func TestFaultsPerAPI(t *testing.T) {
	f := newFixture(t)
	tok, _, _ := f.stableToken(t, appA, secretA, false)
	if status, _ := f.call(t, http.MethodPost, "/fault", `{"mode":"errcode","errcode":45011,"api":"getuserphonenumber","times":1}`); status != http.StatusNoContent {
		t.Fatalf("POST /fault: got %d", status)
	}
	code := f.emu.PhoneCode("alice")
	if v := f.phone(t, tok, code, f.emu.OpenID("alice")); errcodeOf(v) != 45011 {
		t.Fatalf("got %v, want the injected 45011", v)
	}
	if _, _, errcode := f.stableToken(t, appA, secretA, false); errcode != 0 {
		t.Fatalf("stable_token got errcode %v from another API's fault", errcode)
	}
	if v := f.phone(t, tok, code, f.emu.OpenID("alice")); errcodeOf(v) != 0 {
		t.Fatalf("after the one faulty call: got %v, want the number", v)
	}
	if status, _ := f.call(t, http.MethodPost, "/fault", `{"mode":"revoke_token"}`); status != http.StatusNoContent {
		t.Fatalf("revoke_token: got %d", status)
	}
	if v := f.phone(t, tok, f.emu.PhoneCode("alice"), f.emu.OpenID("alice")); errcodeOf(v) != 40001 {
		t.Fatalf("revoked token: got %v, want errcode 40001", v)
	}
	if tok2, _, _ := f.stableToken(t, appA, secretA, false); tok2 == tok || !f.emu.ValidToken(tok2) {
		t.Fatal("after a revocation stable_token must hand out a new valid token")
	}
	if status, _ := f.call(t, http.MethodPost, "/fault", `{"mode":"errcode","errcode":-1,"api":"cgi-bin/token"}`); status != http.StatusBadRequest {
		t.Fatalf("unknown api: got %d, want 400", status)
	}
	// A fault without an api is jscode2session's, as before.
	f.call(t, http.MethodPost, "/fault", `{"mode":"errcode","errcode":40226}`)
	if _, _, errcode := f.stableToken(t, appA, secretA, false); errcode != 0 {
		t.Fatalf("stable_token got errcode %v from jscode2session's fault", errcode)
	}
	_, v := f.call(t, http.MethodGet, "/stats", "")
	for _, k := range []string{"jscode2session_calls", "stable_token_calls", "stable_token_forced_calls", "getuserphonenumber_calls"} {
		if _, ok := v[k]; !ok {
			t.Fatalf("/stats %v lacks %s", v, k)
		}
	}
	if v["stable_token_calls"] != float64(4) || v["getuserphonenumber_calls"] != float64(3) {
		t.Fatalf("/stats %v, want 4 stable_token and 3 getuserphonenumber calls", v)
	}
}

func TestLoginPerApp(t *testing.T) {
	f := newFixture(t)
	code := f.emu.CodeIn(appB, "alice")
	q := url.Values{"appid": {appA}, "secret": {secretA}, "js_code": {code}, "grant_type": {"authorization_code"}}
	if _, v := f.call(t, http.MethodGet, "/sns/jscode2session?"+q.Encode(), ""); errcodeOf(v) != 40029 {
		t.Fatalf("app B's code at app A: got %v, want errcode 40029", v)
	}
	q.Set("appid", appB)
	if _, v := f.call(t, http.MethodGet, "/sns/jscode2session?"+q.Encode(), ""); errcodeOf(v) != 40125 {
		t.Fatalf("app A's secret for app B: got %v, want errcode 40125", v)
	}
	q.Set("secret", secretB)
	_, v := f.call(t, http.MethodGet, "/sns/jscode2session?"+q.Encode(), "")
	if v["openid"] != f.emu.OpenIDIn(appB, "alice") || v["openid"] == f.emu.OpenID("alice") {
		t.Fatalf("got %v, want alice's openid in app B, not in app A", v)
	}
	enc, err := f.emu.Encrypt(f.emu.OpenIDIn(appB, "alice"), map[string]any{})
	if err != nil || enc.EncryptedData == "" {
		t.Fatalf("Encrypt for app B's user: %v", err)
	}
}
