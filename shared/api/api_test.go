package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
	"github.com/wxsession/wxsession/shared/wxcrypto"
)

const (
	appID  = "wx0123456789abcdef"
	secret = "app-secret-for-api-tests"
)

type env struct {
	emu  *emulator.Emulator
	h    http.Handler
	logs *bytes.Buffer
}

// newEnv is every route over st (a fresh memory store if nil), talking to
// an emulator.
func newEnv(t *testing.T, st session.Store, opts ...session.Option) *env {
	t.Helper()
	emu := emulator.New(appID, secret)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	cfg := config.Config{AppID: appID, Secret: secret, APIBase: srv.URL, TTL: 24 * time.Hour, MaxAge: 720 * time.Hour}
	if st == nil {
		st = memory.New(nil)
	}
	wx := wechat.NewClient(srv.URL, appID, secret, nil)
	wx.AttemptTimeout = 300 * time.Millisecond
	svc, err := boot.NewService(cfg, st, wx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	return &env{emu: emu, h: api.All(svc, api.WithLogger(log)), logs: logs}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object", method, path, rec.Body.String())
		}
	}
	return res
}

func (e *env) login(t *testing.T, user string) (skey, openID string) {
	t.Helper()
	r := e.do(t, "POST", "/login", `{"code":"`+e.emu.Code(user)+`"}`)
	if r.status != 200 {
		t.Fatalf("login: got %d %s", r.status, r.raw)
	}
	return r.body["skey"].(string), r.body["openid"].(string)
}

func bearer(skey string) []string { return []string{"Authorization", "Bearer " + skey} }

func TestHappyPath(t *testing.T) {
	e := newEnv(t, nil)
	skey, openID := e.login(t, "alice")

	r := e.do(t, "GET", "/validate", "", bearer(skey)...)
	if r.status != 200 || r.body["openid"] != openID || r.body["unionid"] == nil || r.body["expires_in"].(float64) < 86000 {
		t.Fatalf("validate: got %d %s", r.status, r.raw)
	}
	if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Fatalf("Content-Type = %q", got)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Request-Id") == "" {
		t.Fatalf("missing Cache-Control: no-store or X-Request-Id: %v", r.header)
	}
	r = e.do(t, "GET", "/validate", "", "X-WX-Skey", skey)
	if r.status != 200 {
		t.Fatalf("validate with X-WX-Skey: got %d %s", r.status, r.raw)
	}

	enc, err := e.emu.Encrypt(openID, map[string]any{"phoneNumber": "13800138000"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(enc)
	r = e.do(t, "POST", "/decrypt", string(body), bearer(skey)...)
	data, _ := r.body["data"].(map[string]any)
	if r.status != 200 || data["phoneNumber"] != "13800138000" || data["watermark"] == nil {
		t.Fatalf("decrypt: got %d %s", r.status, r.raw)
	}

	r = e.do(t, "POST", "/logout", "", bearer(skey)...)
	if r.status != 204 || r.raw != "" {
		t.Fatalf("logout: got %d %q, want 204 with no body", r.status, r.raw)
	}
	if r := e.do(t, "GET", "/validate", "", bearer(skey)...); r.status != 401 || r.body["error"] != "session_expired" {
		t.Fatalf("validate after logout: got %d %s", r.status, r.raw)
	}
}

// TestLogoutBody: POST /logout takes no body, {} or {"all": false} (this
// session) or {"all": true} (every session of the user); anything else is
// invalid_request, and a request without an skey is session_required before
// its body is looked at.
func TestLogoutBody(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{"", "{}", `{"all":false}`} {
		phone1, _ := e.login(t, "alice")
		phone2, _ := e.login(t, "alice")
		if r := e.do(t, "POST", "/logout", body, bearer(phone1)...); r.status != 204 {
			t.Fatalf("logout with body %q: got %d %s, want 204", body, r.status, r.raw)
		}
		if r := e.do(t, "GET", "/validate", "", bearer(phone2)...); r.status != 200 {
			t.Fatalf("the other device after a single logout (body %q): got %d %s, want 200", body, r.status, r.raw)
		}
	}
	phones := []string{}
	for range 3 {
		skey, _ := e.login(t, "bob")
		phones = append(phones, skey)
	}
	carol, _ := e.login(t, "carol")
	if r := e.do(t, "POST", "/logout", `{"all":true}`, bearer(phones[1])...); r.status != 204 || r.raw != "" {
		t.Fatalf("logout everywhere: got %d %q, want 204 with no body", r.status, r.raw)
	}
	for i, skey := range phones {
		if r := e.do(t, "GET", "/validate", "", bearer(skey)...); r.status != 401 || r.body["error"] != "session_expired" {
			t.Fatalf("bob's device %d after logout everywhere: got %d %s, want 401 session_expired", i, r.status, r.raw)
		}
	}
	if r := e.do(t, "GET", "/validate", "", bearer(carol)...); r.status != 200 {
		t.Fatalf("another user after bob's logout everywhere: got %d %s", r.status, r.raw)
	}
	// An ended or unknown skey: nothing to end.
	if r := e.do(t, "POST", "/logout", `{"all":true}`, bearer(phones[0])...); r.status != 204 {
		t.Fatalf("logout everywhere with an ended skey: got %d %s, want 204", r.status, r.raw)
	}
	if r := e.do(t, "POST", "/logout", `{"all":true}`); r.status != 401 || r.body["error"] != "session_required" {
		t.Fatalf("logout everywhere without an skey: got %d %s, want 401 session_required", r.status, r.raw)
	}
	if r := e.do(t, "POST", "/logout", `not json`); r.status != 401 || r.body["error"] != "session_required" {
		t.Fatalf("logout with a bad body and no skey: got %d %s, want 401 session_required", r.status, r.raw)
	}
	for _, body := range []string{`{"all":"yes"}`, `{"all":1}`, `[true]`, `{"all":true,"all":false}`, `nope`} {
		if r := e.do(t, "POST", "/logout", body, bearer(carol)...); r.status != 400 || r.body["error"] != "invalid_request" {
			t.Fatalf("logout with body %q: got %d %s, want 400 invalid_request", body, r.status, r.raw)
		}
	}
	if r := e.do(t, "GET", "/validate", "", bearer(carol)...); r.status != 200 {
		t.Fatalf("a refused logout ended the session: got %d %s", r.status, r.raw)
	}
}

// TestErrorContract produces every row of the README's error table.
func TestErrorContract(t *testing.T) {
	e := newEnv(t, nil)
	skey, openID := e.login(t, "alice")
	enc, _ := e.emu.Encrypt(openID, nil)
	goodBody, _ := json.Marshal(enc)
	key, _ := e.emu.SessionKey(openID)
	otherApp, _ := emulator.EncryptWith(key, map[string]any{"watermark": map[string]any{"appid": "wxother"}}, "{}")
	otherAppBody, _ := json.Marshal(otherApp)

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     []string
		fault      *emulator.Fault
		wantStatus int
		wantCode   apperr.Code
	}{
		{"malformed JSON", "POST", "/login", `{"code":`, nil, nil, 400, apperr.InvalidRequest},
		{"missing field", "POST", "/login", `{}`, nil, nil, 400, apperr.InvalidRequest},
		{"wrong type", "POST", "/login", `{"code":123}`, nil, nil, 400, apperr.InvalidRequest},
		{"not an object", "POST", "/login", `["code"]`, nil, nil, 400, apperr.InvalidRequest},
		{"duplicate key", "POST", "/login", `{"code":"a","code":"b"}`, nil, nil, 400, apperr.InvalidRequest},
		{"trailing data", "POST", "/login", `{"code":"a"} {}`, nil, nil, 400, apperr.InvalidRequest},
		{"empty body", "POST", "/login", ``, nil, nil, 400, apperr.InvalidRequest},
		{"deep nesting", "POST", "/login", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, nil, nil, 400, apperr.InvalidRequest},
		{"form content type", "POST", "/login", `{"code":"a"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, nil, 400, apperr.InvalidRequest},
		{"bad base64", "POST", "/decrypt", `{"encryptedData":"%%%","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, bearer(skey), nil, 400, apperr.InvalidRequest},
		{"iv not 16 bytes", "POST", "/decrypt", `{"encryptedData":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAA"}`, bearer(skey), nil, 400, apperr.InvalidRequest},
		{"partial block", "POST", "/decrypt", `{"encryptedData":"AAAAAAAA","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, bearer(skey), nil, 400, apperr.InvalidRequest},
		{"no skey", "GET", "/validate", "", nil, nil, 401, apperr.SessionRequired},
		{"no skey on decrypt, bad body", "POST", "/decrypt", `{`, nil, nil, 401, apperr.SessionRequired},
		{"no skey on logout", "POST", "/logout", "", nil, nil, 401, apperr.SessionRequired},
		{"Basic auth is no skey", "GET", "/validate", "", []string{"Authorization", "Basic " + skey}, nil, 401, apperr.SessionRequired},
		{"unknown skey", "GET", "/validate", "", bearer(session.NewSkey()), nil, 401, apperr.SessionExpired},
		{"garbage skey", "GET", "/validate", "", bearer("not-a-real-skey"), nil, 401, apperr.SessionExpired},
		{"invalid code", "POST", "/login", `{"code":"never-issued"}`, nil, nil, 401, apperr.InvalidCode},
		{"code already used", "POST", "/login", `{"code":"x"}`, nil, &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40163}, 401, apperr.InvalidCode},
		{"high-risk user", "POST", "/login", `{"code":"x"}`, nil, &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40226}, 403, apperr.CodeBlocked},
		{"unknown path", "GET", "/nope", "", nil, nil, 404, apperr.NotFound},
		{"trailing slash", "POST", "/login/", `{"code":"a"}`, nil, nil, 404, apperr.NotFound},
		{"wrong method", "GET", "/login", "", nil, nil, 405, apperr.MethodNotAllowed},
		{"stale session_key", "POST", "/decrypt", string(otherAppBody), bearer(skey), nil, 409, apperr.StaleSessionKey},
		{"body over 64 KiB", "POST", "/login", `{"code":"` + strings.Repeat("a", 70<<10) + `"}`, nil, nil, 413, apperr.PayloadTooLarge},
		{"rate limited", "POST", "/login", `{"code":"x"}`, nil, &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 45011}, 429, apperr.RateLimited},
		{"WeChat -1 twice", "POST", "/login", `{"code":"x"}`, nil, &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1}, 502, apperr.WeChatUnavailable},
		{"WeChat hangs", "POST", "/login", `{"code":"x"}`, nil, &emulator.Fault{Mode: emulator.FaultHang}, 502, apperr.WeChatUnavailable},
		{"WeChat HTTP 500", "POST", "/login", `{"code":"x"}`, nil, &emulator.Fault{Mode: emulator.FaultHTTPError}, 502, apperr.WeChatUnavailable},
		{"WeChat not JSON", "POST", "/login", `{"code":"x"}`, nil, &emulator.Fault{Mode: emulator.FaultGarbage}, 502, apperr.WeChatUnavailable},
		{"WeChat unknown errcode", "POST", "/login", `{"code":"x"}`, nil, &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40013}, 502, apperr.WeChatUnavailable},
		{"decrypt ok", "POST", "/decrypt", string(goodBody), bearer(skey), nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.emu.SetFault(tt.fault)
			defer e.emu.SetFault(nil)
			r := e.do(t, tt.method, tt.path, tt.body, tt.header...)
			if r.status != tt.wantStatus || (tt.wantCode != "" && r.body["error"] != string(tt.wantCode)) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tt.wantStatus, tt.wantCode)
			}
			if tt.wantCode != "" && r.body["message"] == "" {
				t.Fatalf("error without a message: %s", r.raw)
			}
			switch tt.wantStatus {
			case 405:
				if r.header.Get("Allow") != "POST" {
					t.Fatalf("405 without Allow: POST: %v", r.header)
				}
			case 429:
				if r.header.Get("Retry-After") == "" {
					t.Fatalf("429 without Retry-After: %v", r.header)
				}
			}
		})
	}
}

func TestStoreUnavailable(t *testing.T) {
	down := faulty.New(memory.New(nil)) // fails every call, as an unreachable store does
	down.Set(faulty.Fault{Mode: faulty.Fail})
	e := newEnv(t, down)
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/validate", ""},
		{"POST", "/logout", ""},
		{"POST", "/login", `{"code":"abc"}`},
	} {
		r := e.do(t, tt.method, tt.path, tt.body, bearer(session.NewSkey())...)
		if r.status != 503 || r.body["error"] != "store_unavailable" {
			t.Fatalf("%s %s: got %d %s, want 503 store_unavailable", tt.method, tt.path, r.status, r.raw)
		}
		if strings.Contains(r.raw, faulty.ErrInjected.Error()) {
			t.Fatalf("503 body carries the cause: %s", r.raw)
		}
	}
}

// panicky is a Service that fails in ways the handlers must contain.
type panicky struct{ api.Service }

func (panicky) Validate(context.Context, string) (session.Live, error) {
	panic("boom: secret detail")
}
func (panicky) Logout(context.Context, string) error {
	return errors.New("unexpected: secret detail")
}
func (panicky) Decrypt(context.Context, string, func() (wxcrypto.Input, error)) (json.RawMessage, error) {
	return nil, apperr.Wrap(errors.New("secret detail"), apperr.Internal, "secret detail in the message too")
}

func TestInternalErrorsCarryNoDetail(t *testing.T) {
	logs := &bytes.Buffer{}
	h := api.All(panicky{}, api.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/validate", ""},
		{"POST", "/logout", ""},
		{"POST", "/decrypt", `{"encryptedData":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`},
	} {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		req.Header.Set("Authorization", "Bearer "+session.NewSkey())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		want := `{"error":"internal","message":"internal error"}`
		if rec.Code != 500 || strings.TrimSpace(rec.Body.String()) != want {
			t.Fatalf("%s %s: got %d %s, want 500 %s", tt.method, tt.path, rec.Code, rec.Body, want)
		}
	}
	if !strings.Contains(logs.String(), "boom: secret detail") {
		t.Fatalf("the panic's detail is not in the log: %s", logs)
	}
}

// TestPathForms: a one-route handler (a function's) answers its route at its
// own path, at "/" and under a prefix, which is what Tencent function URLs
// behind a custom domain, AWS function URLs and REST API stages may hand it;
// every other path, and every path but the exact ones on the all-routes
// handler (the local server's), is 404 not_found. A wrong method proves a
// path matched without calling the service: 405 with Allow.
func TestPathForms(t *testing.T) {
	svc := panicky{}
	handlers := map[string]struct {
		h      http.Handler
		route  string
		method string
	}{
		"login":    {api.Login(svc), "/login", "POST"},
		"validate": {api.Validate(svc), "/validate", "GET"},
		"decrypt":  {api.Decrypt(svc), "/decrypt", "POST"},
		"logout":   {api.Logout(svc), "/logout", "POST"},
	}
	forms := []struct {
		name  string
		path  func(route string) string
		match bool
	}{
		{"its route", func(r string) string { return r }, true},
		{"root", func(string) string { return "/" }, true},
		{"one prefix segment", func(r string) string { return "/api" + r }, true},
		{"two prefix segments", func(r string) string { return "/prod/v1" + r }, true},
		{"trailing slash", func(r string) string { return r + "/" }, false},
		{"double slash", func(r string) string { return "/" + r }, false},
		{"empty prefix segment", func(r string) string { return "/api/" + r }, false},
		{"dot segment", func(r string) string { return "/." + r }, false},
		{"dot-dot segment", func(r string) string { return "/x/.." + r }, false},
		{"route inside a segment", func(r string) string { return "/api" + r[1:] }, false},
		{"route then more", func(r string) string { return r + "/more" }, false},
		{"upper case", func(r string) string { return strings.ToUpper(r) }, false},
		{"empty", func(string) string { return "" }, false},
	}
	wrongMethod := map[string]string{"POST": "GET", "GET": "POST"}
	serve := func(h http.Handler, method, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/", nil)
		req.URL.Path = path
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for name, fn := range handlers {
		for _, form := range forms {
			t.Run(name+"/"+form.name, func(t *testing.T) {
				path := form.path(fn.route)
				rec := serve(fn.h, wrongMethod[fn.method], path)
				want, code := http.StatusNotFound, "not_found"
				if form.match {
					want, code = http.StatusMethodNotAllowed, "method_not_allowed"
				}
				if rec.Code != want || !strings.Contains(rec.Body.String(), code) {
					t.Fatalf("%s function, %s %q: got %d %s, want %d %s", name, wrongMethod[fn.method], path, rec.Code, rec.Body, want, code)
				}
				if form.match && rec.Header().Get("Allow") != fn.method {
					t.Fatalf("%s function, %q: Allow %q, want %q", name, path, rec.Header().Get("Allow"), fn.method)
				}
			})
		}
		// Another function's route, in any form, is not this one's.
		for other, o := range handlers {
			if other == name {
				continue
			}
			for _, path := range []string{o.route, "/api" + o.route} {
				if rec := serve(fn.h, "POST", path); rec.Code != http.StatusNotFound {
					t.Fatalf("%s function answered %s with %d, want 404", name, path, rec.Code)
				}
			}
		}
	}
	// The all-routes handler matches exactly.
	all := api.All(svc)
	for _, path := range []string{"/", "/api/login", "/prod/validate"} {
		if rec := serve(all, "PUT", path); rec.Code != http.StatusNotFound {
			t.Fatalf("the all-routes handler answered PUT %s with %d, want 404", path, rec.Code)
		}
	}
	if rec := serve(all, "PUT", "/login"); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("the all-routes handler answered PUT /login with %d, want 405", rec.Code)
	}
}

func TestLogLines(t *testing.T) {
	e := newEnv(t, nil)
	skey, openID := e.login(t, "alice")
	e.do(t, "GET", "/validate", "", append(bearer(skey), "X-Request-Id", "req-123")...)
	e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40226})
	e.do(t, "POST", "/login", `{"code":"x"}`)

	key, _ := e.emu.SessionKey(openID)
	logs := e.logs.String()
	for _, s := range []string{skey, key, secret} {
		if strings.Contains(logs, s) {
			t.Fatalf("the log carries a secret")
		}
	}
	var sawRequestID, sawErrcode bool
	dec := json.NewDecoder(strings.NewReader(logs))
	for {
		var line map[string]any
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("log is not JSON lines: %v", err)
		}
		for _, k := range []string{"request_id", "route", "status", "latency_ms"} {
			if _, ok := line[k]; !ok {
				t.Fatalf("log line without %s: %v", k, line)
			}
		}
		sawRequestID = sawRequestID || line["request_id"] == "req-123"
		sawErrcode = sawErrcode || (line["wechat_errcode"] == float64(40226) && line["wechat_rid"] != nil)
	}
	if !sawRequestID || !sawErrcode {
		t.Fatalf("request id from X-Request-Id seen: %v; WeChat errcode and rid seen: %v", sawRequestID, sawErrcode)
	}
}
