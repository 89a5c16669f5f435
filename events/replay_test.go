// Package events_test replays every sample event in this directory through the
// runtime adapters and the real API handlers, in process, against one memory
// store and a WeChat emulator, and asserts each answer.
//
// Every file is replayed twice:
//   - as written, which is what `sam local invoke -e` sends: the placeholders
//     (${CODE}, ${SKEY}, ${ENCRYPTED_DATA}, ${IV}) are no live code or
//     session, so the answers are the contract's refusals;
//   - live: a user logs in first through the same adapter, and the
//     placeholders are replaced with a fresh code, the session's skey and data
//     the emulator encrypted with the user's session_key.
package events_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/tencentyun/scf-go-lib/functioncontext"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/platform/awslambda"
	"github.com/wxsession/wxsession/shared/platform/scf"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

const (
	appID  = "wx1234567890abcdef"
	secret = "0123456789abcdef0123456789abcdef"
	user   = "alice"
)

// format is how an event's answer is read.
type format int

const (
	httpAPI        format = iota // API Gateway HTTP API, payload 2.0
	restAPI                      // API Gateway REST API, payload 1.0
	authorizer                   // HTTP API Lambda authorizer, simple response
	restAuthorizer               // REST API Lambda authorizer (TOKEN or REQUEST), IAM policy
	scfURL                       // Tencent SCF function URL
	scfAPIGW                     // Tencent SCF API Gateway, integrated response
)

// outcome is an asserted answer: a status and error code, or for an
// authorizer whether the request is let through (a REST API authorizer
// refuses with the error "Unauthorized", which API Gateway answers 401).
type outcome struct {
	status     int
	errCode    string // "" for a success
	authorized bool
}

// sample is what a file in events/ is and how it must be answered.
type sample struct {
	function string // login, validate, decrypt, logout
	format   format
	asIs     outcome // replayed as written
	live     outcome // replayed with a live code / session
	// loginFile is the login event of the same runtime, used to log in first.
	loginFile string
}

var (
	loginRefused   = outcome{status: 401, errCode: "invalid_code"}
	sessionExpired = outcome{status: 401, errCode: "session_expired"}
	badRequest     = outcome{status: 400, errCode: "invalid_request"}
	ok             = outcome{status: 200}
	noContent      = outcome{status: 204}
	allowed        = outcome{authorized: true}
	denied         = outcome{authorized: false}
)

// samples lists every file in events/; TestEveryFileIsAsserted keeps it honest.
var samples = map[string]sample{
	"lambda/login-httpapi.json":        {"login", httpAPI, loginRefused, ok, "lambda/login-httpapi.json"},
	"lambda/login-httpapi-base64.json": {"login", httpAPI, loginRefused, ok, "lambda/login-httpapi.json"},
	"lambda/validate-httpapi.json":     {"validate", httpAPI, sessionExpired, ok, "lambda/login-httpapi.json"},
	// The placeholders are not base64, so decrypt refuses the body before
	// looking at the session.
	"lambda/decrypt-httpapi.json":         {"decrypt", httpAPI, badRequest, ok, "lambda/login-httpapi.json"},
	"lambda/logout-httpapi.json":          {"logout", httpAPI, noContent, noContent, "lambda/login-httpapi.json"},
	"lambda/login-rest.json":              {"login", restAPI, loginRefused, ok, "lambda/login-rest.json"},
	"lambda/validate-rest.json":           {"validate", restAPI, sessionExpired, ok, "lambda/login-rest.json"},
	"lambda/decrypt-rest.json":            {"decrypt", restAPI, badRequest, ok, "lambda/login-rest.json"},
	"lambda/logout-rest.json":             {"logout", restAPI, noContent, noContent, "lambda/login-rest.json"},
	"lambda/authorizer.json":              {"validate", authorizer, denied, allowed, "lambda/login-httpapi.json"},
	"lambda/authorizer-unknown-skey.json": {"validate", authorizer, denied, denied, "lambda/login-httpapi.json"},
	"lambda/authorizer-token.json":        {"validate", restAuthorizer, denied, allowed, "lambda/login-rest.json"},
	"lambda/authorizer-request.json":      {"validate", restAuthorizer, denied, allowed, "lambda/login-rest.json"},
	"scf/login.json":                      {"login", scfURL, loginRefused, ok, "scf/login.json"},
	"scf/validate.json":                   {"validate", scfURL, sessionExpired, ok, "scf/login.json"},
	"scf/validate-query.json":             {"validate", scfURL, sessionExpired, ok, "scf/login.json"},
	"scf/decrypt.json":                    {"decrypt", scfURL, badRequest, ok, "scf/login.json"},
	"scf/logout.json":                     {"logout", scfURL, noContent, noContent, "scf/login.json"},
	"scf/apigw-login-base64.json":         {"login", scfAPIGW, loginRefused, ok, "scf/apigw-login-base64.json"},
	"scf/apigw-validate.json":             {"validate", scfAPIGW, sessionExpired, ok, "scf/apigw-login-base64.json"},
}

// world is one wxsession deployment in process: the four functions' handlers
// over one store, and the WeChat emulator they call.
type world struct {
	emu      *emulator.Emulator
	handlers map[string]http.Handler
}

func newWorld(t *testing.T) *world {
	t.Helper()
	emu := emulator.New(appID, secret)
	wx := httptest.NewServer(emu)
	t.Cleanup(wx.Close)
	env := map[string]string{"WX_APPID": appID, "WX_SECRET": secret, "WX_API_BASE": wx.URL, "SESSION_STORE": "memory"}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := boot.NewService(cfg, memory.New(time.Now), wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil), session.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	opt := api.WithLogger(log)
	return &world{emu: emu, handlers: map[string]http.Handler{
		"login": api.Login(svc, opt), "validate": api.Validate(svc, opt),
		"decrypt": api.Decrypt(svc, opt), "logout": api.Logout(svc, opt),
	}}
}

// answer is a replayed event's answer, whatever its format.
type answer struct {
	status     int
	header     map[string]string
	body       string
	authorized bool
	context    map[string]any
	principal  string // a REST API authorizer's principalId
}

// replay sends an event through the adapter its format names, to the
// function's handler.
func (w *world) replay(t *testing.T, s sample, payload []byte) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := w.handlers[s.function]
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var out []byte
	var err error
	if s.format == scfAPIGW || s.format == scfURL {
		ctx = functioncontext.NewContext(ctx, &functioncontext.FunctionContext{RequestID: "scf-invocation"})
		out, err = scf.NewHandler(h).Invoke(ctx, payload)
	} else {
		ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "lambda-invocation"})
		out, err = awslambda.NewHandler(h, awslambda.WithLogger(log)).Invoke(ctx, payload)
	}
	if s.format == restAuthorizer && errors.Is(err, awslambda.ErrUnauthorized) {
		return answer{authorized: false}
	}
	if err != nil {
		t.Fatalf("the adapter returned an invocation error: %v", err)
	}
	var a answer
	switch s.format {
	case httpAPI:
		var r events.APIGatewayV2HTTPResponse
		mustDecode(t, out, &r)
		a = answer{status: r.StatusCode, header: r.Headers, body: decodeBody(t, r.Body, r.IsBase64Encoded)}
	case restAPI:
		var r events.APIGatewayProxyResponse
		mustDecode(t, out, &r)
		a = answer{status: r.StatusCode, header: r.Headers, body: decodeBody(t, r.Body, r.IsBase64Encoded)}
	case authorizer:
		var r events.APIGatewayV2CustomAuthorizerSimpleResponse
		mustDecode(t, out, &r)
		a = answer{authorized: r.IsAuthorized, context: r.Context}
	case restAuthorizer:
		// Allowed means an Allow policy for exactly the event's methodArn.
		var r events.APIGatewayCustomAuthorizerResponse
		mustDecode(t, out, &r)
		var ev struct{ MethodArn string }
		mustDecode(t, payload, &ev)
		st := r.PolicyDocument.Statement
		a = answer{principal: r.PrincipalID, context: r.Context,
			authorized: len(st) == 1 && st[0].Effect == "Allow" && len(st[0].Resource) == 1 && st[0].Resource[0] == ev.MethodArn}
		if !a.authorized {
			t.Fatalf("a REST API authorizer refused with a policy %s; an unknown skey is the error Unauthorized", out)
		}
	case scfAPIGW, scfURL:
		var r scf.Response
		mustDecode(t, out, &r)
		a = answer{status: r.StatusCode, header: r.Headers, body: decodeBody(t, r.Body, r.IsBase64Encoded)}
	}
	return a
}

func mustDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("the answer is not in the runtime's format: %v: %s", err, b)
	}
}

func decodeBody(t *testing.T, body string, b64 bool) string {
	t.Helper()
	if !b64 {
		return body
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatalf("isBase64Encoded body is not base64: %v", err)
	}
	return string(b)
}

// check asserts that an answer is the outcome wanted.
func check(t *testing.T, s sample, a answer, want outcome) {
	t.Helper()
	if s.format == authorizer || s.format == restAuthorizer {
		if a.authorized != want.authorized {
			t.Fatalf("got isAuthorized %v, want %v", a.authorized, want.authorized)
		}
		return
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.body), &e)
	if a.status != want.status || e.Error != want.errCode {
		t.Fatalf("got %d %s, want %d %s (body %s)", a.status, e.Error, want.status, want.errCode, a.body)
	}
}

// readEvent reads a sample event as a JSON tree.
func readEvent(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s is not a JSON object: %v", name, err)
	}
	return ev
}

// fill replaces the placeholders in every string of an event, looking inside
// base64 bodies too.
func fill(ev map[string]any, values map[string]string) []byte {
	r := make([]string, 0, 2*len(values))
	for k, v := range values {
		r = append(r, "${"+k+"}", v)
	}
	rep := strings.NewReplacer(r...)
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case string:
			return rep.Replace(v)
		case []any:
			out := make([]any, len(v))
			for i, e := range v {
				out[i] = walk(e)
			}
			return out
		case map[string]any:
			out := make(map[string]any, len(v))
			for k, e := range v {
				out[k] = walk(e)
			}
			if b64, _ := v["isBase64Encoded"].(bool); b64 {
				if body, ok := v["body"].(string); ok {
					if dec, err := base64.StdEncoding.DecodeString(body); err == nil {
						out["body"] = base64.StdEncoding.EncodeToString([]byte(rep.Replace(string(dec))))
					}
				}
			}
			return out
		}
		return v
	}
	b, _ := json.Marshal(walk(ev))
	return b
}

// gatewayRequestID returns the request id the event's gateway assigned, or
// the invocation's where it assigned none (a function URL).
func gatewayRequestID(ev map[string]any) string {
	rc, _ := ev["requestContext"].(map[string]any)
	if id, _ := rc["requestId"].(string); id != "" {
		return id
	}
	return "scf-invocation"
}

func TestEveryFileIsAsserted(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			files = append(files, filepath.ToSlash(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	seen := map[string]bool{}
	for _, f := range files {
		seen[f] = true
		if _, ok := samples[f]; !ok {
			t.Errorf("events/%s has no expected answer in samples", f)
		}
	}
	for f := range samples {
		if !seen[f] {
			t.Errorf("samples names events/%s, which does not exist", f)
		}
	}
}

func TestReplayAsWritten(t *testing.T) {
	w := newWorld(t)
	for name, s := range samples {
		t.Run(name, func(t *testing.T) {
			ev := readEvent(t, name)
			raw, _ := json.Marshal(ev)
			a := w.replay(t, s, raw)
			check(t, s, a, s.asIs)
			if s.format != authorizer && s.format != restAuthorizer {
				if got, want := a.header["X-Request-Id"], gatewayRequestID(ev); got != want {
					t.Errorf("got X-Request-Id %q, want the gateway's %q", got, want)
				}
			}
		})
	}
}

func TestReplayLive(t *testing.T) {
	w := newWorld(t)
	openID := w.emu.OpenID(user)
	for name, s := range samples {
		t.Run(name, func(t *testing.T) {
			values := map[string]string{"CODE": w.emu.Code(user)}
			if s.function != "login" {
				// Log in first, through the same adapter, with this runtime's login event.
				login := samples[s.loginFile]
				a := w.replay(t, login, fill(readEvent(t, s.loginFile), values))
				check(t, login, a, ok)
				var l struct{ Skey string }
				_ = json.Unmarshal([]byte(a.body), &l)
				enc, err := w.emu.Encrypt(openID, nil)
				if err != nil {
					t.Fatal(err)
				}
				values = map[string]string{"SKEY": l.Skey, "ENCRYPTED_DATA": enc.EncryptedData, "IV": enc.IV}
			}
			ev := readEvent(t, name)
			a := w.replay(t, s, fill(ev, values))
			check(t, s, a, s.live)

			switch {
			case s.format == authorizer && s.live.authorized:
				if a.context["openid"] != openID || a.context["unionid"] == "" {
					t.Errorf("got context %v, want openid %s and a unionid", a.context, openID)
				}
			case s.format == restAuthorizer:
				if a.principal != openID || a.context["openid"] != openID || a.context["unionid"] == "" {
					t.Errorf("got principalId %q context %v, want openid %s and a unionid", a.principal, a.context, openID)
				}
			case s.format == authorizer:
			case s.function == "login":
				var l struct {
					Skey      string `json:"skey"`
					OpenID    string `json:"openid"`
					ExpiresIn int    `json:"expires_in"`
				}
				_ = json.Unmarshal([]byte(a.body), &l)
				if len(l.Skey) < 43 || l.OpenID != openID || l.ExpiresIn <= 0 {
					t.Errorf("got login %s, want an skey, openid %s and expires_in", a.body, openID)
				}
			case s.function == "validate":
				if !strings.Contains(a.body, `"openid":"`+openID+`"`) {
					t.Errorf("got %s, want openid %s", a.body, openID)
				}
			case s.function == "decrypt":
				var d struct {
					Data struct {
						StepInfoList []any `json:"stepInfoList"`
						Watermark    struct {
							AppID string `json:"appid"`
						} `json:"watermark"`
					} `json:"data"`
				}
				_ = json.Unmarshal([]byte(a.body), &d)
				if len(d.Data.StepInfoList) == 0 || d.Data.Watermark.AppID != appID {
					t.Errorf("got %s, want the decrypted WeRun data", a.body)
				}
			case s.function == "logout":
				// The session is gone: the same skey no longer validates.
				v := w.handlers["validate"]
				req := httptest.NewRequest(http.MethodGet, "/validate", nil)
				req.Header.Set("Authorization", "Bearer "+values["SKEY"])
				rec := httptest.NewRecorder()
				v.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("after logout validate got %d, want 401", rec.Code)
				}
			}
			if s.format != authorizer && s.format != restAuthorizer {
				if got, want := a.header["X-Request-Id"], gatewayRequestID(ev); got != want {
					t.Errorf("got X-Request-Id %q, want the gateway's %q", got, want)
				}
			}
		})
	}
}
