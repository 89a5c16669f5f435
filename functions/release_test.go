package functions_test

import (
	"errors"
	"github.com/wxsession/wxsession/internal/buildtest"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/session"
)

// TestReleaseBuildsLinkOneCloud checks what the release builds leave out: a
// Lambda binary links neither Tencent's runtime nor the Redis client, an SCF
// binary neither AWS's runtime nor its SDK. The Lambda binary also leaves out
// net/rpc (aws-lambda-go's retired go1.x mode, dropped by lambda.norpc), which
// brings in text/template, whose reflection keeps every exported method of
// every type in the binary. That is most of their size and some of their
// start-up time (docs/performance.md). The SCF binary keeps net/rpc: it is
// the protocol of SCF's Go1 runtime, spoken by scf-go-lib.
func TestReleaseBuildsLinkOneCloud(t *testing.T) {
	lambdaTags, scfTags, err := buildtest.ReleaseTags(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tags string
		mustNot    []string
		must       []string
	}{
		{"Lambda", lambdaTags,
			[]string{"github.com/redis/go-redis/v9", "github.com/tencentyun/scf-go-lib/cloudfunction/messages", "net/rpc", "text/template"},
			[]string{"github.com/aws/aws-lambda-go/lambda", "github.com/aws/aws-sdk-go-v2/service/dynamodb"}},
		{"SCF", scfTags,
			[]string{"github.com/aws/aws-sdk-go-v2/service/dynamodb", "github.com/aws/aws-lambda-go/lambda"},
			[]string{"github.com/tencentyun/scf-go-lib/cloudfunction", "github.com/redis/go-redis/v9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range deployedFunctions {
				out, err := exec.Command(buildtest.GoTool(), "list", "-deps", "-tags", tt.tags, "./"+f).Output()
				if err != nil {
					t.Fatalf("go list -deps -tags %s ./%s: %v", tt.tags, f, err)
				}
				deps := map[string]bool{}
				for _, p := range strings.Fields(string(out)) {
					deps[p] = true
				}
				for _, p := range tt.mustNot {
					if deps[p] {
						t.Errorf("%s built with -tags %s links %s", f, tt.tags, p)
					}
				}
				for _, p := range tt.must {
					if !deps[p] {
						t.Errorf("%s built with -tags %s does not link %s", f, tt.tags, p)
					}
				}
			}
		})
	}
}

// TestReleaseBuildsRefuseTheOtherCloud starts release binaries where their
// build cannot serve: each stops at once with one line naming the variable,
// instead of starting half-working.
func TestReleaseBuildsRefuseTheOtherCloud(t *testing.T) {
	_, wxBase := newEmulator(t)
	tests := []struct {
		name    string
		build   *build
		env     map[string]string
		wantVar string
	}{
		{"Lambda build asked for Redis", lambdaRelease,
			map[string]string{"SESSION_STORE": "redis", "REDIS_URL": "redis://127.0.0.1:1/0", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"}, "SESSION_STORE"},
		{"Lambda build started by SCF", lambdaRelease,
			map[string]string{"SESSION_STORE": "memory", "_LAMBDA_SERVER_PORT": "1"}, "_LAMBDA_SERVER_PORT"},
		{"SCF build asked for DynamoDB", scfRelease,
			map[string]string{"SESSION_STORE": "dynamodb", "SESSION_TABLE": "t", "AWS_REGION": "us-east-1",
				"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "_LAMBDA_SERVER_PORT": "1"}, "SESSION_STORE"},
		{"SCF build started by Lambda", scfRelease,
			map[string]string{"SESSION_STORE": "memory", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"}, "AWS_LAMBDA_RUNTIME_API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := functionEnv(wxBase, tt.env)
			p := startIn(t, tt.build, "validate", env)
			select {
			case err := <-p.exited:
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() == 0 {
					t.Errorf("got exit %v, want a non-zero status", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the function kept running")
			}
			if out := strings.TrimSpace(p.stderr.String()); !strings.Contains(out, tt.wantVar) || strings.Contains(out, "\n") {
				t.Errorf("got stderr %q, want one line naming %s", out, tt.wantVar)
			}
		})
	}
}

// TestReleaseBuildsServePlainHTTP runs each release build's validate as a
// Tencent Web Function runs it (plain HTTP on PORT, the memory store): every
// build keeps the plain-HTTP runtime.
func TestReleaseBuildsServePlainHTTP(t *testing.T) {
	_, wxBase := newEmulator(t)
	for name, b := range map[string]*build{"Lambda": lambdaRelease, "SCF": scfRelease} {
		t.Run(name, func(t *testing.T) {
			port := freePort(t)
			p := startIn(t, b, "validate", functionEnv(wxBase, map[string]string{"SESSION_STORE": "memory", "PORT": port}))
			url := "http://127.0.0.1:" + port + "/validate"
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Authorization", "Bearer "+session.NewSkey())
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusUnauthorized {
						t.Fatalf("got %d, want 401 session_expired", resp.StatusCode)
					}
					return
				}
				select {
				case err := <-p.exited:
					t.Fatalf("validate exited (%v); stderr:\n%s", err, p.stderr.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("validate never listened on PORT=%s; stderr:\n%s", port, p.stderr.String())
				}
			}
		})
	}
}

// TestFunctionsNeedSessionStore starts each function without SESSION_STORE,
// as a console deployment that forgot it would: it exits 2 with one line
// naming the variable and saying why, instead of serving from a memory store
// of its own, where every session another function wrote is missing.
func TestFunctionsNeedSessionStore(t *testing.T) {
	_, wxBase := newEmulator(t)
	for _, f := range deployedFunctions {
		t.Run(f, func(t *testing.T) {
			p := start(t, f, functionEnv(wxBase, map[string]string{"PORT": freePort(t)}))
			select {
			case err := <-p.exited:
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 2 {
					t.Errorf("got exit %v, want status 2", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the function started without SESSION_STORE")
			}
			out := strings.TrimSpace(p.stderr.String())
			if !strings.HasPrefix(out, "wxsession: configuration: SESSION_STORE: required") || !strings.Contains(out, "memory store") || strings.Contains(out, "\n") {
				t.Errorf("got stderr %q, want one line naming SESSION_STORE and why", out)
			}
		})
	}
}
