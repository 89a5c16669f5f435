package openapitest_test

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

	"github.com/wxsession/wxsession/internal/openapitest"
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

const appID = "wx0123456789abcdef"

// local is the local server as cmd/local wires it (every route of api.All
// over the memory store, WeChat played by the emulator at /emulator over
// real HTTP), with the store wrapped so a test can make it fail.
type local struct {
	url    string
	emu    *emulator.Emulator
	store  *faulty.Store
	client *http.Client
	t      *testing.T
}

func startLocal(t *testing.T) *local {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	cfg, err := config.LoadLocal(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.AppID, cfg.Secret, cfg.APIBase = appID, "wxsession-openapi-test", base+"/emulator"
	emu := emulator.New(cfg.AppID, cfg.Secret)
	st := faulty.New(memory.New(time.Now))
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc, err := boot.NewService(cfg, st, wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil), session.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	product, emuHandler := api.All(svc, api.WithLogger(log)), http.StripPrefix("/emulator", emu)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/emulator/") {
			emuHandler.ServeHTTP(w, r)
			return
		}
		product.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	// Every response this client receives is checked against the document.
	return &local{url: base, emu: emu, store: st, client: &http.Client{Transport: openapitest.Transport(t, nil)}, t: t}
}

// do sends a request and fails the test unless it gets want; it returns the
// response and its JSON body (nil when there is none).
func (l *local) do(method, path string, header http.Header, body string, want int) (*http.Response, map[string]any) {
	l.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, l.url+path, rd)
	if err != nil {
		l.t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.client.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		l.t.Fatalf("%s %s: got %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			l.t.Fatalf("%s %s: %q is not a JSON object", method, path, raw)
		}
	}
	return resp, out
}

// wantError is do for an error answer with the given code.
func (l *local) wantError(method, path string, header http.Header, body string, status int, code string) *http.Response {
	l.t.Helper()
	resp, e := l.do(method, path, header, body, status)
	if e["error"] != code {
		l.t.Fatalf("%s %s: error %v, want %s", method, path, e["error"], code)
	}
	return resp
}

func (l *local) login(user string) (skey, openID string) {
	l.t.Helper()
	_, s := l.do("POST", "/login", nil, mustJSON(l.t, map[string]string{"code": l.emu.Code(user)}), 200)
	return s["skey"].(string), s["openid"].(string)
}

func bearer(skey string) http.Header { return http.Header{"Authorization": {"Bearer " + skey}} }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEveryResponseMatchesTheDocument walks every implemented route through
// its successes and every error a client can provoke, and checks each
// response (status, headers, body) against docs/openapi.yaml.
func TestEveryResponseMatchesTheDocument(t *testing.T) {
	l := startLocal(t)
	big := `{"code":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`

	// POST /login.
	code := l.emu.Code("alice")
	resp, s := l.do("POST", "/login", http.Header{"X-Request-Id": {"openapi-walk-1"}}, mustJSON(t, map[string]string{"code": code}), 200)
	if resp.Header.Get("X-Request-Id") != "openapi-walk-1" {
		t.Fatalf("X-Request-Id %q, want the one sent", resp.Header.Get("X-Request-Id"))
	}
	skey, openID := s["skey"].(string), s["openid"].(string)
	if _, again := l.do("POST", "/login", nil, mustJSON(t, map[string]string{"code": code}), 200); again["skey"] != skey {
		t.Fatal("a repeated code gave another session")
	}
	for _, bad := range []struct{ body, contentType string }{
		{`{"code":`, ""},                // malformed JSON
		{`{}`, ""},                      // missing code
		{`{"code":42}`, ""},             // wrong type
		{`{"code":"a","code":"b"}`, ""}, // duplicate key
		{`[]`, ""},                      // not an object
		{`{"code":"x"}`, "text/plain"},
	} {
		l.wantError("POST", "/login", http.Header{"Content-Type": {bad.contentType}}, bad.body, 400, "invalid_request")
	}
	l.wantError("POST", "/login", nil, `{"code":"not-a-code-wechat-issued"}`, 401, "invalid_code")
	l.wantError("POST", "/login", nil, mustJSON(t, map[string]string{"code": code + "x"}), 401, "invalid_code")
	l.wantError("POST", "/login", nil, big, 413, "payload_too_large")
	l.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40226, Times: 1})
	l.wantError("POST", "/login", nil, mustJSON(t, map[string]string{"code": l.emu.Code("mallory")}), 403, "code_blocked")
	l.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 45011, Times: 1})
	if r := l.wantError("POST", "/login", nil, mustJSON(t, map[string]string{"code": l.emu.Code("bob")}), 429, "rate_limited"); r.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	l.emu.SetFault(&emulator.Fault{Mode: emulator.FaultHTTPError, Status: 500})
	l.wantError("POST", "/login", nil, mustJSON(t, map[string]string{"code": l.emu.Code("bob")}), 502, "wechat_unavailable")
	l.emu.SetFault(nil)
	l.store.Set(faulty.Fault{Mode: faulty.Fail, Ops: []faulty.Op{faulty.ClaimCode}, Times: 1})
	l.wantError("POST", "/login", nil, mustJSON(t, map[string]string{"code": l.emu.Code("bob")}), 503, "store_unavailable")
	l.store.Set(faulty.Fault{Mode: faulty.Panic, Ops: []faulty.Op{faulty.ClaimCode}, Times: 1})
	l.wantError("POST", "/login", nil, mustJSON(t, map[string]string{"code": l.emu.Code("bob")}), 500, "internal")
	l.store.Clear()

	// GET /validate, with either header.
	if _, v := l.do("GET", "/validate", bearer(skey), "", 200); v["openid"] != openID {
		t.Fatalf("validate: %v", v)
	}
	l.do("GET", "/validate", http.Header{"X-WX-Skey": {skey}}, "", 200)
	l.wantError("GET", "/validate", nil, "", 401, "session_required")
	l.wantError("GET", "/validate", bearer("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), "", 401, "session_expired")
	l.wantError("GET", "/validate", http.Header{"Authorization": {"Bearer " + skey, "Bearer " + skey}}, "", 401, "session_expired")
	l.store.Set(faulty.Fault{Mode: faulty.Fail, Ops: []faulty.Op{faulty.GetSession}, Times: 1})
	l.wantError("GET", "/validate", bearer(skey), "", 503, "store_unavailable")
	l.store.Set(faulty.Fault{Mode: faulty.Panic, Ops: []faulty.Op{faulty.GetSession}, Times: 1})
	l.wantError("GET", "/validate", bearer(skey), "", 500, "internal")
	l.store.Clear()

	// POST /decrypt: WeRun-shaped data, and data with rawData and signature.
	enc, err := l.emu.Encrypt(openID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, d := l.do("POST", "/decrypt", bearer(skey), mustJSON(t, enc), 200); d["data"].(map[string]any)["watermark"] == nil {
		t.Fatalf("decrypt: %v", d)
	}
	signed, err := l.emu.Encrypt(openID, map[string]any{"nickName": "Alice", "gender": 2})
	if err != nil {
		t.Fatal(err)
	}
	if signed.RawData == "" || signed.Signature == "" {
		t.Fatalf("the emulator sent no rawData/signature: %+v", signed)
	}
	l.do("POST", "/decrypt", bearer(skey), mustJSON(t, signed), 200)
	l.wantError("POST", "/decrypt", nil, mustJSON(t, enc), 401, "session_required")
	l.wantError("POST", "/decrypt", bearer("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), mustJSON(t, enc), 401, "session_expired")
	l.wantError("POST", "/decrypt", bearer(skey), `{"encryptedData":"%%%","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 400, "invalid_request")
	l.wantError("POST", "/decrypt", bearer(skey), `{"encryptedData":"AAAA","iv":"AAAA"}`, 400, "invalid_request")
	l.wantError("POST", "/decrypt", bearer(skey), `{"iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 400, "invalid_request")
	l.wantError("POST", "/decrypt", bearer(skey), big, 413, "payload_too_large")
	tampered := signed
	tampered.Signature = strings.Repeat("0", 40)
	l.wantError("POST", "/decrypt", bearer(skey), mustJSON(t, tampered), 409, "stale_session_key")
	l.store.Set(faulty.Fault{Mode: faulty.Fail, Ops: []faulty.Op{faulty.GetSession}, Times: 1})
	l.wantError("POST", "/decrypt", bearer(skey), mustJSON(t, enc), 503, "store_unavailable")
	l.store.Clear()
	// A new login replaces the session_key: data from before is stale.
	skey2, _ := l.login("alice")
	l.wantError("POST", "/decrypt", bearer(skey2), mustJSON(t, enc), 409, "stale_session_key")

	// POST /logout.
	l.do("POST", "/logout", bearer(skey), "", 204)
	l.do("POST", "/logout", bearer(skey), "", 204) // already ended: still 204
	l.do("POST", "/logout", http.Header{"X-WX-Skey": {skey2}}, "{}", 204)
	l.wantError("POST", "/logout", nil, "", 401, "session_required")
	l.wantError("GET", "/validate", bearer(skey), "", 401, "session_expired")
	skey3, _ := l.login("carol")
	l.store.Set(faulty.Fault{Mode: faulty.Fail, Ops: []faulty.Op{faulty.DeleteSession, faulty.GetSession}, Times: 1})
	l.wantError("POST", "/logout", bearer(skey3), "", 503, "store_unavailable")
	l.store.Clear()

	// Outside the documented operations: 404 and 405.
	for _, p := range []string{"/", "/nope", "/login/", "//login", "/LOGIN", "/login/../login"} {
		l.wantError("POST", p, nil, "", 404, "not_found")
	}
	for _, mp := range [][2]string{{"GET", "/login"}, {"DELETE", "/validate"}, {"POST", "/validate"}, {"PUT", "/decrypt"}, {"GET", "/logout"}} {
		if r := l.wantError(mp[0], mp[1], nil, "", 405, "method_not_allowed"); r.Header.Get("Allow") == "" {
			t.Fatalf("%s %s: 405 without Allow", mp[0], mp[1])
		}
	}
}
