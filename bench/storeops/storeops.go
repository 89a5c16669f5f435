// Package storeops counts what each wxsession request costs in store
// operations and WeChat calls, against a real store: every request the
// DynamoDB client sends is counted by a middleware on the client, every
// command the Redis client sends by a go-redis hook, and every jscode2session
// call by the WeChat emulator.
//
// The counts are facts, not timings: `make bench` reports them and a test
// asserts them (validate in steady state is exactly one read and no write,
// login one WeChat call and at most three writes, decrypt at most two reads,
// logging out everywhere two reads and a write per listed session plus one).
package storeops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
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
	"github.com/wxsession/wxsession/shared/store/redis"
	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/wechat"
)

// Counter counts store round trips by operation name (DynamoDB's GetItem, …;
// Redis's get, set, evalsha, …). It is safe for concurrent use.
type Counter struct {
	mu    sync.Mutex
	calls map[string]int
}

// NewCounter returns an empty Counter.
func NewCounter() *Counter { return &Counter{calls: map[string]int{}} }

func (c *Counter) add(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	clear(c.calls)
	c.mu.Unlock()
}

// Counts returns a copy of the counts.
func (c *Counter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// DynamoDB is an APIOptions entry for the DynamoDB client (see
// dynamo.ClientOptions.APIOptions). It sits in the finalize step after the
// retryer, so it counts each HTTP request the client sends, retries included.
func (c *Counter) DynamoDB(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("wxsessionStoreOps",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.add(awsmiddleware.GetOperationName(ctx))
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// RedisHook returns a go-redis hook counting every command sent, pipelined
// ones included (add it with (*goredis.Client).AddHook).
func (c *Counter) RedisHook() goredis.Hook { return redisHook{c} }

type redisHook struct{ c *Counter }

func (redisHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h redisHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.c.add(cmd.Name())
		return next(ctx, cmd)
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

// Kind is what an operation does to the store.
type Kind string

// The kinds of store operation.
const (
	Read  Kind = "read"
	Write Kind = "write" // including conditional writes and deletes
)

// kinds classifies the operations the stores send. The Redis scripts are
// the conditional writes: claiming a login code and renewing a session.
var kinds = map[string]Kind{
	"GetItem": Read, "PutItem": Write, "UpdateItem": Write, "DeleteItem": Write,
	"get": Read, "set": Write, "del": Write, "evalsha": Write, "eval": Write,
}

// KindOf classifies op; an operation the stores are not known to send is "".
func KindOf(op string) Kind { return kinds[op] }

// Row is what one request cost.
type Row struct {
	Request string
	Status  int            // the HTTP status answered
	Ops     map[string]int // store round trips by operation name
	Reads   int
	Writes  int
	Other   int // operations KindOf does not know
	WeChat  int // jscode2session calls
}

// Detail lists the operations, e.g. "GetItem×1, UpdateItem×1", or "none".
func (r Row) Detail() string {
	if len(r.Ops) == 0 {
		return "none"
	}
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(r.Ops)) {
		parts = append(parts, fmt.Sprintf("%s×%d", op, r.Ops[op]))
	}
	return strings.Join(parts, ", ")
}

// The requests Measure makes, in order.
const (
	LoginNew       = "login (new code)"
	LoginRepeated  = "login (same code again)"
	ValidateSteady = "validate (steady state)"
	ValidateRenew  = "validate (renewal due)"
	ValidateAfter  = "validate (just renewed)"
	Decrypt        = "decrypt"
	Logout         = "logout"
	ValidateGone   = "validate (after logout)"
	LoginListed    = "login (user with sessions)"
	LogoutAll      = "logout everywhere (2 listed)"
	LoginPastCap   = "login (past the cap)"
)

// Config is the configuration Measure runs the service with: a 24h sliding
// TTL, and session_keys sealed at rest as in production.
var Config = config.Config{
	AppID:   "wx1234567890abcdef",
	Secret:  "0123456789abcdef0123456789abcdef",
	TTL:     24 * time.Hour,
	MaxAge:  720 * time.Hour,
	SealKey: []byte("0123456789abcdef0123456789abcdef"),
}

// Measure runs each request of the session's life once through the HTTP
// handlers over st, and returns what each cost as counted by c. st must read
// the time from clock, which Measure moves forward to make renewal due. A
// warm-up round first loads what a store loads once (Redis's scripts), so the
// rows show the steady cost.
func Measure(ctx context.Context, st session.Store, c *Counter, clock *storetest.Clock) ([]Row, error) {
	emu := emulator.New(Config.AppID, Config.Secret, emulator.WithClock(clock.Now))
	wxSrv := httptest.NewServer(emu)
	defer wxSrv.Close()
	cfg := Config
	cfg.APIBase = wxSrv.URL
	svc, err := boot.NewService(cfg, st, wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil), session.WithClock(clock.Now))
	if err != nil {
		return nil, err
	}
	h := api.All(svc, api.WithLogger(slog.New(slog.DiscardHandler)))
	// The same over a service that lets a user hold one session, so the
	// second login is past the cap.
	capped := cfg
	capped.MaxSessionsPerUser = 1
	capSvc, err := boot.NewService(capped, st, wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil), session.WithClock(clock.Now))
	if err != nil {
		return nil, err
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

	// Warm-up: a login, a renewing validate and a decrypt, uncounted.
	status, warmSkey := login(emu.Code("warm-up"))
	if status != http.StatusOK {
		return nil, fmt.Errorf("warm-up login: got %d", status)
	}
	clock.Advance(cfg.TTL/2 + time.Minute)
	if status, _ := do(http.MethodGet, "/validate", warmSkey, nil); status != http.StatusOK {
		return nil, fmt.Errorf("warm-up validate: got %d", status)
	}
	enc, err := emu.Encrypt(emu.OpenID("warm-up"), nil)
	if err != nil {
		return nil, err
	}
	if status, _ := do(http.MethodPost, "/decrypt", warmSkey, enc); status != http.StatusOK {
		return nil, fmt.Errorf("warm-up decrypt: got %d", status)
	}

	// And a logout everywhere (Redis loads the script that trims the list).
	if status, _ := do(http.MethodPost, "/logout", warmSkey, map[string]bool{"all": true}); status != http.StatusNoContent {
		return nil, fmt.Errorf("warm-up logout everywhere: got %d", status)
	}
	var rows []Row
	measure := func(name string, want int, prep func() error, f func() int) error {
		if prep != nil {
			if err := prep(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		c.Reset()
		before := emu.Calls()
		status := f()
		row := Row{Request: name, Status: status, Ops: c.Counts(), WeChat: emu.Calls() - before}
		for op, n := range row.Ops {
			switch KindOf(op) {
			case Read:
				row.Reads += n
			case Write:
				row.Writes += n
			default:
				row.Other += n
			}
		}
		rows = append(rows, row)
		if status != want {
			return fmt.Errorf("%s: got status %d, want %d", name, status, want)
		}
		return nil
	}
	const user = "alice"
	code := emu.Code(user)
	var skey string
	steps := []struct {
		name string
		want int
		f    func() int
	}{
		{LoginNew, http.StatusOK, func() int { s, k := login(code); skey = k; return s }},
		{LoginRepeated, http.StatusOK, func() int { s, _ := login(code); return s }},
		{ValidateSteady, http.StatusOK, func() int { s, _ := do(http.MethodGet, "/validate", skey, nil); return s }},
		{ValidateRenew, http.StatusOK, func() int {
			clock.Advance(cfg.TTL/2 + time.Minute)
			s, _ := do(http.MethodGet, "/validate", skey, nil)
			return s
		}},
		{ValidateAfter, http.StatusOK, func() int { s, _ := do(http.MethodGet, "/validate", skey, nil); return s }},
		{Decrypt, http.StatusOK, func() int {
			enc, err := emu.Encrypt(emu.OpenID(user), nil)
			if err != nil {
				return 0
			}
			c.Reset() // encrypting is the phone's side, not the request's
			s, _ := do(http.MethodPost, "/decrypt", skey, enc)
			return s
		}},
		{Logout, http.StatusNoContent, func() int { s, _ := do(http.MethodPost, "/logout", skey, nil); return s }},
		{ValidateGone, http.StatusUnauthorized, func() int { s, _ := do(http.MethodGet, "/validate", skey, nil); return s }},
		// alice's list names the logged-out session and now a second one
		{LoginListed, http.StatusOK, func() int { s, k := login(emu.Code(user)); skey = k; return s }},
		{LogoutAll, http.StatusNoContent, func() int {
			s, _ := do(http.MethodPost, "/logout", skey, map[string]bool{"all": true})
			return s
		}},
		{LoginPastCap, http.StatusOK, func() int { s, _ := loginAt(capH, emu.Code("bob")); return s }},
	}
	// Uncounted set-up before a step.
	prep := map[string]func() error{
		LoginPastCap: func() error {
			// bob's first session, at the cap of one
			if s, _ := loginAt(capH, emu.Code("bob")); s != http.StatusOK {
				return fmt.Errorf("first login: got %d", s)
			}
			return nil
		},
	}
	for _, st := range steps {
		if err := measure(st.name, st.want, prep[st.name], st.f); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// DynamoDB returns a store over a new table (TTL on) at the DynamoDB endpoint
// (DynamoDB Local), its client counted by c, reading the time from now.
func DynamoDB(ctx context.Context, endpoint string, c *Counter, now func() time.Time) (*dynamo.Store, error) {
	client := dynamo.NewClient(dynamo.ClientOptions{
		Region:      "us-east-1",
		Endpoint:    endpoint,
		Credentials: aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"},
		APIOptions:  []func(*middleware.Stack) error{c.DynamoDB},
	})
	table := "wxsession-storeops-" + strings.ToLower(session.NewSkey()[:12])
	if err := dynamo.EnsureTable(ctx, client, table); err != nil {
		return nil, fmt.Errorf("create table %s: %w", table, err)
	}
	return dynamo.New(client, table, now), nil
}

// Redis returns a store at the Redis URL under a fresh key prefix, its client
// counted by c, reading the time from now. Close it when done.
func Redis(url string, c *Counter, now func() time.Time) (*redis.Store, error) {
	client, err := redis.NewClient(url)
	if err != nil {
		return nil, err
	}
	client.AddHook(c.RedisHook())
	prefix := "wxsession-storeops-" + strings.ToLower(session.NewSkey()[:12]) + ":"
	return redis.New(client, now, redis.WithPrefix(prefix)), nil
}
