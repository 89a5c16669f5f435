package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/seal"
	"github.com/wxsession/wxsession/shared/token"
	"github.com/wxsession/wxsession/shared/wechat"
)

// TokenHarness describes a token.Store to the token suite.
type TokenHarness struct {
	// New returns two clients of one empty store (separate connections to
	// the same table or database, or the same value for an in-process
	// store), both reading the time from now. Stores from separate calls must
	// not share rows; New registers its own clean-up on t.
	New func(t *testing.T, now func() time.Time) (a, b token.Store)
	// Dump returns everything s holds at rest, as stored, so the suite can
	// check that no plaintext token is stored. Nil skips that check.
	Dump func(t *testing.T, s token.Store) string
}

// RunToken runs the token.Store conformance suite, then the token.Manager
// scenarios (several managers, standing in for instances, over one store and
// an emulated WeChat).
func RunToken(t *testing.T, h TokenHarness) {
	t.Helper()
	for _, tc := range tokenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock()
			a, b := h.New(t, clock.Now)
			tc.run(t, a, b, clock)
		})
	}
	for _, tc := range managerCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, h)
		})
	}
}

type tokenCase struct {
	name string
	run  func(t *testing.T, a, b token.Store, clock *Clock)
}

var tokenCases = []tokenCase{
	{"token/get missing", testTokenMissing},
	{"token/lease, put, get", testTokenPutGet},
	{"token/lease is exclusive", testTokenLeaseExclusive},
	{"token/lease under concurrency, two clients", testTokenLeaseConcurrent},
	{"token/lease needs the token the caller saw", testTokenLeaseIfToken},
	{"token/put needs the lease", testTokenPutNeedsLease},
	{"token/release", testTokenRelease},
	{"token/drop only if matching", testTokenDrop},
	{"token/expiry", testTokenExpiry},
	{"token/apps are separate", testTokenApps},
}

const (
	tokenApp   = "wx00000000000000aa"
	tokenOther = "wx00000000000000bb"
)

func mustLease(t *testing.T, s token.Store, appID, holder, ifToken string, until time.Time) {
	t.Helper()
	won, err := s.LeaseToken(context.Background(), appID, holder, ifToken, until)
	if err != nil || !won {
		t.Fatalf("LeaseToken(%s): got %v, %v; want the lease", holder, won, err)
	}
}

func mustGetToken(t *testing.T, s token.Store, appID string) token.Row {
	t.Helper()
	row, err := s.GetToken(context.Background(), appID)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	return row
}

func wantNoToken(t *testing.T, s token.Store) {
	t.Helper()
	row, err := s.GetToken(context.Background(), tokenApp)
	if !errors.Is(err, token.ErrNotFound) {
		t.Fatalf("GetToken: got %+v, %v; want token.ErrNotFound", row, err)
	}
}

func testTokenMissing(t *testing.T, a, _ token.Store, _ *Clock) {
	wantNoToken(t, a)
	if dropped, err := a.DropToken(context.Background(), tokenApp, "x"); err != nil || dropped {
		t.Fatalf("DropToken on no row: got %v, %v; want false, nil", dropped, err)
	}
	if err := a.ReleaseToken(context.Background(), tokenApp, "nobody"); err != nil {
		t.Fatalf("ReleaseToken on no row: %v", err)
	}
	wantNoToken(t, a)
}

func testTokenPutGet(t *testing.T, a, b token.Store, clock *Clock) {
	ctx := context.Background()
	until := clock.Now().Add(10 * time.Second)
	mustLease(t, a, tokenApp, "h1", "", until)
	row := mustGetToken(t, b, tokenApp)
	if row.Token != "" || !sameTime(row.LeaseUntil, until) {
		t.Fatalf("after the lease got %+v, want no token and the lease until %v", row, until)
	}
	expires := clock.Now().Add(2 * time.Hour)
	if err := a.PutToken(ctx, tokenApp, "h1", token.Row{Token: "T1", ExpiresAt: expires}); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	row = mustGetToken(t, b, tokenApp)
	if row.Token != "T1" || !sameTime(row.ExpiresAt, expires) || !row.LeaseUntil.IsZero() {
		t.Fatalf("got %+v, want T1 until %v and the lease ended", row, expires)
	}
}

func testTokenLeaseExclusive(t *testing.T, a, b token.Store, clock *Clock) {
	until := clock.Now().Add(10 * time.Second)
	mustLease(t, a, tokenApp, "h1", "", until)
	if won, err := b.LeaseToken(context.Background(), tokenApp, "h2", "", until); err != nil || won {
		t.Fatalf("second holder: got %v, %v; want no lease while h1's lives", won, err)
	}
	// The holder taking it again (a retried write) keeps it.
	mustLease(t, b, tokenApp, "h1", "", until)
	clock.Advance(10 * time.Second)
	mustLease(t, b, tokenApp, "h2", "", clock.Now().Add(10*time.Second))
	if err := a.PutToken(context.Background(), tokenApp, "h1", token.Row{Token: "late", ExpiresAt: clock.Now().Add(time.Hour)}); !errors.Is(err, token.ErrLeaseLost) {
		t.Fatalf("PutToken by the holder whose lease ran out and was taken: got %v, want token.ErrLeaseLost", err)
	}
	if row := mustGetToken(t, a, tokenApp); row.Token != "" {
		t.Fatalf("a lost lease's put was written: %+v", row)
	}
}

func testTokenLeaseConcurrent(t *testing.T, a, b token.Store, clock *Clock) {
	const callers = 40
	until := clock.Now().Add(10 * time.Second)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
		errs []error
	)
	for i := range callers {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("h%d", i)
			won, err := s.LeaseToken(context.Background(), tokenApp, holder, "", until)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if won {
				wins = append(wins, holder)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 || len(wins) != 1 {
		t.Fatalf("%d callers over two clients: %d won (%v), errors %v; want exactly one winner", callers, len(wins), wins, errs)
	}
}

func testTokenLeaseIfToken(t *testing.T, a, b token.Store, clock *Clock) {
	ctx := context.Background()
	mustLease(t, a, tokenApp, "h1", "", clock.Now().Add(10*time.Second))
	if err := a.PutToken(ctx, tokenApp, "h1", token.Row{Token: "T1", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	// A caller that read the row before T1 was stored must not renew.
	if won, err := b.LeaseToken(ctx, tokenApp, "h2", "", clock.Now().Add(10*time.Second)); err != nil || won {
		t.Fatalf("lease for a caller that saw no token, after T1 was stored: got %v, %v; want no lease", won, err)
	}
	mustLease(t, b, tokenApp, "h2", "T1", clock.Now().Add(10*time.Second))
	// Once T1 has expired, it counts as no token.
	if err := b.ReleaseToken(ctx, tokenApp, "h2"); err != nil {
		t.Fatalf("ReleaseToken: %v", err)
	}
	clock.Advance(time.Hour)
	mustLease(t, a, tokenApp, "h3", "", clock.Now().Add(10*time.Second))
}

func testTokenPutNeedsLease(t *testing.T, a, _ token.Store, clock *Clock) {
	ctx := context.Background()
	if err := a.PutToken(ctx, tokenApp, "h1", token.Row{Token: "T1", ExpiresAt: clock.Now().Add(time.Hour)}); !errors.Is(err, token.ErrLeaseLost) {
		t.Fatalf("PutToken without a lease: got %v, want token.ErrLeaseLost", err)
	}
	wantNoToken(t, a)
	mustLease(t, a, tokenApp, "h1", "", clock.Now().Add(10*time.Second))
	if err := a.PutToken(ctx, tokenApp, "h2", token.Row{Token: "T2", ExpiresAt: clock.Now().Add(time.Hour)}); !errors.Is(err, token.ErrLeaseLost) {
		t.Fatalf("PutToken by another holder: got %v, want token.ErrLeaseLost", err)
	}
	if row := mustGetToken(t, a, tokenApp); row.Token != "" {
		t.Fatalf("a put without the lease was written: %+v", row)
	}
	// A lease that ran out is not held, even if nobody took it since.
	clock.Advance(10 * time.Second)
	if err := a.PutToken(ctx, tokenApp, "h1", token.Row{Token: "T1", ExpiresAt: clock.Now().Add(time.Hour)}); !errors.Is(err, token.ErrLeaseLost) {
		t.Fatalf("PutToken after the lease ran out: got %v, want token.ErrLeaseLost", err)
	}
	wantNoToken(t, a)
}

func testTokenRelease(t *testing.T, a, b token.Store, clock *Clock) {
	ctx := context.Background()
	mustLease(t, a, tokenApp, "h1", "", clock.Now().Add(10*time.Second))
	if err := b.ReleaseToken(ctx, tokenApp, "h2"); err != nil {
		t.Fatalf("ReleaseToken by another holder: %v", err)
	}
	if row := mustGetToken(t, a, tokenApp); row.LeaseUntil.IsZero() {
		t.Fatalf("another holder's release ended h1's lease: %+v", row)
	}
	if err := b.ReleaseToken(ctx, tokenApp, "h1"); err != nil {
		t.Fatalf("ReleaseToken: %v", err)
	}
	wantNoToken(t, a)
	mustLease(t, b, tokenApp, "h2", "", clock.Now().Add(10*time.Second))
	if err := b.PutToken(ctx, tokenApp, "h2", token.Row{Token: "T2", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	// A release keeps the token.
	mustLease(t, a, tokenApp, "h3", "T2", clock.Now().Add(10*time.Second))
	if err := a.ReleaseToken(ctx, tokenApp, "h3"); err != nil {
		t.Fatalf("ReleaseToken: %v", err)
	}
	if row := mustGetToken(t, b, tokenApp); row.Token != "T2" || !row.LeaseUntil.IsZero() {
		t.Fatalf("after a release got %+v, want T2 kept and no lease", row)
	}
}

func testTokenDrop(t *testing.T, a, b token.Store, clock *Clock) {
	ctx := context.Background()
	mustLease(t, a, tokenApp, "h1", "", clock.Now().Add(10*time.Second))
	if err := a.PutToken(ctx, tokenApp, "h1", token.Row{Token: "T1", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	if dropped, err := b.DropToken(ctx, tokenApp, "T0"); err != nil || dropped {
		t.Fatalf("DropToken of another token: got %v, %v; want false", dropped, err)
	}
	if row := mustGetToken(t, a, tokenApp); row.Token != "T1" {
		t.Fatalf("a non-matching drop changed the row: %+v", row)
	}
	// A lease taken meanwhile survives the drop.
	mustLease(t, a, tokenApp, "h2", "T1", clock.Now().Add(10*time.Second))
	if dropped, err := b.DropToken(ctx, tokenApp, "T1"); err != nil || !dropped {
		t.Fatalf("DropToken of the stored token: got %v, %v; want true", dropped, err)
	}
	row := mustGetToken(t, a, tokenApp)
	if row.Token != "" || row.LeaseUntil.IsZero() {
		t.Fatalf("after the drop got %+v, want no token and h2's lease", row)
	}
	if dropped, err := b.DropToken(ctx, tokenApp, "T1"); err != nil || dropped {
		t.Fatalf("second DropToken: got %v, %v; want false", dropped, err)
	}
}

func testTokenExpiry(t *testing.T, a, b token.Store, clock *Clock) {
	ctx := context.Background()
	mustLease(t, a, tokenApp, "h1", "", clock.Now().Add(10*time.Second))
	if err := a.PutToken(ctx, tokenApp, "h1", token.Row{Token: "T1", ExpiresAt: clock.Now().Add(time.Minute)}); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	clock.Advance(time.Minute - time.Millisecond)
	if row := mustGetToken(t, b, tokenApp); row.Token != "T1" {
		t.Fatalf("a millisecond before expiry got %+v, want T1", row)
	}
	clock.Advance(time.Millisecond)
	wantNoToken(t, b)
	// A lease expires too.
	mustLease(t, a, tokenApp, "h2", "", clock.Now().Add(time.Second))
	clock.Advance(time.Second)
	wantNoToken(t, b)
	mustLease(t, b, tokenApp, "h3", "", clock.Now().Add(time.Second))
}

func testTokenApps(t *testing.T, a, b token.Store, clock *Clock) {
	ctx := context.Background()
	mustLease(t, a, tokenApp, "h1", "", clock.Now().Add(10*time.Second))
	mustLease(t, b, tokenOther, "h2", "", clock.Now().Add(10*time.Second))
	if err := a.PutToken(ctx, tokenApp, "h1", token.Row{Token: "A", ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	if row := mustGetToken(t, b, tokenOther); row.Token != "" {
		t.Fatalf("app B sees app A's token: %+v", row)
	}
	if dropped, _ := b.DropToken(ctx, tokenOther, "A"); dropped {
		t.Fatal("dropping A's token in app B's row succeeded")
	}
	if row := mustGetToken(t, a, tokenApp); row.Token != "A" {
		t.Fatalf("got %+v, want A", row)
	}
}

// --- token.Manager over the store ------------------------------------------

type managerCase struct {
	name string
	run  func(t *testing.T, h TokenHarness)
}

var managerCases = []managerCase{
	{"manager/instances share one token", testManagersShare},
	{"manager/sealed at rest", testManagerSealed},
}

const (
	managerSecret = "storetest-app-secret"
	instances     = 3
	perInstance   = 16
)

// world is an emulated WeChat, on a fake clock, and several managers over one
// store, standing in for instances.
type world struct {
	clock    *Clock
	emu      *emulator.Emulator
	wx       *wechat.Client
	managers []*token.Manager
	stores   []token.Store
}

func newWorld(t *testing.T, h TokenHarness, sealer token.Sealer, emuOpts ...emulator.Option) *world {
	t.Helper()
	clock := NewClock()
	emu := emulator.New(tokenApp, managerSecret, append([]emulator.Option{emulator.WithClock(clock.Now)}, emuOpts...)...)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	wx := wechat.NewClient(srv.URL, tokenApp, managerSecret, nil)
	fetch := func(ctx context.Context, appID string) (string, time.Duration, error) {
		tok, err := wx.StableToken(ctx, appID, managerSecret)
		return tok.Token, tok.ExpiresIn, err
	}
	a, b := h.New(t, clock.Now)
	w := &world{clock: clock, emu: emu, wx: wx, stores: []token.Store{a, b}}
	for i := range instances {
		w.managers = append(w.managers, token.New(w.stores[i%2], fetch, token.Options{Now: clock.Now, Sealer: sealer}))
	}
	return w
}

// phoneCalls makes perInstance concurrent phone number calls on every
// instance, each through Manager.Do, and fails the test on any error.
func (w *world) phoneCalls(t *testing.T, round string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, m := range w.managers {
		for j := range perInstance {
			user := fmt.Sprintf("u%d-%d", i, j)
			code, openid := w.emu.PhoneCode(user), w.emu.OpenID(user)
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := m.Do(ctx, tokenApp, func(tok string) error {
					p, err := w.wx.PhoneNumber(ctx, tok, code, openid)
					if err == nil && p.PurePhoneNumber != w.emu.PhoneNumber(user) {
						err = fmt.Errorf("got another user's number")
					}
					return err
				})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%s: %d of %d calls failed, first: %v", round, len(errs), instances*perInstance, errs[0])
	}
}

func (w *world) wantFetches(t *testing.T, round string, want int) {
	t.Helper()
	if got := w.emu.CallsTo(emulator.APIStableToken); got != want {
		t.Fatalf("%s: stable_token called %d times in all, want %d", round, got, want)
	}
	t.Logf("%s: stable_token calls in all: %d", round, want)
}

func testManagersShare(t *testing.T, h TokenHarness) {
	const lifetime = 10 * time.Minute
	w := newWorld(t, h, nil, emulator.WithTokenLifetime(lifetime))

	w.phoneCalls(t, "cold")
	w.wantFetches(t, "cold", 1)

	w.emu.RevokeToken(tokenApp)
	w.phoneCalls(t, "after a revocation")
	w.wantFetches(t, "after a revocation", 2)

	// The token lives 10 minutes and is renewed in its last 5, by one caller
	// at a time: stepping a minute at a time through 30 minutes renews it at
	// minutes 5, 10, …, 30 (six times), and no call fails on the way.
	for minute := 1; minute <= 30; minute++ {
		w.clock.Advance(time.Minute)
		w.phoneCalls(t, fmt.Sprintf("minute %d", minute))
	}
	w.wantFetches(t, "after 30 minutes of renewals", 2+6)

	// Revoked once more: one fetch between all. Then a stale refusal (of a
	// token already replaced) returns the current token without a fetch, on
	// every instance.
	var olds []string
	for _, m := range w.managers {
		tok, err := m.Token(context.Background(), tokenApp)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		olds = append(olds, tok.Value)
	}
	w.emu.RevokeToken(tokenApp)
	w.phoneCalls(t, "after a second revocation")
	w.wantFetches(t, "after a second revocation", 9)
	for i, m := range w.managers {
		for _, old := range olds {
			got, err := m.Refused(context.Background(), tokenApp, old)
			if err != nil || got.Value == old || !w.emu.ValidToken(got.Value) {
				t.Fatalf("instance %d, stale refusal: got a valid replacement %v, %v; want one", i, got.Value != old && w.emu.ValidToken(got.Value), err)
			}
		}
	}
	w.wantFetches(t, "after stale refusals", 9)
}

func testManagerSealed(t *testing.T, h TokenHarness) {
	key := make([]byte, seal.KeySize)
	key[0] = 1
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, h, sealer)
	tok, err := w.managers[0].Token(context.Background(), tokenApp)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if h.Dump != nil {
		if dump := h.Dump(t, w.stores[0]); strings.Contains(dump, tok.Value) || !strings.Contains(dump, "sealed:v1:") {
			t.Fatalf("the store holds the token in plain text, or nothing sealed:\n%s", dump)
		}
	}
	// Another instance with the key opens it without a fetch.
	got, err := w.managers[1].Token(context.Background(), tokenApp)
	if err != nil || got.Value != tok.Value {
		t.Fatalf("second instance: got the same token %v, %v; want it", got.Value == tok.Value, err)
	}
	w.wantFetches(t, "sealed", 1)
}
