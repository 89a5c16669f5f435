package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

// faultEnv is the whole handler over a faulty memory store, with a clock the
// test can move.
type faultEnv struct {
	*env
	store *faulty.Store
	mem   *memory.Store
	clock *atomic.Int64 // unix nanoseconds
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	clock := &atomic.Int64{}
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	mem := memory.New(now)
	st := faulty.New(mem)
	return &faultEnv{env: newEnv(t, st, session.WithClock(now)), store: st, mem: mem, clock: clock}
}

// TestStoreFaultPerOperation fails each store call a route makes, one at a
// time: the route answers 503 store_unavailable (or, where the contract
// tolerates the failure, its normal answer), nothing is half-written, and
// the same handler works again as soon as the store does.
func TestStoreFaultPerOperation(t *testing.T) {
	tests := []struct {
		name       string
		op         faulty.Op
		route      string // login, validate, renew (a validate that renews), decrypt, logout
		wantStatus int
		wantCode   string
	}{
		{"login: claiming the code fails", faulty.ClaimCode, "login", 503, "store_unavailable"},
		{"login: writing the user fails", faulty.PutUser, "login", 503, "store_unavailable"},
		{"login: writing the session fails", faulty.PutSession, "login", 503, "store_unavailable"},
		{"login: releasing a claim fails (not called on success)", faulty.ReleaseCode, "login", 200, ""},
		{"validate: reading the session fails", faulty.GetSession, "validate", 503, "store_unavailable"},
		{"validate: renewing fails (the session is still valid)", faulty.RenewSession, "renew", 200, ""},
		{"decrypt: reading the session fails", faulty.GetSession, "decrypt", 503, "store_unavailable"},
		{"decrypt: reading the user fails", faulty.GetUser, "decrypt", 503, "store_unavailable"},
		{"logout: deleting fails", faulty.DeleteSession, "logout", 503, "store_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFaultEnv(t)
			skey, openID := e.login(t, "alice")
			if tt.route == "renew" {
				e.clock.Add(int64(13 * time.Hour)) // less than half of the 24h TTL left
			}
			code := e.emu.Code("bob")
			send := func() response {
				switch tt.route {
				case "login":
					return e.do(t, "POST", "/login", `{"code":"`+code+`"}`)
				case "validate", "renew":
					return e.do(t, "GET", "/validate", "", bearer(skey)...)
				case "decrypt":
					enc, err := e.emu.Encrypt(openID, nil)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := json.Marshal(enc)
					return e.do(t, "POST", "/decrypt", string(b), bearer(skey)...)
				default:
					return e.do(t, "POST", "/logout", "", bearer(skey)...)
				}
			}

			e.store.Set(faulty.Fault{Mode: faulty.Fail, Ops: []faulty.Op{tt.op}})
			r := send()
			if r.status != tt.wantStatus || (tt.wantCode != "" && r.body["error"] != tt.wantCode) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tt.wantStatus, tt.wantCode)
			}
			if strings.Contains(r.raw, faulty.ErrInjected.Error()) {
				t.Fatalf("the answer carries the store's error: %s", r.raw)
			}
			if tt.wantStatus == 200 && e.store.Faults(tt.op) == 0 && tt.op != faulty.ReleaseCode {
				t.Fatalf("%s was never called", tt.op)
			}

			// No half-written session: a session write that failed left nothing.
			_, failed := e.store.SessionWrites()
			for _, id := range failed {
				if _, err := e.mem.GetSession(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
					t.Fatalf("a failed login left its session behind (err %v)", err)
				}
			}
			// Nor was a session ended or harmed by a failed call.
			if tt.route != "logout" || tt.wantStatus != 204 {
				e.store.Clear()
				if r := e.do(t, "GET", "/validate", "", bearer(skey)...); r.status != 200 || r.body["openid"] != openID {
					t.Fatalf("after the fault, the first session: got %d %s, want 200", r.status, r.raw)
				}
			}

			// Recovery: the same handler serves the route again.
			e.store.Clear()
			if tt.route == "login" {
				code = e.emu.Code("bob")
			}
			want := map[string]int{"login": 200, "validate": 200, "renew": 200, "decrypt": 200, "logout": 204}[tt.route]
			if r := send(); r.status != want {
				t.Fatalf("after the store recovered: got %d %s, want %d", r.status, r.raw, want)
			}
		})
	}
}

// TestStoreFailureAtClaimKeepsTheCode checks that a login refused because the
// store could not claim the code did not spend the code at WeChat: the same
// code logs in once the store is back.
func TestStoreFailureAtClaimKeepsTheCode(t *testing.T) {
	e := newFaultEnv(t)
	code := e.emu.Code("alice")
	e.store.Set(faulty.Fault{Mode: faulty.Fail, Ops: []faulty.Op{faulty.ClaimCode}})
	if r := e.do(t, "POST", "/login", `{"code":"`+code+`"}`); r.status != 503 {
		t.Fatalf("got %d %s, want 503", r.status, r.raw)
	}
	if e.emu.Calls() != 0 {
		t.Fatalf("WeChat was called %d times for a code the store could not claim", e.emu.Calls())
	}
	e.store.Clear()
	if r := e.do(t, "POST", "/login", `{"code":"`+code+`"}`); r.status != 200 {
		t.Fatalf("the same code after recovery: got %d %s, want 200", r.status, r.raw)
	}
}

// TestStoreHangIsBoundedByTheDeadline checks that a store that never answers,
// behind a client without a timeout of its own, still cannot hold a request
// past its deadline (the invocation's, on Lambda and SCF).
func TestStoreHangIsBoundedByTheDeadline(t *testing.T) {
	e := newFaultEnv(t)
	skey, _ := e.login(t, "alice")
	e.store.Set(faulty.Fault{Mode: faulty.Hang})
	for _, path := range []string{"/validate", "/logout", "/login"} {
		method, body := "POST", ""
		if path == "/validate" {
			method = "GET"
		}
		if path == "/login" {
			body = `{"code":"` + e.emu.Code("bob") + `"}`
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+skey)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		e.h.ServeHTTP(rec, req)
		took := time.Since(start)
		cancel()
		// Generous bound: the point is that it ends, not how fast.
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "store_unavailable") || took > 3*time.Second {
			t.Fatalf("%s with a hung store: got %d %s after %v, want 503 store_unavailable at the 300ms deadline", path, rec.Code, rec.Body, took)
		}
	}
}

// TestHungReleaseIsBounded checks the one store call made after a request's
// context may be done: releasing the claim of a login that failed. It runs
// on a context of its own, which must still end.
func TestHungReleaseIsBounded(t *testing.T) {
	e := newFaultEnv(t)
	e.store.Set(faulty.Fault{Mode: faulty.Hang, Ops: []faulty.Op{faulty.PutUser, faulty.ReleaseCode}})
	// Time for WeChat (past wechat.ReplyReserve), then the user's row hangs.
	ctx, cancel := context.WithTimeout(context.Background(), wechat.ReplyReserve+500*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "POST", "/login", strings.NewReader(`{"code":"`+e.emu.Code("alice")+`"}`))
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	start := time.Now()
	go func() { e.h.ServeHTTP(rec, req); close(done) }()
	select {
	case <-done:
		if rec.Code != 503 {
			t.Fatalf("got %d %s, want 503", rec.Code, rec.Body)
		}
		t.Logf("answered 503 after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("a hung release of the code claim held the request for 10s")
	}
}

// TestPanicsBecomeInternal makes every store call panic in turn: each request
// answers 500 internal with no detail, the detail (and stack) reaches the log
// line only, and the handler serves the next request.
func TestPanicsBecomeInternal(t *testing.T) {
	for _, op := range faulty.Ops {
		t.Run(string(op), func(t *testing.T) {
			e := newFaultEnv(t)
			skey, openID := e.login(t, "alice")
			e.clock.Add(int64(13 * time.Hour)) // so validate renews
			enc, _ := e.emu.Encrypt(openID, nil)
			encBody, _ := json.Marshal(enc)
			e.store.Set(faulty.Fault{Mode: faulty.Panic, Ops: []faulty.Op{op}})
			e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40029, Times: 1}) // so login releases its claim
			var panicked int
			for _, rq := range []struct{ method, path, body string }{
				{"POST", "/login", `{"code":"` + e.emu.Code("bob") + `"}`},
				{"POST", "/login", `{"code":"` + e.emu.Code("carol") + `"}`},
				{"GET", "/validate", ""},
				{"POST", "/decrypt", string(encBody)},
				{"POST", "/logout", `{"all":true}`}, // reaches RemoveSessions
				{"POST", "/logout", ""},
			} {
				r := e.do(t, rq.method, rq.path, rq.body, bearer(skey)...)
				if r.status >= 500 {
					panicked++
					if r.status != 500 || strings.TrimSpace(r.raw) != `{"error":"internal","message":"internal error"}` {
						t.Fatalf("%s %s: got %d %s, want the bare 500 internal", rq.method, rq.path, r.status, r.raw)
					}
				}
			}
			if panicked == 0 {
				t.Fatalf("no request reached %s", op)
			}
			if !strings.Contains(e.logs.String(), "injected panic in "+string(op)) || !strings.Contains(e.logs.String(), "goroutine") {
				t.Fatalf("the panic's detail and stack are not in the log")
			}
			e.store.Clear()
			e.emu.SetFault(nil)
			if r := e.do(t, "POST", "/login", `{"code":"`+e.emu.Code("dave")+`"}`); r.status != 200 {
				t.Fatalf("after the panics: got %d %s, want 200", r.status, r.raw)
			}
		})
	}
}

// TestPanicWithConcurrentLoginsOfOneCode makes a login panic while other
// requests wait for the same code. singleflight re-panics such a panic on a
// goroutine of its own when others wait, which no recover reaches: the
// process would die. Every caller must get 500 internal instead, and the
// process (this test) live on.
func TestPanicWithConcurrentLoginsOfOneCode(t *testing.T) {
	e := newFaultEnv(t)
	code := e.emu.Code("alice")
	// WeChat answers slowly, so the other logins pile up behind the first in
	// singleflight; then writing the user panics.
	e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultSlow, Delay: 200 * time.Millisecond, Times: 1})
	e.store.Set(faulty.Fault{Mode: faulty.Panic, Ops: []faulty.Op{faulty.PutUser}})
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() {
			req := httptest.NewRequest("POST", "/login", strings.NewReader(`{"code":"`+code+`"}`))
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			statuses[i] = rec.Code
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusInternalServerError {
			t.Errorf("login %d: got %d, want 500", i, s)
		}
	}
	if e.emu.Calls() != 1 {
		t.Errorf("WeChat was called %d times for one code, want 1", e.emu.Calls())
	}
}

// TestClientGivingUpKeepsTheLogin has a client give up on a login while
// WeChat (which has already used the code) is slow to answer, then retry with
// the same code, as a mini-program does after a request timeout: the retry
// gets the session the first request created, with no second WeChat call,
// instead of a spent code.
func TestClientGivingUpKeepsTheLogin(t *testing.T) {
	e := newFaultEnv(t)
	code := e.emu.Code("alice")
	e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultSlow, Delay: 200 * time.Millisecond, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, "POST", "/login", strings.NewReader(`{"code":"`+code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	done := make(chan struct{})
	go func() { e.h.ServeHTTP(httptest.NewRecorder(), req); close(done) }()
	for e.emu.Calls() == 0 {
		time.Sleep(2 * time.Millisecond)
	}
	cancel() // the client is gone

	r := e.do(t, "POST", "/login", `{"code":"`+code+`"}`)
	<-done
	if r.status != 200 || e.emu.Calls() != 1 {
		t.Fatalf("the retry with the same code: got %d %s after %d WeChat calls, want 200 after 1", r.status, r.raw, e.emu.Calls())
	}
	if again := e.do(t, "POST", "/login", `{"code":"`+code+`"}`); again.body["skey"] != r.body["skey"] {
		t.Fatalf("a third try with the code got another session")
	}
}
