package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/dynamo"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/store/redis"
	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/token"
	"github.com/wxsession/wxsession/shared/wechat"
)

// budgets are the store operations and WeChat calls each request may cost:
// exact where the budget is exact, ranges elsewhere. Writes include
// conditional writes and deletes; the Redis scripts (code claim, renewal,
// the user's row and session list) are writes.
var budgets = []struct {
	request       string
	reads, writes [2]int // [min, max]
	total, wechat int    // at most; exactly
}{
	// claim the code, write the user, write the session; one WeChat call
	{"login (new code)", [2]int{0, 0}, [2]int{1, 3}, 3, 1},
	// the claim finds the first login's, which returns its session: no WeChat call
	{"login (same code again)", [2]int{0, 1}, [2]int{0, 1}, 2, 0},
	{"validate (steady state)", [2]int{1, 1}, [2]int{0, 0}, 1, 0},
	// less than half the TTL left: one read and one conditional renewal
	{"validate (renewal due)", [2]int{1, 1}, [2]int{1, 1}, 2, 0},
	{"validate (just renewed)", [2]int{1, 1}, [2]int{0, 0}, 1, 0},
	// the session and the user's session_key
	{"decrypt", [2]int{1, 2}, [2]int{0, 0}, 2, 0},
	// a process with no access_token yet: the session, the token row (none),
	// its lease and the new token; stable_token and getuserphonenumber
	{"phonenumber (cold process)", [2]int{2, 2}, [2]int{2, 2}, 4, 2},
	// warm: the session alone, and getuserphonenumber on the cached token
	{"phonenumber (warm)", [2]int{1, 1}, [2]int{0, 0}, 1, 1},
	{"logout", [2]int{0, 0}, [2]int{1, 1}, 1, 0},
	{"validate (after logout)", [2]int{1, 1}, [2]int{0, 0}, 1, 0},
	// a login of a user whose row lists sessions costs what a first one
	// does: the list is updated in the user's write, never read first
	{"login (user with sessions)", [2]int{0, 0}, [2]int{3, 3}, 3, 1},
	// the skey's session and the user's list; one delete per listed session
	// (2) and one write trimming the list
	{"logout everywhere (2 listed)", [2]int{2, 2}, [2]int{3, 3}, 5, 0},
	// past SESSION_MAX_PER_USER: the oldest is read (still live?), deleted
	// and trimmed from the list, on top of a login's three writes
	{"login (past the cap)", [2]int{1, 1}, [2]int{5, 5}, 6, 1},
}

// reads are the operations that read; every other one the stores send
// writes. DynamoDB and Redis operations are counted on the wire, the memory
// store's at its session.Store methods.
var reads = map[string]bool{"GetItem": true, "get": true, string(faulty.GetSession): true, string(faulty.GetUser): true, "GetToken": true}

// counter counts store operations by name.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *counter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
}

func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

// redisHook counts every command the go-redis client sends, but an EVALSHA
// that the server answered NOSCRIPT: go-redis then sends the script itself
// (EVAL), which is counted, and whether the server had the script already
// depends on which test ran a script first, not on the store.
type redisHook struct{ c *counter }

func (redisHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h redisHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() != "evalsha" || !goredis.HasErrorPrefix(err, "NOSCRIPT") {
			h.c.add(cmd.Name())
		}
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			h.c.add(cmd.Name())
		}
		return next(ctx, cmds)
	}
}

// serverURL returns the URL in env, or skips the test; with CI set, a
// missing server fails it.
func serverURL(t *testing.T, env string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and %s is not: start the servers with scripts/test-services.sh", env)
		}
		t.Skipf("set %s to run (make test starts the servers: scripts/test-services.sh)", env)
	}
	return u
}

// TestStoreOperationBudgets serves each request of a session's life once
// through the real HTTP handlers and counts what it costs: every request the
// DynamoDB client sends to DynamoDB Local (a finalize middleware, after the
// retryer, so a retry counts), every command the go-redis client sends to
// redis-server (a hook), every memory store call, and every jscode2session
// call (the WeChat emulator). Each count must be within its budget. It logs
// one "budget" line per request, which make bench reports.
func TestStoreOperationBudgets(t *testing.T) {
	type opener func(t *testing.T, c *counter, now func() time.Time) session.Store
	stores := []struct {
		name string
		open opener
	}{
		{"memory", func(_ *testing.T, c *counter, now func() time.Time) session.Store {
			m := memory.New(now)
			return countedMemory{faulty.New(m), countedTokens{m, c}, c}
		}},
		{"DynamoDB", func(t *testing.T, c *counter, now func() time.Time) session.Store {
			client := dynamo.NewClient(dynamo.ClientOptions{
				Region: "us-east-1", Endpoint: serverURL(t, "WXSESSION_DYNAMODB_URL"),
				Credentials: aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"},
				APIOptions: []func(*middleware.Stack) error{func(stack *middleware.Stack) error {
					return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("countOps",
						func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
							c.add(awsmiddleware.GetOperationName(ctx))
							return next.HandleFinalize(ctx, in)
						}), middleware.After)
				}},
			})
			table := "wxsession-budget-" + strings.ToLower(session.NewSkey()[:12])
			if err := dynamo.EnsureTable(context.Background(), client, table); err != nil {
				t.Fatalf("create table %s: %v", table, err)
			}
			c.take() // creating the table is not a request's
			return dynamo.New(client, table, now)
		}},
		{"Redis", func(t *testing.T, c *counter, now func() time.Time) session.Store {
			client, err := redis.NewClient(serverURL(t, "WXSESSION_REDIS_URL"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = client.Close() })
			client.AddHook(redisHook{c})
			prefix := "wxsession-budget-" + strings.ToLower(session.NewSkey()[:12]) + ":"
			return redis.New(client, now, redis.WithPrefix(prefix))
		}},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			clock, c := storetest.NewClock(), &counter{calls: map[string]int{}}
			runBudgets(t, s.name, s.open(t, c, clock.Now), c, clock)
		})
	}
}

// countedMemory counts the memory store's calls at the session.Store
// interface (faulty.Store counts them; it injects no fault here).
type countedMemory struct {
	*faulty.Store
	countedTokens
	c *counter
}

// countedTokens counts the memory store's token.Store calls.
type countedTokens struct {
	s token.Store
	c *counter
}

func (t countedTokens) GetToken(ctx context.Context, appID string) (token.Row, error) {
	t.c.add("GetToken")
	return t.s.GetToken(ctx, appID)
}

func (t countedTokens) LeaseToken(ctx context.Context, appID, holder, ifToken string, until time.Time) (bool, error) {
	t.c.add("LeaseToken")
	return t.s.LeaseToken(ctx, appID, holder, ifToken, until)
}

func (t countedTokens) PutToken(ctx context.Context, appID, holder string, row token.Row) error {
	t.c.add("PutToken")
	return t.s.PutToken(ctx, appID, holder, row)
}

func (t countedTokens) ReleaseToken(ctx context.Context, appID, holder string) error {
	t.c.add("ReleaseToken")
	return t.s.ReleaseToken(ctx, appID, holder)
}

func (t countedTokens) DropToken(ctx context.Context, appID, ifToken string) (bool, error) {
	t.c.add("DropToken")
	return t.s.DropToken(ctx, appID, ifToken)
}

// snapshot moves the calls faulty counted since the last snapshot to c.
func (m countedMemory) snapshot(last map[faulty.Op]int) {
	for _, op := range faulty.Ops {
		for range m.Calls(op) - last[op] {
			m.c.add(string(op))
		}
		last[op] = m.Calls(op)
	}
}

func runBudgets(t *testing.T, storeName string, st session.Store, c *counter, clock *storetest.Clock) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Config{
		AppID: "wx1234567890abcdef", Secret: "0123456789abcdef0123456789abcdef",
		TTL: 24 * time.Hour, MaxAge: 720 * time.Hour, SealKey: []byte("0123456789abcdef0123456789abcdef"),
	}
	emu := emulator.New(cfg.AppID, cfg.Secret, emulator.WithClock(clock.Now))
	wx := httptest.NewServer(emu)
	defer wx.Close()
	cfg.APIBase = wx.URL
	svc, err := boot.NewService(cfg, st, wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil), session.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	h := api.All(svc, api.WithLogger(slog.New(slog.DiscardHandler)))
	// The same over a service that lets a user hold one session, so that a
	// user's second login is past the cap.
	capped := cfg
	capped.MaxSessionsPerUser = 1
	capSvc, err := boot.NewService(capped, st, wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil), session.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	capH := api.All(capSvc, api.WithLogger(slog.New(slog.DiscardHandler)))
	serve := func(h http.Handler, method, path, skey string, body any) (int, []byte) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		req := httptest.NewRequestWithContext(ctx, method, path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if skey != "" {
			req.Header.Set("Authorization", "Bearer "+skey)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.Bytes()
	}
	do := func(method, path, skey string, body any) (int, []byte) { return serve(h, method, path, skey, body) }
	loginAt := func(h http.Handler, code string) (int, string) {
		status, body := serve(h, http.MethodPost, "/login", "", map[string]string{"code": code})
		var out struct {
			Skey string `json:"skey"`
		}
		_ = json.Unmarshal(body, &out)
		return status, out.Skey
	}
	login := func(code string) (int, string) { return loginAt(h, code) }
	logoutAll := func(skey string) int {
		s, _ := do(http.MethodPost, "/logout", skey, map[string]bool{"all": true})
		return s
	}
	validate := func(skey string) int { s, _ := do(http.MethodGet, "/validate", skey, nil); return s }
	decrypt := func(user, skey string) int {
		enc, err := emu.Encrypt(emu.OpenID(user), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := do(http.MethodPost, "/decrypt", skey, enc)
		return s
	}

	phone := func(user, skey string) int {
		s, _ := do(http.MethodPost, "/phonenumber", skey, map[string]string{"code": emu.PhoneCode(user)})
		return s
	}
	wechatCalls := func() int {
		return emu.CallsTo(emulator.APICode2Session) + emu.CallsTo(emulator.APIStableToken) + emu.CallsTo(emulator.APIPhoneNumber)
	}

	// Warm-up, uncounted: loads what a store loads once (Redis's scripts),
	// so the counts are the steady cost.
	// A server that has just started (DynamoDB Local's JVM) may answer its
	// first requests too slowly on a busy machine: try a few times.
	status, warm := 0, ""
	for range 5 {
		if status, warm = login(emu.Code("warm-up")); status != http.StatusServiceUnavailable {
			break
		}
	}
	if status != http.StatusOK {
		t.Fatalf("warm-up login: got %d", status)
	}
	clock.Advance(cfg.TTL/2 + time.Minute)
	if validate(warm) != http.StatusOK || decrypt("warm-up", warm) != http.StatusOK || logoutAll(warm) != http.StatusNoContent {
		t.Fatal("warm-up validate, decrypt or logout everywhere failed")
	}

	code := emu.Code("alice")
	var skey string
	steps := map[string]func() (got, want int){
		"login (new code)":        func() (int, int) { s, k := login(code); skey = k; return s, http.StatusOK },
		"login (same code again)": func() (int, int) { s, _ := login(code); return s, http.StatusOK },
		"validate (steady state)": func() (int, int) { return validate(skey), http.StatusOK },
		"validate (renewal due)": func() (int, int) {
			clock.Advance(cfg.TTL/2 + time.Minute)
			return validate(skey), http.StatusOK
		},
		"validate (just renewed)":    func() (int, int) { return validate(skey), http.StatusOK },
		"decrypt":                    func() (int, int) { return decrypt("alice", skey), http.StatusOK },
		"phonenumber (cold process)": func() (int, int) { return phone("alice", skey), http.StatusOK },
		"phonenumber (warm)":         func() (int, int) { return phone("alice", skey), http.StatusOK },
		"logout":                     func() (int, int) { s, _ := do(http.MethodPost, "/logout", skey, nil); return s, http.StatusNoContent },
		"validate (after logout)":    func() (int, int) { return validate(skey), http.StatusUnauthorized },
		// alice's list names the logged-out session and now a second one
		"login (user with sessions)":   func() (int, int) { s, k := login(emu.Code("alice")); skey = k; return s, http.StatusOK },
		"logout everywhere (2 listed)": func() (int, int) { return logoutAll(skey), http.StatusNoContent },
		"login (past the cap)":         func() (int, int) { s, _ := loginAt(capH, emu.Code("bob")); return s, http.StatusOK },
	}
	// Uncounted set-up before a request.
	prep := map[string]func(){
		"login (past the cap)": func() { // bob's first session, at the cap of one
			if s, _ := loginAt(capH, emu.Code("bob")); s != http.StatusOK {
				t.Fatalf("bob's first login: got %d", s)
			}
		},
	}
	mem, isMem := st.(countedMemory)
	last := map[faulty.Op]int{}
	for _, b := range budgets {
		if prep[b.request] != nil {
			prep[b.request]()
		}
		if isMem {
			mem.snapshot(last)
		}
		c.take()
		wechatBefore := wechatCalls()
		got, want := steps[b.request]()
		if isMem {
			mem.snapshot(last)
		}
		ops, wechat := c.take(), wechatCalls()-wechatBefore
		if got != want {
			t.Fatalf("%s: got status %d, want %d", b.request, got, want)
		}
		var r, w int
		var detail []string
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			if reads[op] {
				r += ops[op]
			} else {
				w += ops[op]
			}
			detail = append(detail, fmt.Sprintf("%s×%d", op, ops[op]))
		}
		t.Logf("budget\t%s\t%s\t%d\t%d read, %d write: %s", storeName, b.request, wechat, r, w, strings.Join(detail, ", "))
		if r < b.reads[0] || r > b.reads[1] {
			t.Errorf("%s: got %d store reads (%v), want %d to %d", b.request, r, detail, b.reads[0], b.reads[1])
		}
		if w < b.writes[0] || w > b.writes[1] {
			t.Errorf("%s: got %d store writes (%v), want %d to %d", b.request, w, detail, b.writes[0], b.writes[1])
		}
		if r+w > b.total {
			t.Errorf("%s: got %d store operations (%v), want at most %d", b.request, r+w, detail, b.total)
		}
		if wechat != b.wechat {
			t.Errorf("%s: got %d WeChat calls, want %d", b.request, wechat, b.wechat)
		}
	}
}
