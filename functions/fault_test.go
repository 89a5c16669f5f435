package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tencentyun/scf-go-lib/cloudfunction/messages"

	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/platform/scf"
	"github.com/wxsession/wxsession/shared/wechat"
)

// attemptMargin is what a test allows past a time limit for a loaded machine.
const attemptMargin = 1500 * time.Millisecond

// TestLambdaDeadlineBoundsWeChat runs the built login binary under the
// Runtime API while WeChat hangs. With an invocation deadline shorter than
// the WeChat attempt timeout, the 502 wechat_unavailable must reach the
// Runtime API before the deadline (after it, Lambda has already answered the
// client "timed out"); with a longer one, the attempt timeout bounds the call.
func TestLambdaDeadlineBoundsWeChat(t *testing.T) {
	emu, wxBase := newEmulator(t)
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultHang})
	f := startLambda(t, "login", map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "memory"})

	for _, tt := range []struct {
		name   string
		budget time.Duration
	}{
		{"deadline shorter than the attempt timeout", 1500 * time.Millisecond},
		{"deadline longer than the attempt timeout", 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			deadline := time.Now().Add(tt.budget)
			inv := f.api.Enqueue(readEvent(t, "lambda/login-httpapi.json", map[string]string{"CODE": emu.Code(user)}), deadline)
			var taken time.Time
			select {
			case <-inv.Taken():
				taken = inv.TakenAt()
			case err := <-f.proc.exited:
				t.Fatalf("login exited (%v); stderr:\n%s", err, f.proc.stderr.String())
			case <-time.After(10 * time.Second):
				t.Fatal("login did not take the invocation")
			}
			var res lambdaResult
			var at time.Time
			select {
			case r := <-inv.Result():
				res, at = lambdaResult{body: r.Body, isError: r.IsError}, r.At
			case err := <-f.proc.exited:
				t.Fatalf("login exited (%v); stderr:\n%s", err, f.proc.stderr.String())
			case <-time.After(tt.budget + 10*time.Second):
				t.Fatal("login never answered")
			}
			decodeProxy(t, res).want(t, http.StatusBadGateway, "wechat_unavailable")
			took := at.Sub(taken)
			limit := min(deadline.Sub(taken), wechat.DefaultAttemptTimeout+attemptMargin)
			if at.After(deadline) || took > limit {
				t.Fatalf("answered %v after the invocation began (%v before the deadline), want within %v and before the deadline",
					took.Round(time.Millisecond), deadline.Sub(at).Round(time.Millisecond), limit.Round(time.Millisecond))
			}
			t.Logf("502 wechat_unavailable %v into a %v invocation", took.Round(time.Millisecond), tt.budget)
		})
	}
	f.proc.alive(t)
}

// TestSCFDeadlineBoundsWeChat is TestLambdaDeadlineBoundsWeChat for SCF's
// Go1 runtime: the deadline in Function.Invoke bounds the WeChat call.
func TestSCFDeadlineBoundsWeChat(t *testing.T) {
	emu, wxBase := newEmulator(t)
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultHang})
	f := startSCF(t, "login", map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "memory"})
	deadline := time.Now().Add(1500 * time.Millisecond)
	start := time.Now()
	a := invokeSCFBy(t, f, readEvent(t, "scf/login.json", map[string]string{"CODE": emu.Code(user)}), deadline)
	at := time.Now()
	a.want(t, http.StatusBadGateway, "wechat_unavailable")
	if at.After(deadline) {
		t.Fatalf("answered %v after the deadline", at.Sub(deadline).Round(time.Millisecond))
	}
	t.Logf("502 wechat_unavailable %v into a 1.5s invocation", at.Sub(start).Round(time.Millisecond))
	f.proc.alive(t)
}

// invokeSCFBy calls Function.Invoke with the given deadline.
func invokeSCFBy(t *testing.T, f *scfFunction, payload []byte, deadline time.Time) httpAnswer {
	t.Helper()
	f.seq++
	req := &messages.InvokeRequest{
		Payload:         payload,
		RequestId:       fmt.Sprintf("scf-deadline-%d", f.seq),
		Deadline:        messages.InvokeRequest_Timestamp{Seconds: deadline.Unix(), Nanos: int64(deadline.Nanosecond())},
		Namespace:       "default",
		FunctionName:    "wxsession-" + f.proc.name,
		FunctionVersion: "$LATEST",
		MemoryLimitInMb: 128,
		TimeLimitInMs:   int32(time.Until(deadline).Milliseconds()),
	}
	var res messages.InvokeResponse
	if err := f.client.Call("Function.Invoke", req, &res); err != nil {
		t.Fatalf("Function.Invoke: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("the function reported an invocation error: %+v", res.Error)
	}
	var r scf.Response
	if err := json.Unmarshal(res.Payload, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("the answer is not an integrated response: %v: %s", err, res.Payload)
	}
	return httpAnswer{status: r.StatusCode, header: r.Headers, body: r.Body}
}

// TestPlainHTTPDrainsOnSignal starts the login binary in plain-HTTP mode (as
// a Tencent Web Function runs it), starts a login that WeChat answers slowly,
// and signals the process while the login is in flight: the login completes
// 200 and the process then exits 0.
func TestPlainHTTPDrainsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			emu, wxBase := newEmulator(t)
			port := freePort(t)
			p := start(t, "login", functionEnv(wxBase, map[string]string{"SESSION_STORE": "memory", "PORT": port}))
			base := "http://127.0.0.1:" + port
			waitListening(t, p, base+"/login")

			emu.SetFault(&emulator.Fault{Mode: emulator.FaultSlow, Delay: time.Second, Times: 1})
			calls := emu.Calls()
			type result struct {
				status int
				body   string
				err    error
			}
			done := make(chan result, 1)
			go func() {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/login", strings.NewReader(`{"code":"`+emu.Code(user)+`"}`))
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
			for deadline := time.Now().Add(10 * time.Second); emu.Calls() == calls; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the login never reached WeChat")
				}
			}
			if err := p.cmd.Process.Signal(sig); err != nil {
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
			case err := <-p.exited:
				if err != nil {
					t.Fatalf("after %v the process exited with %v, want status 0; stderr:\n%s", sig, err, p.stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the process did not exit after %v", sig)
			}
			if !strings.Contains(p.stderr.String(), "draining") {
				t.Errorf("no log line about draining; stderr:\n%s", p.stderr.String())
			}
		})
	}
}

// waitListening waits until a plain-HTTP function answers at url.
func waitListening(t *testing.T, p *process, url string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			return
		}
		select {
		case err := <-p.exited:
			t.Fatalf("%s exited (%v); stderr:\n%s", p.name, err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened; stderr:\n%s", p.name, p.stderr.String())
		}
	}
}
