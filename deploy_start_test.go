package wxsession_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/wxsession/wxsession/internal/buildtest"
	"io"
	"maps"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/tencentyun/scf-go-lib/cloudfunction/messages"
	"gopkg.in/yaml.v3"

	"github.com/wxsession/wxsession/shared/platform/lambdatest"
)

// These tests start what a deployment starts: the zips `make package` writes
// (cmd/package, run once by TestMain with the Makefile's release tags), each
// function with exactly the environment its deploy file gives it.

// packageDir holds the zips; lambdaHostDir the Lambda binaries built for this
// machine (the packaged ones are arm64), to run under the fake Runtime API.
var packageDir, lambdaHostDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wxsession-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	lambdaTags, scfTags, err := buildtest.ReleaseTags("Makefile")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	packageDir, lambdaHostDir = filepath.Join(dir, "package"), filepath.Join(dir, "lambda-host")
	cmds := []*exec.Cmd{
		exec.Command(buildtest.GoTool(), "run", "./cmd/package", "-out", packageDir, "-lambda-tags", lambdaTags, "-scf-tags", scfTags, "-scf-bootstrap", "scf_bootstrap"),
	}
	build := []string{"build", "-trimpath", "-tags", lambdaTags, "-o", lambdaHostDir + string(os.PathSeparator)}
	for _, r := range routes {
		build = append(build, "./functions/"+r.function)
	}
	cmds = append(cmds, exec.Command(buildtest.GoTool(), build...))
	for _, cmd := range cmds {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", strings.Join(cmd.Args, " "), err)
			return 1
		}
	}
	return m.Run()
}

// ---------------------------------------------------------------------------
// Placeholders: what a deployment fills in from the deploy environment, a
// secret store or another resource. Every one a deploy file uses must be
// listed here, so a new variable cannot slip through untested.

const (
	placeholderAppID   = "wx0123456789abcdef"
	placeholderSecret  = "00000000000000000000000000000000"
	placeholderSealKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	placeholderTable   = "wxsession-SessionTable-PLACEHOLDER"
)

// redisURL is the test redis-server (make test starts it); without it a URL
// nothing listens on, which is enough to start (the client dials lazily).
func redisURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("WXSESSION_REDIS_URL"); u != "" {
		return u
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set but WXSESSION_REDIS_URL is not: start the test services (make test)")
	}
	return "redis://127.0.0.1:1/0"
}

// ---------------------------------------------------------------------------
// serverless.yml, as the multi-scf component reads it.

type keyValue struct {
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// slsCommon holds the fields the component reads at the top level and per
// function (a function's own value wins). Pointers and slices keep "not set"
// visible.
type slsCommon struct {
	Type         string      `yaml:"type"`
	Runtime      string      `yaml:"runtime"`
	MemorySize   int         `yaml:"memorySize"`
	Timeout      int         `yaml:"timeout"`
	PublicAccess *bool       `yaml:"publicAccess"`
	Environments *[]keyValue `yaml:"environments"`
	// Environment is the map form the component ignores; it must not appear.
	Environment map[string]any `yaml:"environment"`
	VPC         *slsVPC        `yaml:"vpc"`
	VPCConfig   *slsVPC        `yaml:"vpcConfig"`
}

// slsFunction is one function of serverless.yml.
type slsFunction struct {
	slsCommon   `yaml:",inline"`
	Src         string `yaml:"src"`
	Handler     string `yaml:"handler"`
	Description string `yaml:"description"`
}

type slsVPC struct {
	VpcID    string `yaml:"vpcId"`
	SubnetID string `yaml:"subnetId"`
}

type slsTrigger struct {
	Type       string         `yaml:"type"`
	Function   string         `yaml:"function"`
	Parameters map[string]any `yaml:"parameters"`
}

type slsFile struct {
	Component string `yaml:"component"`
	Inputs    struct {
		slsCommon `yaml:",inline"`
		Region    string                 `yaml:"region"`
		SrcDir    struct{ Src string }   `yaml:"src"`
		Functions map[string]slsFunction `yaml:"functions"`
		Triggers  []slsTrigger           `yaml:"triggers"`
	} `yaml:"inputs"`
}

// deployed is a function as the component deploys it: the top-level inputs
// with the function's own fields assigned over them (Object.assign in
// formatInputs), then formatFaasInputs: the environment is built from
// `environments` alone (an absent list gives an empty environment), and vpc
// is copied over vpcConfig.
type deployed struct {
	name, runtime, typ, handler, src string
	timeout, memory                  int
	publicAccess                     bool
	vpc                              slsVPC
	env                              map[string]string // values as written, ${env:…} unresolved
}

func deployedFunctions(t *testing.T) (map[string]deployed, slsFile) {
	t.Helper()
	f := readServerlessYML(t)
	top := f.Inputs.slsCommon
	out := map[string]deployed{}
	for name, fn := range f.Inputs.Functions {
		d := deployed{
			name: name, runtime: or(fn.Runtime, top.Runtime), typ: or(fn.Type, top.Type),
			handler: fn.Handler, src: fn.Src, timeout: fn.Timeout, memory: fn.MemorySize,
			env: map[string]string{},
		}
		if d.timeout == 0 {
			d.timeout = top.Timeout
		}
		if d.memory == 0 {
			d.memory = top.MemorySize
		}
		switch {
		case fn.PublicAccess != nil:
			d.publicAccess = *fn.PublicAccess
		case top.PublicAccess != nil:
			d.publicAccess = *top.PublicAccess
		}
		envs := top.Environments
		if fn.Environments != nil {
			envs = fn.Environments // replaces the top-level list, never merged
		}
		if envs != nil {
			for _, kv := range *envs {
				d.env[kv.Key] = kv.Value
			}
		}
		for _, v := range []*slsVPC{top.VPCConfig, top.VPC, fn.VPCConfig, fn.VPC} {
			if v != nil {
				d.vpc = *v
			}
		}
		out[name] = d
	}
	return out, f
}

func readServerlessYML(t *testing.T) slsFile {
	t.Helper()
	raw, err := os.ReadFile("serverless.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f slsFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("serverless.yml does not parse: %v", err)
	}
	return f
}

var envRef = regexp.MustCompile(`\$\{env:([A-Z][A-Z0-9_]*)\}`)

// resolveSLS fills ${env:NAME} with the value a deployment's .env would
// give, as placeholders.
func resolveSLS(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	fill := map[string]string{
		"WX_APPID": placeholderAppID, "WX_SECRET": placeholderSecret,
		"SESSION_SEAL_KEY": placeholderSealKey, "REDIS_URL": redisURL(t),
	}
	out := map[string]string{}
	for k, v := range env {
		out[k] = envRef.ReplaceAllStringFunc(v, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			p, ok := fill[name]
			if !ok {
				t.Errorf("%s=%s: no placeholder for ${env:%s}; add one to resolveSLS", k, v, name)
			}
			return p
		})
	}
	return out
}

// ---------------------------------------------------------------------------
// template.yaml, as CloudFormation resolves it.

// templateEnvironments returns each wxsession function's environment: Globals
// with the function's own variables over them, intrinsics left as
// "ref:…", "sub:…", "getatt:…" (openTemplate).
func templateEnvironments(t *testing.T) map[string]map[string]string {
	t.Helper()
	tmpl, _ := openTemplate(t)
	g, err := tmpl.GetServerlessGlobalFunction()
	if err != nil {
		t.Fatal(err)
	}
	fns := tmpl.GetAllServerlessFunctionResources()
	out := map[string]map[string]string{}
	for _, r := range routes {
		env := map[string]string{}
		if g.Environment != nil {
			maps.Copy(env, g.Environment.Variables)
		}
		if fn, ok := fns[r.logicalID]; ok && fn.Environment != nil {
			maps.Copy(env, fn.Environment.Variables)
		}
		out[r.function] = env
	}
	return out
}

// resolveTemplate replaces what CloudFormation fills in at deploy time with
// placeholders: the parameters without a default, the table's name, the
// Secrets Manager references.
func resolveTemplate(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	fill := map[string]string{
		"ref:WxAppId":      placeholderAppID,
		"ref:SessionTable": placeholderTable,
		"sub:{{resolve:secretsmanager:${SecretName}:SecretString:WX_SECRET}}":        placeholderSecret,
		"sub:{{resolve:secretsmanager:${SecretName}:SecretString:SESSION_SEAL_KEY}}": placeholderSealKey,
	}
	out := map[string]string{}
	for k, v := range env {
		if strings.HasPrefix(v, "ref:") || strings.HasPrefix(v, "sub:") || strings.HasPrefix(v, "getatt:") {
			p, ok := fill[v]
			if !ok {
				t.Errorf("%s=%s: no placeholder for this intrinsic; add one to resolveTemplate", k, v)
			}
			v = p
		}
		out[k] = v
	}
	return out
}

// ---------------------------------------------------------------------------
// Starting a function.

type process struct {
	name   string
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProcess runs path with exactly env (nothing inherited but PATH, which
// scf_bootstrap's #!/bin/bash needs no more than the runtime gives it).
func startProcess(t *testing.T, name, path string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(path)
	cmd.Dir = filepath.Dir(path)
	keys := slices.Sorted(maps.Keys(env))
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	p := &process{name: name, cmd: cmd, out: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.exited <- cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range p.exited {
		}
	})
	return p
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

// probe is the request that shows a function started: its own route without
// the credential it needs, answered by the contract's JSON error without
// touching the store or WeChat.
type probe struct {
	method, path, body string
	status             int
	code               string
}

func probeOf(function string) probe {
	for _, r := range routes {
		if r.function != function {
			continue
		}
		if function == "login" {
			return probe{r.method, r.path, `{}`, http.StatusBadRequest, "invalid_request"}
		}
		body := ""
		if r.method == http.MethodPost {
			body = `{}`
		}
		return probe{r.method, r.path, body, http.StatusUnauthorized, "session_required"}
	}
	return probe{}
}

func errorCode(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error
}

// waitHTTP sends pr to the web function on port until it answers, failing if
// the process exits first.
func waitHTTP(t *testing.T, p *process, port string, pr probe) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(pr.method, "http://127.0.0.1:"+port+pr.path, strings.NewReader(pr.body))
		if pr.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != pr.status || errorCode(string(b)) != pr.code {
				t.Errorf("%s %s: got %d %s, want %d %s", pr.method, pr.path, resp.StatusCode, b, pr.status, pr.code)
			}
			return
		}
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited (%v) before answering; output:\n%s", p.name, err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered on port %s; output:\n%s", p.name, port, p.out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// unzipTo extracts a package as SCF does, keeping each entry's mode.
func unzipTo(t *testing.T, zipPath, dir string) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = zr.Close() }()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, f.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServerlessFunctionsStart unpacks each function's SCF package and starts
// it as a Web function does (scf_bootstrap, which serves on 9000, here on a
// free port so tests can run side by side), with exactly the environment
// serverless.yml gives that function: every function must start and answer
// its route. It starts the same zip as an event function too.
func TestServerlessFunctionsStart(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the SCF packages are linux/amd64; this machine is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	fns, _ := deployedFunctions(t)
	for _, r := range routes {
		t.Run(r.function, func(t *testing.T) {
			d, ok := fns[r.function]
			if !ok {
				t.Fatalf("serverless.yml has no function %s", r.function)
			}
			dir := t.TempDir()
			unzipTo(t, filepath.Join(packageDir, "wxsession-"+r.function+"-scf.zip"), dir)
			env := resolveSLS(t, d.env)
			port := freePort(t)
			web := maps.Clone(env)
			web["WXSESSION_WEB_PORT"] = port
			p := startProcess(t, r.function, filepath.Join(dir, d.handler), web)
			waitHTTP(t, p, port, probeOf(r.function))

			// The same zip as an event function (handler main, the console's
			// alternative): SCF starts main with _LAMBDA_SERVER_PORT and
			// pings it over net/rpc before the first event.
			event := maps.Clone(env)
			event["_LAMBDA_SERVER_PORT"] = freePort(t)
			event["SCF_FUNCTIONNAME"] = "wxsession-" + r.function
			ep := startProcess(t, r.function+" (event)", filepath.Join(dir, "main"), event)
			waitPing(t, ep, event["_LAMBDA_SERVER_PORT"])
		})
	}
}

// waitPing dials the event function's net/rpc port and calls Function.Ping,
// as the SCF Go1 runtime does before the first invocation.
func waitPing(t *testing.T, p *process, port string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := rpc.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			defer func() { _ = c.Close() }()
			var pong messages.PingResponse
			if err := c.Call("Function.Ping", &messages.PingRequest{}, &pong); err != nil {
				t.Fatalf("%s: Function.Ping: %v", p.name, err)
			}
			return
		}
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited (%v) before listening on _LAMBDA_SERVER_PORT; output:\n%s", p.name, err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened on _LAMBDA_SERVER_PORT=%s; output:\n%s", p.name, port, p.out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestTemplateFunctionsStart starts each wxsession function of template.yaml
// as Lambda does (the Runtime API, shared/platform/lambdatest), with exactly
// its environment (Globals, then its own variables; intrinsics as
// placeholders) plus what Lambda itself sets, and sends it an HTTP API
// request for its route.
func TestTemplateFunctionsStart(t *testing.T) {
	envs := templateEnvironments(t)
	for _, r := range routes {
		t.Run(r.function, func(t *testing.T) {
			api := lambdatest.NewServer()
			t.Cleanup(api.Close)
			env := resolveTemplate(t, envs[r.function])
			// What the Lambda service sets in every function's environment.
			maps.Copy(env, map[string]string{
				"AWS_LAMBDA_RUNTIME_API":          api.Addr(),
				"AWS_LAMBDA_FUNCTION_NAME":        "wxsession-" + r.logicalID,
				"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
				"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
				"AWS_REGION":                      "ap-east-1",
				"AWS_DEFAULT_REGION":              "ap-east-1",
				"AWS_ACCESS_KEY_ID":               "placeholder",
				"AWS_SECRET_ACCESS_KEY":           "placeholder",
				"AWS_SESSION_TOKEN":               "placeholder",
				"TZ":                              ":UTC",
			})
			// Keep the connection warm-up off the real AWS endpoint.
			env["AWS_ENDPOINT_URL_DYNAMODB"] = "http://127.0.0.1:" + freePort(t)
			if u := os.Getenv("WXSESSION_DYNAMODB_URL"); u != "" {
				env["AWS_ENDPOINT_URL_DYNAMODB"] = u
			}
			p := startProcess(t, r.function, filepath.Join(lambdaHostDir, r.function), env)

			pr := probeOf(r.function)
			ev := events.APIGatewayV2HTTPRequest{
				Version: "2.0", RouteKey: pr.method + " " + pr.path, RawPath: pr.path,
				Headers: map[string]string{"content-type": "application/json", "host": "example.execute-api.ap-east-1.amazonaws.com"},
				Body:    pr.body,
				RequestContext: events.APIGatewayV2HTTPRequestContext{
					RequestID: "deploy-test-" + r.function, Stage: "$default",
					HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: pr.method, Path: pr.path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1"},
				},
			}
			payload, _ := json.Marshal(ev)
			inv := api.Enqueue(payload, time.Now().Add(10*time.Second))
			var res lambdatest.Result
			select {
			case res = <-inv.Result():
			case err := <-p.exited:
				t.Fatalf("%s exited (%v); init errors %v; output:\n%s", r.function, err, api.InitErrors(), p.out.String())
			case <-time.After(30 * time.Second):
				t.Fatalf("%s did not answer; output:\n%s", r.function, p.out.String())
			}
			if res.IsError {
				t.Fatalf("%s reported an invocation error: %s", r.function, res.Body)
			}
			var out events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(res.Body, &out); err != nil {
				t.Fatalf("answer is not an HTTP API response: %v: %s", err, res.Body)
			}
			if out.StatusCode != pr.status || errorCode(out.Body) != pr.code {
				t.Errorf("%s %s: got %d %s, want %d %s", pr.method, pr.path, out.StatusCode, out.Body, pr.status, pr.code)
			}
			checkProbeMetrics(t, p, r.function, pr.code)
		})
	}
}

// ---------------------------------------------------------------------------
// make package's zips.

// TestPackages checks every zip `make package` writes against SHA256SUMS,
// its layout, the modes the runtimes need, and each binary's platform.
func TestPackages(t *testing.T) {
	sums := readSums(t, filepath.Join(packageDir, "SHA256SUMS"))
	var want []string
	for _, fn := range append(routeFunctions(), "token") { // token: no route, a zip all the same
		want = append(want, "wxsession-"+fn+"-lambda.zip", "wxsession-"+fn+"-scf.zip")
	}
	sort.Strings(want)
	if got := slices.Sorted(maps.Keys(sums)); !slices.Equal(got, want) {
		t.Fatalf("SHA256SUMS lists %v, want %v", got, want)
	}
	script, err := os.ReadFile("scf_bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(packageDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if h := sha256.Sum256(raw); hex.EncodeToString(h[:]) != sums[name] {
				t.Errorf("SHA-256 %x, SHA256SUMS says %s", h, sums[name])
			}
			zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
			if err != nil {
				t.Fatal(err)
			}
			lambda := strings.HasSuffix(name, "-lambda.zip")
			wantFiles := []string{"main", "scf_bootstrap"}
			if lambda {
				wantFiles = []string{"bootstrap"}
			}
			var got []string
			for _, f := range zr.File {
				got = append(got, f.Name)
				// The Unix mode lives in the high 16 bits of the external
				// attributes, with "made by" Unix (3): what unzip and both
				// clouds read.
				if f.CreatorVersion>>8 != 3 || os.FileMode(f.ExternalAttrs>>16).Perm() != 0o755 || !f.Mode().IsRegular() {
					t.Errorf("%s: made by %d, mode %v (external attrs %#x); want a Unix regular file 0755", f.Name, f.CreatorVersion>>8, f.Mode(), f.ExternalAttrs)
				}
				b := readEntry(t, f)
				switch f.Name {
				case "scf_bootstrap":
					if !bytes.Equal(b, script) || bytes.Contains(b, []byte("\r")) || !bytes.HasPrefix(b, []byte("#!/bin/bash\n")) {
						t.Errorf("scf_bootstrap is not the repository's LF-only #!/bin/bash script")
					}
				case "bootstrap", "main":
					machine := elf.EM_X86_64
					if lambda {
						machine = elf.EM_AARCH64
					}
					checkELF(t, f.Name, b, machine)
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, wantFiles) {
				t.Errorf("files %v, want %v at the zip's root", got, wantFiles)
			}
		})
	}
}

func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sums := map[string]string{}
	line := regexp.MustCompile(`^([0-9a-f]{64})  (\S+)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("SHA256SUMS line %q is not in sha256sum's format", sc.Text())
		}
		sums[m[2]] = m[1]
	}
	return sums
}

func readEntry(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkELF asserts a static 64-bit Linux executable for machine: the runtimes
// have no dynamic loader to offer a cgo build.
func checkELF(t *testing.T, name string, b []byte, machine elf.Machine) {
	t.Helper()
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not an ELF executable: %v", name, err)
	}
	defer func() { _ = ef.Close() }()
	if ef.Machine != machine || ef.Class != elf.ELFCLASS64 || ef.Type != elf.ET_EXEC {
		t.Errorf("%s: machine %v class %v type %v, want %v ELFCLASS64 ET_EXEC", name, ef.Machine, ef.Class, ef.Type, machine)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s asks for a dynamic loader; build it with CGO_ENABLED=0", name)
		}
	}
}

// routeFunctions are the functions serving the public routes.
func routeFunctions() []string {
	var names []string
	for _, r := range routes {
		names = append(names, r.function)
	}
	return names
}
