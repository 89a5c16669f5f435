package token_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/reqlog"
	"github.com/wxsession/wxsession/shared/seal"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/token"
	"github.com/wxsession/wxsession/shared/wechat"
)

const (
	appID  = "wx0123456789abcdef"
	secret = "token-test-secret"
)

// countingStore counts the calls a Manager makes, and fails them on demand.
type countingStore struct {
	token.Store
	reads, writes atomic.Int64
	down          atomic.Bool
}

var errDown = errors.New("store down")

func (s *countingStore) GetToken(ctx context.Context, app string) (token.Row, error) {
	s.reads.Add(1)
	if s.down.Load() {
		return token.Row{}, errDown
	}
	return s.Store.GetToken(ctx, app)
}

func (s *countingStore) LeaseToken(ctx context.Context, app, holder, ifToken string, until time.Time) (bool, error) {
	s.writes.Add(1)
	if s.down.Load() {
		return false, errDown
	}
	return s.Store.LeaseToken(ctx, app, holder, ifToken, until)
}

func (s *countingStore) PutToken(ctx context.Context, app, holder string, row token.Row) error {
	s.writes.Add(1)
	if s.down.Load() {
		return errDown
	}
	return s.Store.PutToken(ctx, app, holder, row)
}

type env struct {
	clock *storetest.Clock
	emu   *emulator.Emulator
	wx    *wechat.Client
	store *countingStore
	mem   *memory.Store
	fetch token.Fetcher
}

func newEnv(t testing.TB) *env {
	t.Helper()
	clock := storetest.NewClock()
	emu := emulator.New(appID, secret, emulator.WithClock(clock.Now))
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	wx := wechat.NewClient(srv.URL, appID, secret, nil)
	wx.AttemptTimeout = 500 * time.Millisecond
	mem := memory.New(clock.Now)
	return &env{
		clock: clock, emu: emu, wx: wx, mem: mem, store: &countingStore{Store: mem},
		fetch: func(ctx context.Context, app string) (string, time.Duration, error) {
			tok, err := wx.StableToken(ctx, app, secret)
			return tok.Token, tok.ExpiresIn, err
		},
	}
}

func (e *env) manager(o token.Options) *token.Manager {
	o.Now = e.clock.Now
	return token.New(e.store, e.fetch, o)
}

func TestWarmTokenReadsNoStore(t *testing.T) {
	e := newEnv(t)
	m := e.manager(token.Options{})
	first, err := m.Token(context.Background(), appID)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	reads, writes := e.store.reads.Load(), e.store.writes.Load()
	for range 100 {
		tok, err := m.Token(context.Background(), appID)
		if err != nil || tok.Value != first.Value {
			t.Fatalf("warm Token: got the first token %v, %v", tok.Value == first.Value, err)
		}
	}
	if r, w := e.store.reads.Load()-reads, e.store.writes.Load()-writes; r != 0 || w != 0 {
		t.Fatalf("100 warm gets made %d store reads and %d writes, want none", r, w)
	}
	if n := e.emu.CallsTo(emulator.APIStableToken); n != 1 {
		t.Fatalf("stable_token called %d times, want 1", n)
	}
}

func TestFetchFailureStoresNothing(t *testing.T) {
	e := newEnv(t)
	m := e.manager(token.Options{})
	e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40164, API: emulator.APIStableToken})
	ctx, fields := reqlog.NewContext(context.Background())
	_, err := m.Token(ctx, appID)
	if apperr.CodeOf(err) != apperr.WeChatUnavailable {
		t.Fatalf("got %v, want wechat_unavailable", err)
	}
	if !hasAttr(fields, "wechat_token_errcode", "40164") {
		t.Fatalf("log fields %v lack wechat_token_errcode=40164", fields.Attrs())
	}
	if row, err := e.mem.GetToken(context.Background(), appID); !errors.Is(err, token.ErrNotFound) {
		t.Fatalf("after a failed fetch the store holds %+v (%v), want nothing, no lease either", row, err)
	}
	// The lease was released: the next call fetches at once and succeeds.
	e.emu.SetFault(nil)
	if _, err := m.Token(context.Background(), appID); err != nil {
		t.Fatalf("Token after the fault cleared: %v", err)
	}
	if n := e.emu.CallsTo(emulator.APIStableToken); n != 2 {
		t.Fatalf("stable_token called %d times, want 2", n)
	}
}

func TestStoreDown(t *testing.T) {
	e := newEnv(t)
	m := e.manager(token.Options{})
	e.store.down.Store(true)
	if _, err := m.Token(context.Background(), appID); apperr.CodeOf(err) != apperr.StoreUnavailable {
		t.Fatalf("cold, store down: got %v, want store_unavailable", err)
	}
	e.store.down.Store(false)
	tok, err := m.Token(context.Background(), appID)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	// In the renewal window with the store down, the valid token is kept.
	e.clock.Advance(emulator.DefaultTokenLifetime - time.Minute)
	e.store.down.Store(true)
	got, err := m.Token(context.Background(), appID)
	if err != nil || got.Value != tok.Value {
		t.Fatalf("renewal window, store down: got the current token %v, %v; want it", got.Value == tok.Value, err)
	}
}

func TestWaitEndsAtDeadline(t *testing.T) {
	e := newEnv(t)
	m := e.manager(token.Options{})
	// Another instance holds the lease and never stores a token.
	if won, err := e.mem.LeaseToken(context.Background(), appID, "other", "", e.clock.Now().Add(time.Hour)); err != nil || !won {
		t.Fatalf("LeaseToken: %v, %v", won, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := m.Token(ctx, appID); apperr.CodeOf(err) != apperr.WeChatUnavailable {
		t.Fatalf("got %v, want wechat_unavailable once the deadline passed", err)
	}
	if n := e.emu.CallsTo(emulator.APIStableToken); n != 0 {
		t.Fatalf("stable_token called %d times while another held the lease, want 0", n)
	}
}

func TestDoRetriesOnceOnRefusal(t *testing.T) {
	e := newEnv(t)
	m := e.manager(token.Options{})
	var calls []string
	err := m.Do(context.Background(), appID, func(tok string) error {
		calls = append(calls, tok)
		if len(calls) == 1 {
			e.emu.RevokeToken(appID)
			return &wechat.TokenRefusedError{Errcode: 40001}
		}
		if !e.emu.ValidToken(tok) {
			return errors.New("retried with a token WeChat does not accept")
		}
		return nil
	})
	if err != nil || len(calls) != 2 || calls[0] == calls[1] {
		t.Fatalf("got %v after %d calls, want success on the second call with a new token", err, len(calls))
	}
	// An error that is not a refusal is returned as it is, without a retry.
	calls = nil
	want := apperr.Errorf(apperr.InvalidPhoneCode, "no")
	if err := m.Do(context.Background(), appID, func(tok string) error { calls = append(calls, tok); return want }); !errors.Is(err, want) || len(calls) != 1 {
		t.Fatalf("got %v after %d calls, want the error after 1", err, len(calls))
	}
	if n := e.emu.CallsTo(emulator.APIStableToken); n != 2 {
		t.Fatalf("stable_token called %d times, want 2", n)
	}
}

func TestSealedUnderAnotherKey(t *testing.T) {
	e := newEnv(t)
	s1, _ := seal.New(make([]byte, seal.KeySize))
	key2 := make([]byte, seal.KeySize)
	key2[0] = 2
	s2, _ := seal.New(key2)
	first, err := e.manager(token.Options{Sealer: s1}).Token(context.Background(), appID)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if row, _ := e.mem.GetToken(context.Background(), appID); !strings.HasPrefix(row.Token, "sealed:v1:") || strings.Contains(row.Token, first.Value) {
		t.Fatalf("stored %q, want it sealed", row.Token)
	}
	// A process with another key cannot read it: it fetches and stores over it.
	ctx, fields := reqlog.NewContext(context.Background())
	got, err := e.manager(token.Options{Sealer: s2}).Token(ctx, appID)
	if err != nil || got.Value != first.Value || !hasAttr(fields, "token_unreadable", "true") {
		t.Fatalf("got the same token from WeChat %v, %v, fields %v; want it, noted unreadable", got.Value == first.Value, err, fields.Attrs())
	}
}

func TestTokenNeverPrinted(t *testing.T) {
	e := newEnv(t)
	tok, err := e.manager(token.Options{}).Token(context.Background(), appID)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("line", slog.Any("token", tok))
	if s := logged.String() + fmt.Sprint(tok) + fmt.Sprintf("%+v", tok); strings.Contains(s, tok.Value) {
		t.Fatalf("the token shows in a log line or fmt output: %s", s)
	}
}

// TestManyCallersOneFetch: cold, many goroutines of one process share one
// fetch; storetest runs the same across several managers and every store.
func TestManyCallersOneFetch(t *testing.T) {
	e := newEnv(t)
	m := e.manager(token.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.Token(context.Background(), appID); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Token: %v", err)
	}
	if n := e.emu.CallsTo(emulator.APIStableToken); n != 1 {
		t.Fatalf("stable_token called %d times, want 1", n)
	}
}

// BenchmarkWarmToken measures a token from a warm process cache: no store
// read, no WeChat call.
func BenchmarkWarmToken(b *testing.B) {
	e := newEnv(b)
	m := e.manager(token.Options{})
	ctx := context.Background()
	if _, err := m.Token(ctx, appID); err != nil {
		b.Fatal(err)
	}
	reads := e.store.reads.Load()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Token(ctx, appID); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(e.store.reads.Load()-reads)/float64(b.N), "store-reads/op")
}

func hasAttr(f *reqlog.Fields, key, value string) bool {
	for _, a := range f.Attrs() {
		if a.Key == key && a.Value.String() == value {
			return true
		}
	}
	return false
}

// TestWaiterOutlivesLeader: when the caller fetching for the process gives
// up (its deadline passed while WeChat hung), a caller waiting with time left
// is not failed with it: the lease was released and it fetches for itself.
func TestWaiterOutlivesLeader(t *testing.T) {
	e := newEnv(t)
	m := e.manager(token.Options{})
	e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultHang, Times: 1, API: emulator.APIStableToken})
	leaderCtx, cancel := context.WithTimeout(context.Background(), wechat.ReplyReserve+300*time.Millisecond)
	defer cancel()
	leaderErr := make(chan error, 1)
	go func() { _, err := m.Token(leaderCtx, appID); leaderErr <- err }()
	for e.emu.CallsTo(emulator.APIStableToken) == 0 {
		time.Sleep(time.Millisecond) // until the leader's call hangs in WeChat
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	tok, err := m.Token(ctx, appID)
	if err != nil || !e.emu.ValidToken(tok.Value) {
		t.Fatalf("waiter: got a valid token %v, %v; want one", tok.Value != "" && e.emu.ValidToken(tok.Value), err)
	}
	if err := <-leaderErr; err != nil && apperr.CodeOf(err) != apperr.WeChatUnavailable {
		t.Fatalf("leader: got %v, want a token or wechat_unavailable", err)
	}
}
