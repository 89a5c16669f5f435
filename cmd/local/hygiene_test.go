package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"github.com/wxsession/wxsession/internal/openapitest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/tencentyun/scf-go-lib/functioncontext"

	"github.com/wxsession/wxsession/internal/syncbuf"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/platform/awslambda"
	"github.com/wxsession/wxsession/shared/platform/scf"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

const (
	hygieneAppID  = "wx5ec7e7a1c0ffee00"
	hygieneSecret = "d4b1e5c0a9f84e2bb7c1d3e5f7091a2b" // an AppSecret's shape
)

// spyWeChat is an emulator that records every login code it is sent and
// every session_key it hands out: the secrets the run must never leak.
type spyWeChat struct {
	emu *emulator.Emulator
	mu  sync.Mutex
	// codes and sessionKeys seen, in order.
	codes, sessionKeys []string
}

func (s *spyWeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c := r.URL.Query().Get("js_code"); c != "" {
		s.mu.Lock()
		s.codes = append(s.codes, c)
		s.mu.Unlock()
	}
	tee := &teeWriter{ResponseWriter: w}
	s.emu.ServeHTTP(tee, r)
	var reply struct {
		SessionKey string `json:"session_key"`
	}
	if json.Unmarshal(tee.body.Bytes(), &reply) == nil && reply.SessionKey != "" {
		s.mu.Lock()
		s.sessionKeys = append(s.sessionKeys, reply.SessionKey)
		s.mu.Unlock()
	}
}

func (s *spyWeChat) code(user string) string {
	c := s.emu.Code(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes = append(s.codes, c)
	return c
}

type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// exchange is one product response of the run, kept for the scan.
type exchange struct {
	what    string
	isLogin bool // a /login answer: its body may carry the skey it issued
	header  http.Header
	body    []byte
}

// hygieneRun drives the local server through everything a client (and a
// broken WeChat or store) can make it do, recording every product answer.
type hygieneRun struct {
	t       *testing.T
	base    string
	wx      *spyWeChat
	client  *http.Client
	answers []exchange
	skeys   []string
}

func (h *hygieneRun) do(what, method, path string, header http.Header, body string) (int, map[string]any) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	h.answers = append(h.answers, exchange{what: what, isLogin: path == "/login", header: resp.Header, body: raw})
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if s, ok := out["skey"].(string); ok && path == "/login" {
		h.skeys = append(h.skeys, s)
	}
	return resp.StatusCode, out
}

func bearerHeader(skey string) http.Header {
	return http.Header{"Authorization": {"Bearer " + skey}, "Content-Type": {"application/json"}}
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// TestSecretHygiene captures every log line and every product answer of a
// full run on each store (every route, its errors, WeChat's faults, a store
// outage, and the Lambda and SCF adapters in front of the same server) and
// checks that no session_key (as WeChat sends it, or its raw bytes in hex,
// base64 or base64url), no AppSecret, no seal key, no login code and no skey
// appears anywhere, except each skey in the /login answer that issued it;
// and that the log is slog JSON carrying a request id, route, status,
// latency, and WeChat's errcode and rid.
func TestSecretHygiene(t *testing.T) {
	for name, env := range storeEnvs(t) {
		t.Run(name, func(t *testing.T) { runHygiene(t, name, env) })
	}
}

func runHygiene(t *testing.T, storeName string, env map[string]string) {
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Whatever logs through the default logger (the store clients, say) is
	// captured too.
	prev := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(prev) })

	wx := &spyWeChat{emu: emulator.New(hygieneAppID, hygieneSecret)}
	wxSrv := httptest.NewServer(wx)
	t.Cleanup(wxSrv.Close)

	sealKey := make([]byte, 32)
	_, _ = rand.Read(sealKey)
	env = maps(env, map[string]string{
		"WX_APPID": hygieneAppID, "WX_SECRET": hygieneSecret, "WX_API_BASE": wxSrv.URL,
		"SESSION_SEAL_KEY": base64.StdEncoding.EncodeToString(sealKey),
	})
	// The store is reached through a proxy the run cuts for an outage.
	var proxy *storetest.Proxy
	switch storeName {
	case "redis":
		u, err := url.Parse(env["REDIS_URL"])
		if err != nil {
			t.Fatal(err)
		}
		proxy = storetest.NewProxy(t, u.Host)
		u.Host = proxy.Addr()
		env["REDIS_URL"] = u.String()
	case "dynamodb":
		u, err := url.Parse(os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"))
		if err != nil {
			t.Fatal(err)
		}
		proxy = storetest.NewProxy(t, u.Host)
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://"+proxy.Addr())
	}
	cfg, err := config.LoadLocal(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	handler, _, err := newServer(context.Background(), cfg, "http://"+srv.Listener.Addr().String(), log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = handler
	srv.Start()
	t.Cleanup(srv.Close)
	h := &hygieneRun{t: t, base: srv.URL, wx: wx, client: &http.Client{Timeout: 30 * time.Second, Transport: openapitest.Transport(t, nil)}}

	// Every route, succeeding.
	code := wx.code("alice")
	_, l := h.do("login", "POST", "/login", http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"hygiene-login-1"}}, `{"code":"`+code+`"}`)
	skey, _ := l["skey"].(string)
	openID, _ := l["openid"].(string)
	if skey == "" {
		t.Fatalf("login failed: %v", l)
	}
	h.do("login, repeated code", "POST", "/login", jsonHeader, `{"code":"`+code+`"}`)
	h.do("validate", "GET", "/validate", bearerHeader(skey), "")
	h.do("validate, X-WX-Skey", "GET", "/validate", http.Header{"X-Wx-Skey": {skey}}, "")
	enc, err := wx.emu.Encrypt(openID, map[string]any{"phoneNumber": "13800138000"})
	if err != nil {
		t.Fatal(err)
	}
	encBody, _ := json.Marshal(enc)
	if st, _ := h.do("decrypt", "POST", "/decrypt", bearerHeader(skey), string(encBody)); st != 200 {
		t.Fatalf("decrypt: %d", st)
	}
	// A second login replaces the session_key: the old data is stale.
	_, l2 := h.do("login again", "POST", "/login", jsonHeader, `{"code":"`+wx.code("alice")+`"}`)
	skey2, _ := l2["skey"].(string)
	h.do("decrypt, stale", "POST", "/decrypt", bearerHeader(skey2), string(encBody))
	badSig := enc
	badSig.Signature = strings.Repeat("0", 40)
	b, _ := json.Marshal(badSig)
	h.do("decrypt, bad signature", "POST", "/decrypt", bearerHeader(skey2), string(b))
	h.do("decrypt, bad base64", "POST", "/decrypt", bearerHeader(skey2), `{"encryptedData":"%%%","iv":"`+enc.IV+`"}`)
	h.do("decrypt, no skey", "POST", "/decrypt", jsonHeader, string(encBody))

	// Client errors.
	h.do("validate, unknown skey", "GET", "/validate", bearerHeader(session.NewSkey()), "")
	h.do("validate, no skey", "GET", "/validate", nil, "")
	h.do("validate, skey in Basic", "GET", "/validate", http.Header{"Authorization": {"Basic " + skey}}, "")
	h.do("validate, two skeys", "GET", "/validate", http.Header{"Authorization": {"Bearer " + skey, "Bearer " + skey2}}, "")
	h.do("login, code in a malformed body", "POST", "/login", jsonHeader, `{"code":"`+wx.code("bob")+`",`)
	h.do("login, code twice", "POST", "/login", jsonHeader, `{"code":"`+wx.code("bob")+`","CODE":"x"}`)
	h.do("login, code with a NUL", "POST", "/login", jsonHeader, `{"code":"`+wx.code("bob")+`\u0000"}`)
	h.do("login, too large", "POST", "/login", jsonHeader, `{"code":"`+wx.code("bob")+strings.Repeat("x", 70<<10)+`"}`)
	h.do("login, wrong method", "GET", "/login", bearerHeader(skey), "")
	h.do("not found", "POST", "/login/", jsonHeader, `{"code":"`+wx.code("bob")+`"}`)

	// WeChat's faults.
	for _, f := range []emulator.Fault{
		{Mode: emulator.FaultErrCode, ErrCode: -1},
		{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1},
		{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1, ConsumeCode: true},
		{Mode: emulator.FaultErrCode, ErrCode: 40029},
		{Mode: emulator.FaultErrCode, ErrCode: 40163},
		{Mode: emulator.FaultErrCode, ErrCode: 40226},
		{Mode: emulator.FaultErrCode, ErrCode: 45011},
		{Mode: emulator.FaultErrCode, ErrCode: 40125},
		{Mode: emulator.FaultHTTPError, Status: 503},
		{Mode: emulator.FaultGarbage},
		{Mode: emulator.FaultReset},
		{Mode: emulator.FaultSlow, Delay: 50 * time.Millisecond},
	} {
		wx.emu.SetFault(&f)
		h.do("WeChat fault "+string(f.Mode), "POST", "/login", jsonHeader, `{"code":"`+wx.code("carol")+`"}`)
		wx.emu.SetFault(nil)
	}
	if storeName == "memory" {
		// A hang ends in a timeout, whose error (a *url.Error) names the
		// URL: the AppSecret and the code are in its query.
		wx.emu.SetFault(&emulator.Fault{Mode: emulator.FaultHang})
		h.do("WeChat hangs", "POST", "/login", jsonHeader, `{"code":"`+wx.code("carol")+`"}`)
		wx.emu.SetFault(nil)
	}

	// The store's server goes away, and comes back.
	if proxy != nil {
		proxy.Down()
		h.do("store down: login", "POST", "/login", jsonHeader, `{"code":"`+wx.code("dave")+`"}`)
		h.do("store down: validate", "GET", "/validate", bearerHeader(skey), "")
		h.do("store down: decrypt", "POST", "/decrypt", bearerHeader(skey2), string(encBody))
		h.do("store down: logout", "POST", "/logout", bearerHeader(skey), "")
		proxy.Up()
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			if st, _ := h.do("store back: validate", "GET", "/validate", bearerHeader(skey), ""); st == 200 {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatal("the store did not come back")
			}
		}
	}

	// The Lambda and SCF adapters in front of the same server.
	h.adapters(handler, log)

	// Logging out, and the skey refused afterwards.
	h.do("logout", "POST", "/logout", bearerHeader(skey), "")
	h.do("logout again", "POST", "/logout", bearerHeader(skey), "")
	h.do("validate after logout", "GET", "/validate", bearerHeader(skey), "")

	lines := h.scan(logs.String(), sealKey)
	t.Logf("%s: %d log lines and %d answers scanned; %d session_keys, %d login codes, %d skeys, the AppSecret and the seal key found in none",
		storeName, lines, len(h.answers), len(distinct(wx.sessionKeys)), len(distinct(wx.codes)), len(distinct(h.skeys)))
}

// adapters sends requests through the Lambda (HTTP API and authorizer) and
// SCF adapters wrapped around the local server's handler.
func (h *hygieneRun) adapters(handler http.Handler, log *slog.Logger) {
	t := h.t
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "hygiene-aws"})
	lam := awslambda.NewHandler(handler, awslambda.WithLogger(log))
	invoke := func(what string, isLogin bool, ev any) map[string]any {
		payload, _ := json.Marshal(ev)
		out, err := lam.Invoke(ctx, payload)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var r struct {
			Headers map[string]string `json:"headers"`
			Body    string            `json:"body"`
		}
		_ = json.Unmarshal(out, &r)
		// The whole envelope is scanned; a login's skey may be in its body only.
		h.answers = append(h.answers, exchange{what: what + " (envelope)", header: http.Header{}, body: withoutBody(out)})
		h.answers = append(h.answers, exchange{what: what, isLogin: isLogin, header: http.Header{}, body: []byte(r.Body)})
		var body map[string]any
		_ = json.Unmarshal([]byte(r.Body), &body)
		return body
	}
	v2 := func(method, path string, headers map[string]string, body string) events.APIGatewayV2HTTPRequest {
		return events.APIGatewayV2HTTPRequest{
			Version: "2.0", RawPath: path, Headers: headers, Body: body,
			RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "gw-hygiene", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method}},
		}
	}
	login := invoke("lambda login", true, v2("POST", "/login", map[string]string{"content-type": "application/json"}, `{"code":"`+h.wx.code("erin")+`"}`))
	skey, _ := login["skey"].(string)
	if skey == "" {
		t.Fatalf("lambda login failed: %v", login)
	}
	h.skeys = append(h.skeys, skey)
	invoke("lambda validate", false, v2("GET", "/validate", map[string]string{"authorization": "Bearer " + skey}, ""))
	invoke("lambda login, WeChat says 40029", true, v2("POST", "/login", map[string]string{"content-type": "application/json"}, `{"code":"never-issued-`+h.wx.code("erin")+`"}`))
	authz := map[string]any{
		"version": "2.0", "type": "REQUEST", "routeArn": "arn:aws:execute-api:ap-east-1:123456789012:abc/$default/GET/me",
		"headers": map[string]string{"authorization": "Bearer " + skey}, "requestContext": map[string]any{"http": map[string]any{"method": "GET"}},
	}
	payload, _ := json.Marshal(authz)
	out, err := lam.Invoke(ctx, payload)
	if err != nil || !bytes.Contains(out, []byte(`"isAuthorized":true`)) {
		t.Fatalf("authorizer: %s %v", out, err)
	}
	h.answers = append(h.answers, exchange{what: "lambda authorizer", header: http.Header{}, body: out})

	sctx := functioncontext.NewContext(context.Background(), &functioncontext.FunctionContext{RequestID: "hygiene-scf"})
	sh := scf.NewHandler(handler)
	scfInvoke := func(what string, isLogin bool, ev map[string]any) map[string]any {
		payload, _ := json.Marshal(ev)
		out, err := sh.Invoke(sctx, payload)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var r scf.Response
		_ = json.Unmarshal(out, &r)
		h.answers = append(h.answers, exchange{what: what + " (envelope)", header: http.Header{}, body: withoutBody(out)})
		h.answers = append(h.answers, exchange{what: what, isLogin: isLogin, header: http.Header{}, body: []byte(r.Body)})
		var body map[string]any
		_ = json.Unmarshal([]byte(r.Body), &body)
		return body
	}
	sl := scfInvoke("scf login", true, map[string]any{"httpMethod": "POST", "path": "/login", "headers": map[string]any{"content-type": "application/json"}, "body": `{"code":"` + h.wx.code("frank") + `"}`})
	sskey, _ := sl["skey"].(string)
	if sskey == "" {
		t.Fatalf("scf login failed: %v", sl)
	}
	h.skeys = append(h.skeys, sskey)
	scfInvoke("scf validate", false, map[string]any{"httpMethod": "GET", "path": "/validate", "headers": map[string]any{"authorization": "Bearer " + sskey}})
	scfInvoke("scf logout", false, map[string]any{"httpMethod": "POST", "path": "/logout", "headers": map[string]any{"x-wx-skey": sskey}})
}

// secretForms returns the forms a session_key could leak in: as WeChat sends
// it (base64), and its raw bytes as hex, base64 (padded or not) and base64url.
func secretForms(sessionKey string) []string {
	forms := []string{sessionKey}
	raw, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		return forms
	}
	return append(forms,
		hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
		string(raw))
}

// scan checks the log and the answers, and returns how many log lines it read.
func (h *hygieneRun) scan(logs string, sealKey []byte) int {
	t := h.t
	type secret struct{ what, value string }
	var secrets []secret
	h.wx.mu.Lock()
	for _, k := range h.wx.sessionKeys {
		for _, f := range secretForms(k) {
			secrets = append(secrets, secret{"a session_key", f})
		}
	}
	for _, c := range h.wx.codes {
		secrets = append(secrets, secret{"a login code", c})
	}
	h.wx.mu.Unlock()
	secrets = append(secrets,
		secret{"the AppSecret", hygieneSecret},
		secret{"the seal key", base64.StdEncoding.EncodeToString(sealKey)},
		secret{"the seal key", hex.EncodeToString(sealKey)},
		secret{"the emulator's AppSecret", emulatorSecret})
	for _, s := range h.skeys {
		secrets = append(secrets, secret{"an skey", s})
	}
	seen := map[string]bool{}
	secrets = slices.DeleteFunc(secrets, func(s secret) bool {
		dup := seen[s.value]
		seen[s.value] = true
		return dup
	})
	if len(h.wx.sessionKeys) == 0 || len(h.skeys) == 0 {
		t.Fatal("the run issued no session_key or no skey: nothing was checked")
	}

	// The answers: no secret, except an skey in the /login answer body.
	for _, a := range h.answers {
		var hdr strings.Builder
		_ = a.header.Write(&hdr)
		for _, s := range secrets {
			allowed := a.isLogin && s.what == "an skey" // the skey a login issued, in its body
			if strings.Contains(hdr.String(), s.value) || (!allowed && bytes.Contains(a.body, []byte(s.value))) {
				t.Errorf("the answer to %q carries %s", a.what, s.what)
			}
		}
	}

	// The log: slog JSON, every request line with the fields an operator
	// needs, and no secret.
	var lines, requests int
	seenErrcodes := map[float64]bool{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		lines++
		for _, s := range secrets {
			if strings.Contains(line, s.value) {
				t.Errorf("log line %d carries %s: %.200s", lines, s.what, line)
			}
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON: %.200s", lines, line)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %d has no %q: %.200s", lines, k, line)
			}
		}
		if rec["msg"] != "request" {
			continue
		}
		requests++
		for _, k := range []string{"request_id", "method", "route", "status", "latency_ms"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("request log line %d has no %q: %.200s", lines, k, line)
			}
		}
		if code, ok := rec["wechat_errcode"].(float64); ok {
			seenErrcodes[code] = true
			if rid, _ := rec["wechat_rid"].(string); code != 0 && rid == "" {
				t.Errorf("log line %d has WeChat's errcode %v but not its rid: %.200s", lines, code, line)
			}
		}
		if st, _ := rec["status"].(float64); st >= 400 && rec["error"] == nil {
			t.Errorf("log line %d of a %v answer names no error code: %.200s", lines, st, line)
		}
	}
	if !strings.Contains(logs, `"request_id":"hygiene-login-1"`) {
		t.Errorf("the X-Request-Id a client sent is not the log line's request_id")
	}
	for _, code := range []float64{0, -1, 40029, 40163, 40226, 45011, 40125} {
		if !seenErrcodes[code] {
			t.Errorf("no log line carries wechat_errcode %v", code)
		}
	}
	if requests < len(h.answers)/2 {
		t.Errorf("%d request log lines for %d answers", requests, len(h.answers))
	}
	return lines
}

// withoutBody returns a gateway response envelope without its body field.
func withoutBody(envelope []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(envelope, &m) != nil {
		return envelope
	}
	delete(m, "body")
	b, _ := json.Marshal(m)
	return b
}

func distinct(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func maps(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
