// Package functions_test drives the built function binaries through the
// protocols the clouds speak to them, standing in for `sam local` and the SCF
// runtime (neither can run here):
//
//   - the AWS Lambda Runtime API (GET …/invocation/next, POST …/response,
//     …/error, /runtime/init/error, and the Extensions API the SIGTERM
//     handling registers with), served by shared/platform/lambdatest;
//   - Tencent SCF's Go1 protocol: net/rpc Function.Invoke on
//     _LAMBDA_SERVER_PORT with scf-go-lib's messages.InvokeRequest.
//
// Each binary is a separate process, as in the cloud, so the flows that cross
// functions (log in with one, validate with another) need a shared store:
// DynamoDB Local for Lambda (WXSESSION_DYNAMODB_URL) and redis-server for SCF
// (WXSESSION_REDIS_URL), which `make test` starts. Without them those flows
// are skipped (they fail with CI set), and single-binary checks still run
// with the memory store. With -short nothing is built and nothing runs.
package functions_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wxsession/wxsession/internal/buildtest"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/tencentyun/scf-go-lib/cloudfunction/messages"

	"github.com/wxsession/wxsession/internal/syncbuf"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/platform/lambdatest"
	"github.com/wxsession/wxsession/shared/platform/scf"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

const (
	appID  = "wx1234567890abcdef"
	secret = "0123456789abcdef0123456789abcdef"
	user   = "alice"
	// sealKey is a throwaway SESSION_SEAL_KEY, so the binaries seal session_keys as in production.
	sealKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

var functionNames = []string{"login", "validate", "decrypt", "logout"}

// The function binaries, built on first use (a test run with -run builds only
// what its tests start) and not at all with -short. everyStore builds them
// with every store and runtime, as `make build` does; lambdaRelease and
// scfRelease as `make build-lambda` and `make build-scf` do, each linking only
// its cloud's runtime and store (the Makefile's LAMBDA_TAGS and SCF_TAGS).
var (
	everyStore    = &build{name: "every-store", tags: func() (string, error) { return "lambda.norpc", nil }}
	lambdaRelease = &build{name: "lambda", tags: func() (string, error) {
		l, _, err := buildtest.ReleaseTags(filepath.Join("..", "Makefile"))
		return l, err
	}}
	scfRelease = &build{name: "scf", tags: func() (string, error) {
		_, s, err := buildtest.ReleaseTags(filepath.Join("..", "Makefile"))
		return s, err
	}}
)

// workDir holds the binaries; TestMain removes it.
var workDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wxsession-functions-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	workDir = dir
	return m.Run()
}

// build is one way of building the function binaries.
type build struct {
	name string
	tags func() (string, error)

	mu   sync.Mutex
	bins map[string]*binary
}

// binary is one function binary of a build, built once.
type binary struct {
	once sync.Once
	path string
	err  error
}

// path returns the function's binary, building it on first use, for this
// machine's OS and architecture. With -short the test is skipped instead.
func (b *build) path(t *testing.T, function string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a function binary; skipped with -short")
	}
	b.mu.Lock()
	if b.bins == nil {
		b.bins = make(map[string]*binary)
	}
	bin := b.bins[function]
	if bin == nil {
		bin = &binary{}
		b.bins[function] = bin
	}
	b.mu.Unlock()
	bin.once.Do(func() {
		tags, err := b.tags()
		if err != nil {
			bin.err = err
			return
		}
		out := filepath.Join(workDir, b.name, function)
		cmd := exec.Command(buildtest.GoTool(), "build", "-tags", tags, "-trimpath", "-o", out, "./"+function)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("go build -tags %s ./%s: %v\n%s", tags, function, err, msg)
			return
		}
		bin.path = out
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// ---------------------------------------------------------------------------
// The Lambda Runtime API (shared/platform/lambdatest, which the benchmarks
// use too).

// lambdaResult is what the function posted for an invocation.
type lambdaResult struct {
	body    []byte
	isError bool
}

// runtimeAPI serves the Lambda Runtime API (and the Extensions API's register
// and event/next) to one function process.
type runtimeAPI struct {
	*lambdatest.Server
}

func newRuntimeAPI(t *testing.T) *runtimeAPI {
	t.Helper()
	srv := lambdatest.NewServer()
	t.Cleanup(srv.Close)
	return &runtimeAPI{srv}
}

// invoke hands payload to the function and waits for its answer.
func (api *runtimeAPI) invoke(t *testing.T, p *process, payload []byte) lambdaResult {
	t.Helper()
	inv := api.Enqueue(payload, time.Now().Add(10*time.Second))
	timeout := time.After(20 * time.Second)
	select {
	case <-inv.Taken():
	case err := <-p.exited:
		t.Fatalf("%s exited (%v) before taking the invocation; stderr:\n%s", p.name, err, p.stderr.String())
	case <-timeout:
		t.Fatalf("%s did not ask for the next invocation; stderr:\n%s", p.name, p.stderr.String())
	}
	select {
	case res := <-inv.Result():
		return lambdaResult{body: res.Body, isError: res.IsError}
	case err := <-p.exited:
		t.Fatalf("%s exited (%v) during an invocation; stderr:\n%s", p.name, err, p.stderr.String())
	case <-timeout:
		t.Fatalf("%s did not answer invocation %s; stderr:\n%s", p.name, inv.ID, p.stderr.String())
	}
	return lambdaResult{}
}

// ---------------------------------------------------------------------------
// Function processes.

// process is one running function binary.
type process struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	exited chan error // receives the Wait result once, then is closed
}

// start runs a function binary with exactly env (nothing inherited, so no
// runtime variable of the test's own environment leaks in) and stops it when
// the test ends.
func start(t *testing.T, function string, env map[string]string) *process {
	t.Helper()
	return startIn(t, everyStore, function, env)
}

// startIn is start for the binary of build b.
func startIn(t *testing.T, b *build, function string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(b.path(t, function))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{name: function, cmd: cmd, stderr: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", function, err)
	}
	go func() { p.exited <- cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // os.ErrProcessDone if it already exited
		// Drain: the Wait result (unless a test took it), then the close.
		for range p.exited {
		}
	})
	return p
}

// alive fails the test if the process has exited.
func (p *process) alive(t *testing.T) {
	t.Helper()
	select {
	case err, ok := <-p.exited:
		if ok {
			t.Errorf("%s exited (%v); stderr:\n%s", p.name, err, p.stderr.String())
		}
	default:
	}
}

// functionEnv is the configuration every function gets.
func functionEnv(wxBase string, extra map[string]string) map[string]string {
	env := map[string]string{
		"WX_APPID": appID, "WX_SECRET": secret, "WX_API_BASE": wxBase, "SESSION_SEAL_KEY": sealKey,
		"SESSION_TTL": "24h", "SESSION_MAX_AGE": "720h", "TZ": "UTC",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func newEmulator(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	emu := emulator.New(appID, secret)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, srv.URL
}

// ---------------------------------------------------------------------------
// Sample events (../events), with their placeholders filled in.

func readEvent(t *testing.T, name string, values map[string]string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "events", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
	pairs := make([]string, 0, 2*len(values))
	for k, v := range values {
		pairs = append(pairs, "${"+k+"}", v)
	}
	rep := strings.NewReplacer(pairs...)
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case string:
			return rep.Replace(v)
		case []any:
			for i := range v {
				v[i] = walk(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = walk(v[k])
			}
			if b64, _ := v["isBase64Encoded"].(bool); b64 {
				if s, ok := v["body"].(string); ok {
					if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
						v["body"] = base64.StdEncoding.EncodeToString([]byte(rep.Replace(string(dec))))
					}
				}
			}
		}
		return v
	}
	out, _ := json.Marshal(walk(ev))
	return out
}

func requestIDOf(t *testing.T, payload []byte) string {
	t.Helper()
	var ev struct {
		RequestContext struct {
			RequestID string `json:"requestId"`
		} `json:"requestContext"`
	}
	_ = json.Unmarshal(payload, &ev)
	return ev.RequestContext.RequestID
}

// httpAnswer is a proxy or integrated response, whichever the runtime sent.
type httpAnswer struct {
	status int
	header map[string]string
	body   string
}

// errorCode returns the contract's error code in the body, if any.
func (a httpAnswer) errorCode() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.body), &e)
	return e.Error
}

func (a httpAnswer) want(t *testing.T, status int, code string) {
	t.Helper()
	if a.status != status || a.errorCode() != code {
		t.Fatalf("got %d %s, want %d %s (body %s)", a.status, a.errorCode(), status, code, a.body)
	}
}

// loginSkey checks that a is a successful login of the user with openID and
// returns its skey.
func (a httpAnswer) loginSkey(t *testing.T, openID string) string {
	t.Helper()
	a.want(t, http.StatusOK, "")
	var login struct {
		Skey   string `json:"skey"`
		OpenID string `json:"openid"`
	}
	_ = json.Unmarshal([]byte(a.body), &login)
	if len(login.Skey) < 43 || login.OpenID != openID {
		t.Fatalf("login answered %s, want an skey for %s", a.body, openID)
	}
	return login.Skey
}

func decodeProxy(t *testing.T, res lambdaResult) httpAnswer {
	t.Helper()
	if res.isError {
		t.Fatalf("the function reported an invocation error: %s", res.body)
	}
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.body, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("the answer is not a proxy response: %v: %s", err, res.body)
	}
	body := r.Body
	if r.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(r.Body)
		body = string(b)
	}
	return httpAnswer{status: r.StatusCode, header: r.Headers, body: body}
}

func decodeAuthorizer(t *testing.T, res lambdaResult) events.APIGatewayV2CustomAuthorizerSimpleResponse {
	t.Helper()
	if res.isError {
		t.Fatalf("the authorizer reported an invocation error: %s", res.body)
	}
	var r events.APIGatewayV2CustomAuthorizerSimpleResponse
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(res.body, &raw); err != nil || raw["isAuthorized"] == nil {
		t.Fatalf("the answer is not a simple authorizer response: %s", res.body)
	}
	_ = json.Unmarshal(res.body, &r)
	return r
}

// ---------------------------------------------------------------------------
// AWS Lambda.

// lambdaFunction is one function binary attached to its own Runtime API.
type lambdaFunction struct {
	api  *runtimeAPI
	proc *process
}

func startLambda(t *testing.T, function string, env map[string]string) *lambdaFunction {
	t.Helper()
	return startLambdaIn(t, everyStore, function, env)
}

// startLambdaIn is startLambda for the binary of build b.
func startLambdaIn(t *testing.T, b *build, function string, env map[string]string) *lambdaFunction {
	t.Helper()
	api := newRuntimeAPI(t)
	env = functionEnv(env["WX_API_BASE"], env)
	env["AWS_LAMBDA_RUNTIME_API"] = api.Addr()
	env["AWS_LAMBDA_FUNCTION_NAME"] = "wxsession-" + function
	env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = "128"
	env["AWS_LAMBDA_FUNCTION_VERSION"] = "$LATEST"
	return &lambdaFunction{api: api, proc: startIn(t, b, function, env)}
}

func (f *lambdaFunction) call(t *testing.T, payload []byte) lambdaResult {
	t.Helper()
	return f.api.invoke(t, f.proc, payload)
}

func (f *lambdaFunction) http(t *testing.T, payload []byte) httpAnswer {
	t.Helper()
	a := decodeProxy(t, f.call(t, payload))
	if id := requestIDOf(t, payload); id != "" && a.header["X-Request-Id"] != id {
		t.Errorf("got X-Request-Id %q, want the gateway's %q", a.header["X-Request-Id"], id)
	}
	return a
}

// malformedThenGood sends events no gateway sends, then checks the same
// process still answers.
func malformedThenGood(t *testing.T, f *lambdaFunction, good []byte, wantGood int) {
	t.Helper()
	for _, bad := range []string{`not json at all`, `{"Records":[{"eventSource":"aws:sqs"}]}`, `{"version":"2.0","requestContext":{"http":{"method":"GET"}},"rawPath":"/validate","body":"***","isBase64Encoded":true}`} {
		decodeProxy(t, f.call(t, []byte(bad))).want(t, http.StatusBadRequest, "invalid_request")
	}
	if a := decodeProxy(t, f.call(t, good)); a.status != wantGood {
		t.Fatalf("after malformed events got %d, want %d: %s", a.status, wantGood, a.body)
	}
	f.proc.alive(t)
}

// TestLambdaSingleBinary runs each binary under the Runtime API with the
// memory store: no shared store is needed for what one process can show.
func TestLambdaSingleBinary(t *testing.T) {
	emu, wxBase := newEmulator(t)
	mem := map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "memory"}

	t.Run("login", func(t *testing.T) {
		f := startLambda(t, "login", mem)
		a := f.http(t, readEvent(t, "lambda/login-httpapi.json", map[string]string{"CODE": emu.Code(user)}))
		a.want(t, http.StatusOK, "")
		f.http(t, readEvent(t, "lambda/login-rest.json", map[string]string{"CODE": "not-a-code"})).want(t, http.StatusUnauthorized, "invalid_code")
		malformedThenGood(t, f, readEvent(t, "lambda/login-httpapi-base64.json", map[string]string{"CODE": emu.Code(user)}), http.StatusOK)
		// An authorizer event sent to a function that does not serve /validate is denied.
		if r := decodeAuthorizer(t, f.call(t, readEvent(t, "lambda/authorizer.json", map[string]string{"SKEY": session.NewSkey()}))); r.IsAuthorized {
			t.Error("the login function authorized a request")
		}
	})
	t.Run("validate", func(t *testing.T) {
		f := startLambda(t, "validate", mem)
		f.http(t, readEvent(t, "lambda/validate-httpapi.json", map[string]string{"SKEY": session.NewSkey()})).want(t, http.StatusUnauthorized, "session_expired")
		if r := decodeAuthorizer(t, f.call(t, readEvent(t, "lambda/authorizer-unknown-skey.json", nil))); r.IsAuthorized {
			t.Error("an unknown skey was authorized")
		}
		malformedThenGood(t, f, readEvent(t, "lambda/validate-rest.json", map[string]string{"SKEY": "x"}), http.StatusUnauthorized)
	})
	t.Run("decrypt", func(t *testing.T) {
		f := startLambda(t, "decrypt", mem)
		f.http(t, readEvent(t, "lambda/decrypt-httpapi.json", map[string]string{"SKEY": session.NewSkey()})).want(t, http.StatusBadRequest, "invalid_request")
	})
	t.Run("logout", func(t *testing.T) {
		f := startLambda(t, "logout", mem)
		f.http(t, readEvent(t, "lambda/logout-httpapi.json", map[string]string{"SKEY": session.NewSkey()})).want(t, http.StatusNoContent, "")
		f.http(t, readEvent(t, "lambda/logout-rest.json", map[string]string{"SKEY": ""})).want(t, http.StatusUnauthorized, "session_required")
	})
}

// TestLambdaFlow runs the whole contract across the four binaries, each its
// own process on its own Runtime API, sharing DynamoDB Local: built with every
// store, and as the Lambda release build (DynamoDB and Lambda only).
func TestLambdaFlow(t *testing.T) {
	endpoint := storetest.ServerURL(t, "WXSESSION_DYNAMODB_URL")
	t.Run("every store", func(t *testing.T) { testLambdaFlow(t, everyStore, endpoint) })
	t.Run("Lambda release build", func(t *testing.T) { testLambdaFlow(t, lambdaRelease, endpoint) })
}

func testLambdaFlow(t *testing.T, b *build, endpoint string) {
	table, _ := newTable(t, endpoint, "wxsession-runtime-")

	emu, wxBase := newEmulator(t)
	env := map[string]string{
		"WX_API_BASE": wxBase, "SESSION_STORE": "dynamodb", "SESSION_TABLE": table,
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local",
	}
	fns := map[string]*lambdaFunction{}
	for _, name := range functionNames {
		fns[name] = startLambdaIn(t, b, name, env)
	}
	openID := emu.OpenID(user)

	// login (HTTP API)
	a := fns["login"].http(t, readEvent(t, "lambda/login-httpapi.json", map[string]string{"CODE": emu.Code(user)}))
	skey := map[string]string{"SKEY": a.loginSkey(t, openID)}

	// validate, through HTTP API and REST API events
	for _, ev := range []string{"lambda/validate-httpapi.json", "lambda/validate-rest.json"} {
		a := fns["validate"].http(t, readEvent(t, ev, skey))
		a.want(t, http.StatusOK, "")
		if !strings.Contains(a.body, `"openid":"`+openID+`"`) {
			t.Errorf("%s: got %s, want openid %s", ev, a.body, openID)
		}
	}

	// the authorizer: allowed with the session, denied without
	r := decodeAuthorizer(t, fns["validate"].call(t, readEvent(t, "lambda/authorizer.json", skey)))
	if !r.IsAuthorized || r.Context["openid"] != openID || r.Context["unionid"] == nil {
		t.Errorf("authorizer with a live session: got %+v, want authorized with openid %s and unionid", r, openID)
	}
	if r := decodeAuthorizer(t, fns["validate"].call(t, readEvent(t, "lambda/authorizer-unknown-skey.json", nil))); r.IsAuthorized {
		t.Error("authorizer with an unknown skey: authorized")
	}

	// decrypt, with data WeChat would hand the mini-program
	for _, ev := range []string{"lambda/decrypt-httpapi.json", "lambda/decrypt-rest.json"} {
		enc, err := emu.Encrypt(openID, nil)
		if err != nil {
			t.Fatal(err)
		}
		a := fns["decrypt"].http(t, readEvent(t, ev, map[string]string{"SKEY": skey["SKEY"], "ENCRYPTED_DATA": enc.EncryptedData, "IV": enc.IV}))
		a.want(t, http.StatusOK, "")
		if !strings.Contains(a.body, `"stepInfoList"`) || !strings.Contains(a.body, `"appid":"`+appID+`"`) {
			t.Errorf("%s: got %s, want the decrypted WeRun data with its watermark", ev, a.body)
		}
	}

	// a malformed event, then a good one, on every binary
	for _, name := range functionNames {
		t.Run("malformed then good: "+name, func(t *testing.T) {
			good := map[string][]byte{
				"login":    readEvent(t, "lambda/login-rest.json", map[string]string{"CODE": emu.Code("bob")}),
				"validate": readEvent(t, "lambda/validate-httpapi.json", skey),
				"decrypt":  readEvent(t, "lambda/decrypt-httpapi.json", map[string]string{"SKEY": skey["SKEY"], "ENCRYPTED_DATA": "", "IV": ""}),
				"logout":   readEvent(t, "lambda/logout-rest.json", map[string]string{"SKEY": session.NewSkey()}),
			}[name]
			want := map[string]int{"login": 200, "validate": 200, "decrypt": 400, "logout": 204}[name]
			malformedThenGood(t, fns[name], good, want)
		})
	}

	// logout ends the session everywhere
	fns["logout"].http(t, readEvent(t, "lambda/logout-httpapi.json", skey)).want(t, http.StatusNoContent, "")
	fns["validate"].http(t, readEvent(t, "lambda/validate-httpapi.json", skey)).want(t, http.StatusUnauthorized, "session_expired")
	if r := decodeAuthorizer(t, fns["validate"].call(t, readEvent(t, "lambda/authorizer.json", skey))); r.IsAuthorized {
		t.Error("authorizer after logout: authorized")
	}

	procs := map[string]*process{}
	for name, f := range fns {
		f.proc.alive(t)
		procs[name] = f.proc
	}
	checkFlowMetrics(t, procs)
}

// TestLambdaLifecycle checks the process-level protocol: SIGTERM handling
// registered through the Extensions API and a clean exit on SIGTERM, and a
// start-up with bad configuration failing fast with one clear line.
func TestLambdaLifecycle(t *testing.T) {
	_, wxBase := newEmulator(t)

	t.Run("SIGTERM", func(t *testing.T) {
		f := startLambda(t, "validate", map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "memory"})
		f.http(t, readEvent(t, "lambda/validate-httpapi.json", map[string]string{"SKEY": session.NewSkey()})).want(t, http.StatusUnauthorized, "session_expired")
		registered := strings.Join(f.api.Extensions(), ",")
		if registered == "" {
			t.Fatal("the function registered no extension; Lambda would never send it SIGTERM")
		}
		if err := f.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-f.proc.exited:
			if err != nil {
				t.Errorf("on SIGTERM the function exited with %v, want status 0; stderr:\n%s", err, f.proc.stderr.String())
			}
		case <-time.After(3 * time.Second):
			t.Error("the function did not exit within 3 s of SIGTERM (Lambda kills it 500 ms after)")
		}
	})

	t.Run("bad configuration", func(t *testing.T) {
		f := startLambda(t, "login", map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "memory", "SESSION_TTL": "forever"})
		select {
		case err := <-f.proc.exited:
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Errorf("got exit %v, want a non-zero status", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the function kept running with SESSION_TTL=forever")
		}
		if out := f.proc.stderr.String(); !strings.Contains(out, "SESSION_TTL") || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("got stderr %q, want one line naming SESSION_TTL", out)
		}
		nexts := f.api.Nexts()
		if nexts != 0 {
			t.Errorf("a misconfigured function asked for %d invocations", nexts)
		}
	})
}

// ---------------------------------------------------------------------------
// Tencent SCF (Go1 runtime, net/rpc).

// scfFunction is one function binary serving SCF's net/rpc protocol.
type scfFunction struct {
	proc   *process
	client *rpc.Client
	seq    int
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func startSCF(t *testing.T, function string, env map[string]string) *scfFunction {
	t.Helper()
	return startSCFIn(t, everyStore, function, env)
}

// startSCFIn is startSCF for the binary of build b.
func startSCFIn(t *testing.T, b *build, function string, env map[string]string) *scfFunction {
	t.Helper()
	port := freePort(t)
	env = functionEnv(env["WX_API_BASE"], env)
	env["_LAMBDA_SERVER_PORT"] = port
	env["SCF_FUNCTIONNAME"] = "wxsession-" + function
	p := startIn(t, b, function, env)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := rpc.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
			f := &scfFunction{proc: p, client: c}
			var pong messages.PingResponse
			if err := c.Call("Function.Ping", &messages.PingRequest{}, &pong); err != nil {
				t.Fatalf("%s: Function.Ping: %v", function, err)
			}
			return f
		}
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited (%v) before listening on _LAMBDA_SERVER_PORT; stderr:\n%s", function, err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened on _LAMBDA_SERVER_PORT=%s; stderr:\n%s", function, port, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// invoke calls Function.Invoke as the SCF runtime does, with a deadline.
func (f *scfFunction) invoke(t *testing.T, payload []byte) httpAnswer {
	t.Helper()
	f.seq++
	deadline := time.Now().Add(10 * time.Second)
	req := &messages.InvokeRequest{
		Payload:         payload,
		RequestId:       fmt.Sprintf("scf-invoke-%d", f.seq),
		Deadline:        messages.InvokeRequest_Timestamp{Seconds: deadline.Unix(), Nanos: int64(deadline.Nanosecond())},
		Namespace:       "default",
		FunctionName:    "wxsession-" + f.proc.name,
		FunctionVersion: "$LATEST",
		MemoryLimitInMb: 128,
		TimeLimitInMs:   10000,
	}
	var res messages.InvokeResponse
	call := f.client.Go("Function.Invoke", req, &res, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case err := <-f.proc.exited:
		t.Fatalf("%s exited (%v) during an invocation; stderr:\n%s", f.proc.name, err, f.proc.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not answer Function.Invoke; stderr:\n%s", f.proc.name, f.proc.stderr.String())
	}
	if call.Error != nil {
		t.Fatalf("Function.Invoke: %v", call.Error)
	}
	if res.Error != nil {
		t.Fatalf("the function reported an invocation error: %+v", res.Error)
	}
	var r scf.Response
	if err := json.Unmarshal(res.Payload, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("the answer is not an integrated response: %v: %s", err, res.Payload)
	}
	body := r.Body
	if r.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(r.Body)
		body = string(b)
	}
	a := httpAnswer{status: r.StatusCode, header: r.Headers, body: body}
	if id := requestIDOf(t, payload); id != "" && a.header["X-Request-Id"] != id {
		t.Errorf("got X-Request-Id %q, want the gateway's %q", a.header["X-Request-Id"], id)
	}
	return a
}

func scfMalformedThenGood(t *testing.T, f *scfFunction, good []byte, wantGood int) {
	t.Helper()
	for _, bad := range []string{`{"httpMethod":`, `{"Type":"Timer","TriggerName":"every-minute","Time":"2024-03-13T08:15:30Z","Message":""}`, `{"httpMethod":"POST","path":"/login","body":"%%%","isBase64Encoded":true}`} {
		f.invoke(t, []byte(bad)).want(t, http.StatusBadRequest, "invalid_request")
	}
	if a := f.invoke(t, good); a.status != wantGood {
		t.Fatalf("after malformed events got %d, want %d: %s", a.status, wantGood, a.body)
	}
	f.proc.alive(t)
}

// TestSCFSingleBinary runs each binary under SCF's net/rpc protocol with the
// memory store.
func TestSCFSingleBinary(t *testing.T) {
	emu, wxBase := newEmulator(t)
	mem := map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "memory"}

	t.Run("login", func(t *testing.T) {
		f := startSCF(t, "login", mem)
		f.invoke(t, readEvent(t, "scf/login.json", map[string]string{"CODE": emu.Code(user)})).want(t, http.StatusOK, "")
		f.invoke(t, readEvent(t, "scf/login.json", map[string]string{"CODE": "not-a-code"})).want(t, http.StatusUnauthorized, "invalid_code")
		scfMalformedThenGood(t, f, readEvent(t, "scf/login.json", map[string]string{"CODE": emu.Code(user)}), http.StatusOK)
	})
	t.Run("validate", func(t *testing.T) {
		f := startSCF(t, "validate", mem)
		f.invoke(t, readEvent(t, "scf/validate.json", map[string]string{"SKEY": session.NewSkey()})).want(t, http.StatusUnauthorized, "session_expired")
	})
	t.Run("decrypt", func(t *testing.T) {
		f := startSCF(t, "decrypt", mem)
		f.invoke(t, readEvent(t, "scf/decrypt.json", map[string]string{"SKEY": session.NewSkey()})).want(t, http.StatusBadRequest, "invalid_request")
	})
	t.Run("logout", func(t *testing.T) {
		f := startSCF(t, "logout", mem)
		f.invoke(t, readEvent(t, "scf/logout.json", map[string]string{"SKEY": session.NewSkey()})).want(t, http.StatusNoContent, "")
	})
}

// TestSCFFlow runs the whole contract across the four binaries under SCF's
// protocol, sharing redis-server as the functions share TencentDB for Redis:
// built with every store, and as the SCF release build (Redis and SCF only).
func TestSCFFlow(t *testing.T) {
	redisURL := storetest.ServerURL(t, "WXSESSION_REDIS_URL")
	t.Run("every store", func(t *testing.T) { testSCFFlow(t, everyStore, redisURL) })
	t.Run("SCF release build", func(t *testing.T) { testSCFFlow(t, scfRelease, redisURL) })
}

func testSCFFlow(t *testing.T, b *build, redisURL string) {
	emu, wxBase := newEmulator(t)
	env := map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "redis", "REDIS_URL": redisURL}
	fns := map[string]*scfFunction{}
	for _, name := range functionNames {
		fns[name] = startSCFIn(t, b, name, env)
	}
	openID := emu.OpenID(user)

	a := fns["login"].invoke(t, readEvent(t, "scf/login.json", map[string]string{"CODE": emu.Code(user)}))
	skey := map[string]string{"SKEY": a.loginSkey(t, openID)}

	a = fns["validate"].invoke(t, readEvent(t, "scf/validate.json", skey))
	a.want(t, http.StatusOK, "")
	if !strings.Contains(a.body, `"openid":"`+openID+`"`) {
		t.Errorf("validate: got %s, want openid %s", a.body, openID)
	}

	enc, err := emu.Encrypt(openID, nil)
	if err != nil {
		t.Fatal(err)
	}
	a = fns["decrypt"].invoke(t, readEvent(t, "scf/decrypt.json", map[string]string{"SKEY": skey["SKEY"], "ENCRYPTED_DATA": enc.EncryptedData, "IV": enc.IV}))
	a.want(t, http.StatusOK, "")
	if !strings.Contains(a.body, `"stepInfoList"`) {
		t.Errorf("decrypt: got %s, want the decrypted WeRun data", a.body)
	}

	for _, name := range functionNames {
		t.Run("malformed then good: "+name, func(t *testing.T) {
			good := map[string][]byte{
				"login":    readEvent(t, "scf/login.json", map[string]string{"CODE": emu.Code("bob")}),
				"validate": readEvent(t, "scf/validate.json", skey),
				"decrypt":  readEvent(t, "scf/decrypt.json", map[string]string{"SKEY": skey["SKEY"], "ENCRYPTED_DATA": "", "IV": ""}),
				"logout":   readEvent(t, "scf/logout.json", map[string]string{"SKEY": session.NewSkey()}),
			}[name]
			want := map[string]int{"login": 200, "validate": 200, "decrypt": 400, "logout": 204}[name]
			scfMalformedThenGood(t, fns[name], good, want)
		})
	}

	fns["logout"].invoke(t, readEvent(t, "scf/logout.json", skey)).want(t, http.StatusNoContent, "")
	fns["validate"].invoke(t, readEvent(t, "scf/validate.json", skey)).want(t, http.StatusUnauthorized, "session_expired")

	procs := map[string]*process{}
	for name, f := range fns {
		f.proc.alive(t)
		procs[name] = f.proc
	}
	checkFlowMetrics(t, procs)
}

// TestWebFunction starts a binary as scf_bootstrap does for a Tencent Web
// Function (plain HTTP on PORT) and serves one request.
func TestWebFunction(t *testing.T) {
	_, wxBase := newEmulator(t)
	port := freePort(t)
	env := functionEnv(wxBase, map[string]string{"SESSION_STORE": "memory", "PORT": port})
	p := start(t, "validate", env)
	url := "http://127.0.0.1:" + port + "/validate"
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("X-WX-Skey", session.NewSkey())
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "session_expired") {
				t.Fatalf("got %d %s, want 401 session_expired", resp.StatusCode, body)
			}
			break
		}
		select {
		case err := <-p.exited:
			t.Fatalf("validate exited (%v); stderr:\n%s", err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("validate never listened on PORT=%s; stderr:\n%s", port, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("on SIGTERM got %v, want a clean exit", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the web function did not stop on SIGTERM")
	}
}
