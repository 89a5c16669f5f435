package session_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/wechat"
	"github.com/wxsession/wxsession/shared/wxcrypto"
)

const (
	appID  = "wx0123456789abcdef"
	secret = "app-secret-for-tests"
)

type fixture struct {
	clock *storetest.Clock
	emu   *emulator.Emulator
	mem   *memory.Store
	store *faulty.Store // counts the operations that reach the store, and fails them on demand
	svc   *session.Service
	cfg   config.Config
}

// reads and writes count the store operations made so far (releasing a code
// claim aside).
func (f *fixture) reads() int {
	return f.store.Calls(faulty.GetSession) + f.store.Calls(faulty.GetUser)
}

func (f *fixture) writes() int {
	n := 0
	for _, op := range []faulty.Op{faulty.ClaimCode, faulty.PutUser, faulty.PutSession, faulty.RenewSession, faulty.DeleteSession} {
		n += f.store.Calls(op)
	}
	return n
}

func newFixture(t *testing.T, adjust ...func(*config.Config)) *fixture {
	t.Helper()
	f := &fixture{clock: storetest.NewClock()}
	f.emu = emulator.New(appID, secret, emulator.WithClock(f.clock.Now))
	srv := httptest.NewServer(f.emu)
	t.Cleanup(srv.Close)
	f.cfg = config.Config{AppID: appID, Secret: secret, APIBase: srv.URL, Store: config.StoreMemory, TTL: 24 * time.Hour, MaxAge: 720 * time.Hour}
	for _, a := range adjust {
		a(&f.cfg)
	}
	f.mem = memory.New(f.clock.Now)
	f.store = faulty.New(f.mem)
	f.svc = f.newService(t, f.store)
	return f
}

// newService builds another service instance over st, as a second process
// over the same store would be.
func (f *fixture) newService(t *testing.T, st session.Store) *session.Service {
	t.Helper()
	svc, err := boot.NewService(f.cfg, st, wechat.NewClient(f.cfg.APIBase, appID, secret, nil), session.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (f *fixture) login(t *testing.T, user string) session.Login {
	t.Helper()
	l, err := f.svc.Login(context.Background(), f.emu.Code(user))
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return l
}

func wantCode(t *testing.T, err error, want apperr.Code) {
	t.Helper()
	if got := apperr.CodeOf(err); got != want {
		t.Fatalf("got error %q (%v), want %q", got, err, want)
	}
}

func TestLoginIssuesAnOpaqueSkey(t *testing.T) {
	f := newFixture(t)
	code := f.emu.Code("alice")
	l, err := f.svc.Login(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(l.Skey)
	if err != nil || len(raw) < 32 {
		t.Fatalf("skey %q is not >= 256 bits of unpadded base64url", l.Skey)
	}
	key, _ := f.emu.SessionKey(l.OpenID)
	for _, secretish := range []string{key, l.OpenID, code} {
		if strings.Contains(l.Skey, secretish) {
			t.Fatalf("skey contains %q", secretish)
		}
	}
	if l.OpenID != f.emu.OpenID("alice") || l.UnionID == "" {
		t.Fatalf("got session %+v, want alice's openid and unionid", l.Session)
	}
	if got := l.ExpiresIn; got != int64(24*time.Hour/time.Second) {
		t.Fatalf("expires_in = %d, want a full TTL", got)
	}
	if _, err := f.mem.GetSession(context.Background(), l.Skey); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("the store holds a row under the raw skey")
	}
	if _, err := f.mem.GetSession(context.Background(), session.SkeyHash(l.Skey)); err != nil {
		t.Fatalf("the store holds no row under the skey's hash: %v", err)
	}
}

func TestSkeysAreUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		k := session.NewSkey()
		if seen[k] || len(k) != 43 {
			t.Fatalf("skey %q repeated or not 43 characters", k)
		}
		seen[k] = true
	}
}

func TestSlidingExpiryRenewsPastHalfTTL(t *testing.T) {
	f := newFixture(t)
	l := f.login(t, "alice")
	ctx := context.Background()

	tests := []struct {
		name      string
		advance   time.Duration
		wantWrite bool
		wantLeft  time.Duration
	}{
		{"more than half left: no write", 11 * time.Hour, false, 13 * time.Hour},
		{"less than half left: renewed to a full TTL", 2 * time.Hour, true, 24 * time.Hour},
		{"just renewed: no write", time.Minute, false, 24*time.Hour - time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Advance(tt.advance)
			writes := f.writes()
			s, err := f.svc.Validate(ctx, l.Skey)
			if err != nil {
				t.Fatal(err)
			}
			if wrote := f.writes() > writes; wrote != tt.wantWrite {
				t.Fatalf("wrote = %v, want %v", wrote, tt.wantWrite)
			}
			if left := s.ExpiresAt.Sub(f.clock.Now()); left != tt.wantLeft {
				t.Fatalf("%s left, want %s", left, tt.wantLeft)
			}
		})
	}
}

func TestValidateInSteadyStateIsOneReadNoWrite(t *testing.T) {
	f := newFixture(t)
	l := f.login(t, "alice")
	reads, writes := f.reads(), f.writes()
	for range 10 {
		if _, err := f.svc.Validate(context.Background(), l.Skey); err != nil {
			t.Fatal(err)
		}
	}
	if r, w := f.reads()-reads, f.writes()-writes; r != 10 || w != 0 {
		t.Fatalf("10 validates made %d reads and %d writes, want 10 and 0", r, w)
	}
}

func TestRenewalWritesAtMostOncePerHalfTTL(t *testing.T) {
	f := newFixture(t)
	l := f.login(t, "alice")
	writes := f.writes()
	// An active user validating every 10 minutes for 4 days.
	for range 4 * 24 * 6 {
		f.clock.Advance(10 * time.Minute)
		if _, err := f.svc.Validate(context.Background(), l.Skey); err != nil {
			t.Fatal(err)
		}
	}
	// 96h with a renewal at most every 12h: 8 writes at most.
	if w := f.writes() - writes; w < 1 || w > 8 {
		t.Fatalf("%d renewal writes over 96h, want between 1 and 8", w)
	}
}

func TestAbsoluteCap(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.MaxAge = 48 * time.Hour })
	l := f.login(t, "alice")
	ctx := context.Background()
	for elapsed := time.Duration(0); elapsed < 48*time.Hour; elapsed += time.Hour {
		s, err := f.svc.Validate(ctx, l.Skey)
		if err != nil {
			t.Fatalf("after %s: %v", elapsed, err)
		}
		if s.ExpiresAt.After(s.CreatedAt.Add(48 * time.Hour)) {
			t.Fatalf("after %s: expiry %s is past the cap", elapsed, s.ExpiresAt)
		}
		f.clock.Advance(time.Hour)
	}
	_, err := f.svc.Validate(ctx, l.Skey)
	wantCode(t, err, apperr.SessionExpired)
}

func TestSessionExpiresWithoutUse(t *testing.T) {
	f := newFixture(t)
	l := f.login(t, "alice")
	f.clock.Advance(24 * time.Hour)
	_, err := f.svc.Validate(context.Background(), l.Skey)
	wantCode(t, err, apperr.SessionExpired)
}

// lateStore returns rows as a store whose deletion lags does (DynamoDB TTL
// deletes up to days late): it reads expiry against an older clock.
func TestExpiredButPresentRowsAreRefused(t *testing.T) {
	f := newFixture(t)
	lagging := memory.New(func() time.Time { return f.clock.Now().Add(-48 * time.Hour) })
	svc := f.newService(t, lagging)
	l, err := svc.Login(context.Background(), f.emu.Code("alice"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(25 * time.Hour)
	if _, err := lagging.GetSession(context.Background(), session.SkeyHash(l.Skey)); err != nil {
		t.Fatalf("precondition: the lagging store should still return the row: %v", err)
	}
	_, err = svc.Validate(context.Background(), l.Skey)
	wantCode(t, err, apperr.SessionExpired)
}

func TestValidateRefusals(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		skey string
		want apperr.Code
	}{
		{"no skey", "", apperr.SessionRequired},
		{"too short", "abc", apperr.SessionExpired},
		{"not base64url", strings.Repeat("*", 43), apperr.SessionExpired},
		{"unknown", session.NewSkey(), apperr.SessionExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Validate(context.Background(), tt.skey)
			wantCode(t, err, tt.want)
		})
	}
	if r := f.reads(); r != 1 {
		t.Fatalf("malformed skeys reached the store: %d reads, want 1 (the unknown one)", r)
	}
}

func TestRepeatedCodeReturnsTheFirstSession(t *testing.T) {
	f := newFixture(t)
	code := f.emu.Code("alice")
	first, err := f.svc.Login(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	again, err := f.svc.Login(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	if again.Skey != first.Skey || f.emu.Calls() != 1 {
		t.Fatalf("repeated code gave skey equal=%v after %d WeChat calls, want the same skey after 1", again.Skey == first.Skey, f.emu.Calls())
	}
	// Past the code's life WeChat decides: the code is used.
	f.clock.Advance(session.CodeLifetime)
	_, err = f.svc.Login(context.Background(), code)
	wantCode(t, err, apperr.InvalidCode)
}

func TestConcurrentLoginsWithOneCodeMakeOneSession(t *testing.T) {
	f := newFixture(t)
	// Two instances over one store: singleflight covers one process, the
	// store's claim the other.
	instances := []*session.Service{f.svc, f.newService(t, f.store)}
	code := f.emu.Code("alice")
	const callers = 50
	skeys := make(chan string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			l, err := instances[i%2].Login(context.Background(), code)
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
				return
			}
			skeys <- l.Skey
		})
	}
	wg.Wait()
	close(skeys)
	distinct := make(map[string]bool)
	for k := range skeys {
		distinct[k] = true
	}
	if len(distinct) != 1 || f.emu.Calls() != 1 {
		t.Fatalf("%d callers got %d distinct skeys with %d WeChat calls, want 1 and 1", callers, len(distinct), f.emu.Calls())
	}
}

func TestFailedLoginReleasesTheCode(t *testing.T) {
	f := newFixture(t)
	code := f.emu.Code("alice")
	f.emu.SetFault(&emulator.Fault{Mode: emulator.FaultHTTPError, Times: 1})
	_, err := f.svc.Login(context.Background(), code)
	wantCode(t, err, apperr.WeChatUnavailable)
	if _, err := f.svc.Login(context.Background(), code); err != nil {
		t.Fatalf("retry with the unspent code: %v", err)
	}
	if f.emu.Calls() != 2 {
		t.Fatalf("%d WeChat calls, want 2", f.emu.Calls())
	}
}

func TestLoginErrorsFromWeChat(t *testing.T) {
	tests := []struct {
		errcode int
		want    apperr.Code
	}{
		{40029, apperr.InvalidCode},
		{40163, apperr.InvalidCode},
		{40226, apperr.CodeBlocked},
		{45011, apperr.RateLimited},
		{-1, apperr.WeChatUnavailable},
		{99999, apperr.WeChatUnavailable},
	}
	for _, tt := range tests {
		t.Run(string(tt.want), func(t *testing.T) {
			f := newFixture(t)
			f.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: tt.errcode})
			_, err := f.svc.Login(context.Background(), f.emu.Code("alice"))
			wantCode(t, err, tt.want)
		})
	}
}

func TestLoginRefusesMalformedCodes(t *testing.T) {
	f := newFixture(t)
	for _, code := range []string{"", "has space", "nul\x00byte", strings.Repeat("a", 129), "é"} {
		_, err := f.svc.Login(context.Background(), code)
		wantCode(t, err, apperr.InvalidRequest)
	}
	if f.emu.Calls() != 0 {
		t.Fatalf("malformed codes reached WeChat")
	}
}

func TestStoreDownIsStoreUnavailableAndWritesNoSession(t *testing.T) {
	f := newFixture(t)
	l := f.login(t, "alice")
	f.store.Set(faulty.Fault{Mode: faulty.Fail})
	_, err := f.svc.Validate(context.Background(), l.Skey)
	wantCode(t, err, apperr.StoreUnavailable)
	_, err = f.svc.Login(context.Background(), f.emu.Code("bob"))
	wantCode(t, err, apperr.StoreUnavailable)
	err = f.svc.Logout(context.Background(), l.Skey)
	wantCode(t, err, apperr.StoreUnavailable)

	f.store.Clear()
	if _, err := f.svc.Validate(context.Background(), l.Skey); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if _, err := f.mem.GetUser(context.Background(), appID, f.emu.OpenID("bob")); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a failed login left a user row behind")
	}
}

func TestFailedSessionWriteReleasesTheCode(t *testing.T) {
	f := newFixture(t)
	st := faulty.New(f.mem) // fails only PutSession, after the user row was written
	st.Set(faulty.Fault{Mode: faulty.Fail, Ops: []faulty.Op{faulty.PutSession}})
	svc := f.newService(t, st)
	code := f.emu.Code("alice")
	_, err := svc.Login(context.Background(), code)
	wantCode(t, err, apperr.StoreUnavailable)
	// The claim is gone, so the code goes back to WeChat, which has used it.
	_, err = f.svc.Login(context.Background(), code)
	wantCode(t, err, apperr.InvalidCode)
}

func TestDecryptUsesTheNewestSessionKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.login(t, "alice")
	oldData, err := f.emu.Encrypt(first.OpenID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Decrypt(ctx, first.Skey, input(wxcrypto.Input(oldData))); err != nil {
		t.Fatalf("decrypt under the current key: %v", err)
	}
	second := f.login(t, "alice") // WeChat issues a new session_key
	newData, _ := f.emu.Encrypt(second.OpenID, nil)

	tests := []struct {
		name string
		skey string
		in   emulator.Encrypted
		want apperr.Code
	}{
		{"new data, new session", second.Skey, newData, ""},
		{"new data, old session", first.Skey, newData, ""},
		{"old data", second.Skey, oldData, apperr.StaleSessionKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Decrypt(ctx, tt.skey, input(wxcrypto.Input(tt.in)))
			wantCode(t, err, tt.want)
		})
	}
}

func TestDecryptChecks(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.WatermarkMaxAge = time.Minute })
	ctx := context.Background()
	l := f.login(t, "alice")
	good, _ := f.emu.Encrypt(l.OpenID, nil)
	key, _ := f.emu.SessionKey(l.OpenID)
	otherApp, _ := emulator.EncryptWith(key, map[string]any{"watermark": map[string]any{"appid": "wxother", "timestamp": f.clock.Now().Unix()}}, "{}")
	badSig := good
	badSig.Signature = wxcrypto.Sign(good.RawData+"x", key)

	reads := f.reads()
	_, err := f.svc.Decrypt(ctx, l.Skey, input(wxcrypto.Input{EncryptedData: "***", IV: good.IV}))
	wantCode(t, err, apperr.InvalidRequest)
	if f.reads() != reads {
		t.Fatalf("malformed input reached the store")
	}
	_, err = f.svc.Decrypt(ctx, "", input(wxcrypto.Input(good)))
	wantCode(t, err, apperr.SessionRequired)
	_, err = f.svc.Decrypt(ctx, session.NewSkey(), input(wxcrypto.Input(good)))
	wantCode(t, err, apperr.SessionExpired)
	_, err = f.svc.Decrypt(ctx, l.Skey, input(wxcrypto.Input(otherApp)))
	wantCode(t, err, apperr.StaleSessionKey)
	_, err = f.svc.Decrypt(ctx, l.Skey, input(wxcrypto.Input(badSig)))
	wantCode(t, err, apperr.StaleSessionKey)

	reads = f.reads()
	if _, err := f.svc.Decrypt(ctx, l.Skey, input(wxcrypto.Input(good))); err != nil {
		t.Fatal(err)
	}
	if r := f.reads() - reads; r > 2 {
		t.Fatalf("decrypt made %d store reads, want at most 2", r)
	}
	f.clock.Advance(2 * time.Minute)
	_, err = f.svc.Decrypt(ctx, l.Skey, input(wxcrypto.Input(good)))
	wantCode(t, err, apperr.StaleSessionKey) // watermark older than WATERMARK_MAX_AGE
}

func TestSealedSessionKeys(t *testing.T) {
	sealKey := make([]byte, 32)
	for i := range sealKey {
		sealKey[i] = byte(i)
	}
	f := newFixture(t, func(c *config.Config) { c.SealKey = sealKey })
	l := f.login(t, "alice")
	u, err := f.mem.GetUser(context.Background(), appID, l.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := f.emu.SessionKey(l.OpenID)
	if strings.Contains(u.SessionKey, plain) || !strings.HasPrefix(u.SessionKey, "sealed:") {
		t.Fatalf("stored session_key %q is not sealed", u.SessionKey)
	}
	data, _ := f.emu.Encrypt(l.OpenID, nil)
	if _, err := f.svc.Decrypt(context.Background(), l.Skey, input(wxcrypto.Input(data))); err != nil {
		t.Fatalf("decrypt with a sealed key: %v", err)
	}
	// A sealed key copied into another user's row does not open; the client
	// is told to log in again, which writes a fresh row.
	m := f.login(t, "mallory")
	if _, err := f.mem.PutUser(context.Background(), session.User{AppID: appID, OpenID: m.OpenID, SessionKey: u.SessionKey, ExpiresAt: u.ExpiresAt}, session.Ref{ID: "copied", CreatedAt: time.Now(), ExpiresAt: u.ExpiresAt}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Decrypt(context.Background(), m.Skey, input(wxcrypto.Input(data)))
	wantCode(t, err, apperr.StaleSessionKey)
}

func TestLogout(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	l := f.login(t, "alice")
	if err := f.svc.Logout(ctx, l.Skey); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Validate(ctx, l.Skey)
	wantCode(t, err, apperr.SessionExpired)
	if err := f.svc.Logout(ctx, l.Skey); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	if err := f.svc.Logout(ctx, "garbage"); err != nil {
		t.Fatalf("logout of a malformed skey: %v", err)
	}
	wantCode(t, f.svc.Logout(ctx, ""), apperr.SessionRequired)
}

// input hands Decrypt data that is already read.
func input(in wxcrypto.Input) func() (wxcrypto.Input, error) {
	return func() (wxcrypto.Input, error) { return in, nil }
}
