package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/syncbuf"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildLocal builds this command once per test run (without the race
// detector, as `make run` does) and returns the binary.
func buildLocal(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wxsession-local-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "local")
		goTool := "go"
		if root := os.Getenv("GOROOT"); root != "" {
			if p := filepath.Join(root, "bin", "go"); fileExists(p) {
				goTool = p
			}
		}
		cmd := exec.Command(goTool, "build", "-o", builtBin, ".")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// localProcess is the built local server, running.
type localProcess struct {
	cmd    *exec.Cmd
	base   string
	out    *syncbuf.Buffer
	exited chan error
}

// startLocalBinary runs the built local server with exactly env (plus PORT)
// and waits until it answers; it is killed when the test ends if still up.
func startLocalBinary(t *testing.T, env map[string]string) *localProcess {
	t.Helper()
	bin := buildLocal(t)
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	cmd := exec.Command(bin)
	cmd.Env = []string{"PORT=" + port, "TZ=UTC"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &localProcess{cmd: cmd, base: "http://127.0.0.1:" + port, out: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, p.base+"/emulator/stats", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			return p
		}
		select {
		case err := <-p.exited:
			t.Fatalf("the local server exited (%v):\n%s", err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local server never listened:\n%s", p.out.String())
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestShutdownDrains runs the built local server, starts a login that the
// emulator answers slowly, and signals the process while it is in flight:
// the login completes 200, and the process exits 0 once it has.
func TestShutdownDrains(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startLocalBinary(t, nil)
			cmd, base, out, exited := p.cmd, p.base, p.out, p.exited

			call(t, "POST", base+"/emulator/fault", "", map[string]any{"mode": "slow", "delay": "1s", "times": 1}, 204)
			code := call(t, "POST", base+"/emulator/wx.login?user=alice", "", nil, 200)["code"].(string)
			calls := wechatCalls(t, base)
			type result struct {
				status int
				body   string
				err    error
			}
			done := make(chan result, 1)
			go func() {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/login", strings.NewReader(`{"code":"`+code+`"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- result{err: err}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				done <- result{status: resp.StatusCode, body: string(b)}
			}()
			for deadline := time.Now().Add(10 * time.Second); wechatCalls(t, base) == calls; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the login never reached the emulator")
				}
			}
			signalled := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, `"skey"`) {
					t.Fatalf("the in-flight login: got %d %s (%v), want 200 with an skey", r.status, r.body, r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the in-flight login never finished")
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("after %v the local server exited with %v, want status 0:\n%s", sig, err, out.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the local server did not exit after %v", sig)
			}
			t.Logf("%v: the in-flight login finished 200, exit 0, %v after the signal", sig, time.Since(signalled).Round(time.Millisecond))
			// New connections are refused once it has gone.
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/validate", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
				t.Errorf("the server still answers after exiting")
			}
		})
	}
}
