// Package token keeps each app's WeChat access_token, one for all instances.
//
// The access_token is the credential for every WeChat server API, and the
// hardest part of a WeChat backend to get right across many instances:
// instances that each fetch their own overwrite each other's, refresh storms
// follow a refusal, quotas run out. A Manager shares one token per app
// through a row in the session store and a cache in each process:
//
//   - a token is used until RenewAhead (5 minutes) before it expires; then one
//     caller across all instances, the holder of a lease in the store, fetches
//     the next one while every other keeps using the current one, which WeChat
//     honours until it expires (stable_token's normal mode hands out the next
//     token in those last 5 minutes and leaves the old one valid);
//   - a token WeChat refuses is dropped from the store compare-and-swap (only
//     if the row still holds it, so a late report cannot drop its
//     replacement), a fresh one is obtained the same way, and the call is
//     retried once;
//   - a failed fetch stores nothing;
//   - the token is sealed at rest when the Manager has a sealer.
//
// Warm, a token costs no store read: only a cold process, a token in its
// renewal window or a refusal reaches the store.
package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/reqlog"
)

// Defaults for a Manager.
const (
	// DefaultRenewAhead is how long before its expiry a token is renewed:
	// WeChat hands out the next token in the current one's last 5 minutes.
	DefaultRenewAhead = 5 * time.Minute
	// DefaultLease bounds how long one caller may take to fetch a token
	// before another may try (cut to the caller's own deadline).
	DefaultLease = 10 * time.Second
	// DefaultPoll is how often a caller with no usable token looks whether
	// the lease holder has stored the new one.
	DefaultPoll = 50 * time.Millisecond
	// DefaultRecheck is how often, in a token's renewal window, a process
	// looks at the store while another instance holds the lease.
	DefaultRecheck = time.Second
)

// Token is an app's access_token. It is a secret: it goes into no log line
// and no response other than the token function's.
type Token struct {
	Value     string
	ExpiresAt time.Time
}

// LogValue keeps the token out of logs.
func (t Token) LogValue() slog.Value { return slog.GroupValue(slog.Time("expires_at", t.ExpiresAt)) }

// String keeps the token out of fmt output.
func (t Token) String() string {
	return "token.Token{value=" + strconv.Quote("[redacted]") + ", expires_at=" + t.ExpiresAt.Format(time.RFC3339) + "}"
}

// Fetcher obtains a new access_token for an app from WeChat
// (cgi-bin/stable_token in normal mode): the token and how long it lives from
// now. Its errors are returned to the caller as they are.
type Fetcher func(ctx context.Context, appID string) (token string, expiresIn time.Duration, err error)

// Sealer seals a value bound to additional data, and opens it; *seal.Sealer
// is one.
type Sealer interface {
	Seal(plaintext, additionalData []byte) []byte
	Open(sealed, additionalData []byte) ([]byte, error)
}

// Options adjusts a Manager; zero values take the defaults.
type Options struct {
	// Sealer seals tokens at rest; nil stores them as WeChat sent them.
	Sealer Sealer
	// Now is the clock (time.Now if nil); the store should share it.
	Now        func() time.Time
	RenewAhead time.Duration
	Lease      time.Duration
	Poll       time.Duration
	Recheck    time.Duration
}

// Manager hands out each app's current access_token. It is safe for
// concurrent use; build one per process.
type Manager struct {
	store  Store
	fetch  Fetcher
	sealer Sealer
	now    func() time.Time
	renew  time.Duration
	lease  time.Duration
	poll   time.Duration
	check  time.Duration

	mu   sync.Mutex
	apps map[string]*appState
}

// appState is one app's token in this process.
type appState struct {
	cur Token // the cached token; zero when none
	// quietUntil: in the renewal window, while another instance renews, the
	// store is not looked at again before this.
	quietUntil time.Time
	flight     *flight // the refresh under way in this process, if any
}

// flight is one refresh that the process's other callers wait for.
type flight struct {
	done chan struct{}
	tok  Token
	err  error
}

// New returns a Manager over store that fetches tokens with fetch.
func New(store Store, fetch Fetcher, o Options) *Manager {
	m := &Manager{
		store: store, fetch: fetch, sealer: o.Sealer, now: o.Now,
		renew: o.RenewAhead, lease: o.Lease, poll: o.Poll, check: o.Recheck,
		apps: make(map[string]*appState),
	}
	if m.now == nil {
		m.now = time.Now
	}
	setDefault(&m.renew, DefaultRenewAhead)
	setDefault(&m.lease, DefaultLease)
	setDefault(&m.poll, DefaultPoll)
	setDefault(&m.check, DefaultRecheck)
	return m
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Token returns the app's current access_token.
func (m *Manager) Token(ctx context.Context, appID string) (Token, error) {
	return m.get(ctx, appID, "")
}

// Refused returns the replacement for a token WeChat refused (40001, 42001,
// 40014). When the app's current token is already another one (the refusal
// is stale), it is returned without a fetch; otherwise the refused token is
// dropped from the store, only if the row still holds it, and a fresh one is
// obtained as Token does.
func (m *Manager) Refused(ctx context.Context, appID, refused string) (Token, error) {
	return m.get(ctx, appID, refused)
}

// Do calls fn with the app's current token. When fn's error says WeChat
// refused the token (it has a TokenRefused() bool method answering true, as
// wechat.TokenRefusedError does), the token is replaced as Refused does and
// fn is called once more with the new one; fn's last error is returned.
//
// The replacement may be one another instance stored a moment ago, which a
// revocation of every token (the current one and the one before it, still in
// its last minutes) hit too; refused in turn, it is replaced once more, so a
// caller never fails on a token the store still held.
func (m *Manager) Do(ctx context.Context, appID string, fn func(token string) error) error {
	tok, err := m.Token(ctx, appID)
	if err != nil {
		return err
	}
	err = fn(tok.Value)
	for range maxReplacements {
		if !isRefusal(err) {
			return err
		}
		reqlog.Add(ctx, slog.Bool("token_refused", true))
		next, rerr := m.Refused(ctx, appID, tok.Value)
		if rerr != nil {
			return rerr
		}
		if next.Value == tok.Value {
			return err // WeChat handed out the refused token again
		}
		tok = next
		err = fn(tok.Value)
	}
	return err
}

// maxReplacements bounds how many refused tokens one Do replaces: the one it
// used, and a replacement that was refused too (see Do).
const maxReplacements = 2

func isRefusal(err error) bool {
	var r interface{ TokenRefused() bool }
	return errors.As(err, &r) && r.TokenRefused()
}

// state returns the app's state. Callers hold m.mu.
func (m *Manager) state(appID string) *appState {
	st := m.apps[appID]
	if st == nil {
		st = &appState{}
		m.apps[appID] = st
	}
	return st
}

// get returns the app's token, never the refused one (when not empty) unless
// WeChat hands that out again. One caller per process refreshes at a time;
// the others wait for it, or, while the cached token is still valid, use
// that.
func (m *Manager) get(ctx context.Context, appID, refused string) (Token, error) {
	// A refresh that failed may have failed for its own caller's reasons (a
	// deadline shorter than this caller's): a waiter tries once itself.
	waitedOnFailure := false
	for {
		now := m.now()
		m.mu.Lock()
		st := m.state(appID)
		cur := st.cur
		usable := cur.Value != "" && cur.Value != refused && now.Before(cur.ExpiresAt)
		if usable && (now.Before(cur.ExpiresAt.Add(-m.renew)) || st.flight != nil || now.Before(st.quietUntil)) {
			m.mu.Unlock()
			return cur, nil
		}
		if f := st.flight; f != nil {
			m.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return Token{}, waitError(ctx)
			}
			switch {
			case f.err != nil && !waitedOnFailure && ctx.Err() == nil:
				waitedOnFailure = true
				continue
			case f.err != nil:
				return Token{}, f.err
			case refused != "" && f.tok.Value == refused:
				continue // a renewal that did not know of the refusal: refresh again
			}
			return f.tok, nil
		}
		f := &flight{done: make(chan struct{})}
		st.flight = f
		m.mu.Unlock()

		tok, quiet, err := m.refresh(ctx, appID, cur, refused)

		m.mu.Lock()
		st.flight = nil
		if err == nil {
			st.cur, st.quietUntil = tok, quiet
		}
		f.tok, f.err = tok, err
		m.mu.Unlock()
		close(f.done)
		return tok, err
	}
}

// refresh reads the app's row and returns its token when it is fresh;
// otherwise it takes the lease and fetches the next token, or, when another
// caller holds the lease, keeps using the current token while it lives and
// waits for the new one when none does. With refused set, a row holding that
// token is dropped first (compare-and-swap). quiet, when set, is the time
// before which the store need not be read again.
func (m *Manager) refresh(ctx context.Context, appID string, cur Token, refused string) (tok Token, quiet time.Time, err error) {
	for {
		now := m.now()
		row, err := m.store.GetToken(ctx, appID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return m.storeFailed(ctx, now, cur, refused, fmt.Errorf("token: read %s: %w", appID, err))
		}
		got := m.open(ctx, appID, row, now)
		if refused != "" && got.Value == refused {
			dropped, err := m.store.DropToken(ctx, appID, row.Token)
			if err != nil {
				return m.storeFailed(ctx, now, Token{}, refused, fmt.Errorf("token: drop %s: %w", appID, err))
			}
			if !dropped {
				continue // the row changed meanwhile: read it again
			}
			reqlog.Add(ctx, slog.Bool("token_dropped", true))
			got, row.Token = Token{}, ""
			refused = "" // dropped: whatever is fetched next is the replacement
		}
		if got.Value != "" && got.Value != refused && now.Before(got.ExpiresAt.Add(-m.renew)) {
			return got, time.Time{}, nil
		}
		if !row.LeaseUntil.After(now) {
			holder := newHolder()
			won, err := m.store.LeaseToken(ctx, appID, holder, row.Token, m.leaseUntil(ctx, now))
			if err != nil {
				return m.storeFailed(ctx, now, got, refused, fmt.Errorf("token: lease %s: %w", appID, err))
			}
			if won {
				tok, err := m.fetchAndStore(ctx, appID, holder)
				return tok, time.Time{}, err
			}
			// Another caller took the lease, or renewed the token, since the
			// read: read the row again.
			continue
		}
		// Another caller is fetching the next token.
		if got.Value != "" && got.Value != refused {
			return got, now.Add(m.check), nil // its renewal window: it still works
		}
		select {
		case <-time.After(m.poll):
		case <-ctx.Done():
			return Token{}, time.Time{}, waitError(ctx)
		}
	}
}

// storeFailed answers a store failure: with a token that still works, the
// caller keeps it (and the store is left alone for a while); without one,
// store_unavailable.
func (m *Manager) storeFailed(ctx context.Context, now time.Time, cur Token, refused string, err error) (Token, time.Time, error) {
	reqlog.Add(ctx, slog.String("token_store_error", err.Error()))
	if cur.Value != "" && cur.Value != refused && now.Before(cur.ExpiresAt) {
		return cur, now.Add(m.check), nil
	}
	return Token{}, time.Time{}, apperr.Wrap(err, apperr.StoreUnavailable, "the access_token store is unavailable")
}

// fetchAndStore fetches a token as the lease's holder and stores it. A failed
// fetch stores nothing and ends the lease, so the next caller may try. A
// token that cannot be stored (the lease ran out, the store failed) is still
// returned: WeChat accepts it all the same.
func (m *Manager) fetchAndStore(ctx context.Context, appID, holder string) (Token, error) {
	value, expiresIn, err := m.fetch(ctx, appID)
	if err == nil && (value == "" || expiresIn <= 0) {
		err = apperr.Errorf(apperr.WeChatUnavailable, "WeChat handed out an empty access_token")
	}
	if err != nil {
		// The caller's context may be done; the lease must end anyway.
		if rerr := m.store.ReleaseToken(context.WithoutCancel(ctx), appID, holder); rerr != nil {
			reqlog.Add(ctx, slog.String("token_store_error", rerr.Error()))
		}
		reqlog.Add(ctx, slog.Bool("token_fetch_failed", true))
		return Token{}, fmt.Errorf("token: fetch %s: %w", appID, err)
	}
	reqlog.Add(ctx, slog.Bool("token_fetched", true))
	tok := Token{Value: value, ExpiresAt: m.now().Add(expiresIn)}
	err = m.store.PutToken(ctx, appID, holder, Row{Token: m.seal(appID, value), ExpiresAt: tok.ExpiresAt})
	switch {
	case errors.Is(err, ErrLeaseLost):
		reqlog.Add(ctx, slog.Bool("token_lease_lost", true))
	case err != nil:
		reqlog.Add(ctx, slog.String("token_store_error", err.Error()))
	}
	return tok, nil
}

// leaseUntil is when a lease taken now runs out: DefaultLease from now, or
// the caller's deadline if sooner, since a caller that gave up fetches
// nothing.
func (m *Manager) leaseUntil(ctx context.Context, now time.Time) time.Time {
	d := m.lease
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline))
	}
	return now.Add(max(d, time.Millisecond))
}

// waitError is the error of a caller whose deadline passed while another
// caller fetched the token.
func waitError(ctx context.Context) error {
	return apperr.Wrap(fmt.Errorf("token: waiting for the access_token: %w", ctx.Err()),
		apperr.WeChatUnavailable, "the app's access_token was not ready in time")
}

// sealedPrefix marks a sealed token; unmarked values are read as plain, so
// sealing can be switched on for a live store.
const sealedPrefix = "sealed:v1:"

func (m *Manager) seal(appID, value string) string {
	if m.sealer == nil {
		return value
	}
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(m.sealer.Seal([]byte(value), additionalData(appID)))
}

// open returns the row's token if it is live and readable. A token that does
// not open (sealed under a key this process lacks, or damaged) counts as no
// token: the next one is fetched and stored over it.
func (m *Manager) open(ctx context.Context, appID string, row Row, now time.Time) Token {
	if row.Token == "" || !now.Before(row.ExpiresAt) {
		return Token{}
	}
	rest, sealed := strings.CutPrefix(row.Token, sealedPrefix)
	if !sealed {
		return Token{Value: row.Token, ExpiresAt: row.ExpiresAt}
	}
	if m.sealer != nil {
		if b, err := base64.RawStdEncoding.DecodeString(rest); err == nil {
			if plain, err := m.sealer.Open(b, additionalData(appID)); err == nil {
				return Token{Value: string(plain), ExpiresAt: row.ExpiresAt}
			}
		}
	}
	reqlog.Add(ctx, slog.Bool("token_unreadable", true))
	return Token{}
}

// additionalData binds a sealed token to its app, so it opens in no other
// app's row.
func additionalData(appID string) []byte { return []byte("wxsession access_token\x00" + appID) }

// newHolder returns a lease holder id no other caller has.
func newHolder() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
