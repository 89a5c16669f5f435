package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/seal"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/wxcrypto"
)

const testAppID = "wxstoretest"

// exchanger is a fake WeChat: each code maps to a session, and every call is
// counted.
type exchanger struct {
	delay    time.Duration
	sessions map[string]session.WeChatSession
	calls    atomic.Int32
}

func (e *exchanger) Code2Session(ctx context.Context, code string) (session.WeChatSession, error) {
	e.calls.Add(1)
	select {
	case <-time.After(e.delay):
	case <-ctx.Done():
		return session.WeChatSession{}, ctx.Err()
	}
	ws, ok := e.sessions[code]
	if !ok {
		return session.WeChatSession{}, apperr.Errorf(apperr.InvalidCode, "unknown code")
	}
	return ws, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newSessionKey returns a session_key as WeChat issues one: base64 of 16
// random bytes.
func newSessionKey() string {
	b := make([]byte, wxcrypto.KeySize)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// encryptFor returns open data as WeChat would hand it to the mini-program
// for a user whose session_key is key.
func encryptFor(t *testing.T, key string) wxcrypto.Input {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	iv := wxcrypto.NewIV()
	ct, err := wxcrypto.Encrypt(k, []byte(`{"stepInfoList":[],"watermark":{"appid":"`+testAppID+`","timestamp":1700000000}}`), iv)
	if err != nil {
		t.Fatal(err)
	}
	return wxcrypto.Input{EncryptedData: base64.StdEncoding.EncodeToString(ct), IV: base64.StdEncoding.EncodeToString(iv)}
}

func newService(t *testing.T, s session.Store, wx session.CodeExchanger, clock *Clock, sealKey []byte) *session.Service {
	t.Helper()
	return newServiceWith(t, s, wx, clock, func(set *session.Settings) {
		if sealKey != nil {
			sealer, err := seal.New(sealKey)
			if err != nil {
				t.Fatalf("seal.New: %v", err)
			}
			set.Sealer = sealer
		}
	})
}

func newServiceWith(t *testing.T, s session.Store, wx session.CodeExchanger, clock *Clock, adjust func(*session.Settings)) *session.Service {
	t.Helper()
	set := session.Settings{AppID: testAppID, TTL: time.Hour, MaxAge: 24 * time.Hour, ClaimPatience: 8 * time.Second}
	adjust(&set)
	svc := session.NewService(set, s, wx, session.WithClock(clock.Now))
	serviceStores.Store(svc, s)
	return svc
}

// input hands Decrypt data that is already read.
func input(in wxcrypto.Input) func() (wxcrypto.Input, error) {
	return func() (wxcrypto.Input, error) { return in, nil }
}

func wantCode(t *testing.T, op string, err error, want apperr.Code) {
	t.Helper()
	if got := apperr.CodeOf(err); got != want {
		t.Fatalf("%s: got %q (%v), want %q", op, got, err, want)
	}
}

// runService drives session.Service over the store: the service's own
// guarantees (a repeated code returns its session, decrypt uses the newest
// session_key, nothing secret at rest) hold only if the store keeps its side.
func runService(t *testing.T, h Harness) {
	for _, sealed := range []bool{false, true} {
		name := "plain session_key"
		if sealed {
			name = "sealed session_key"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testServiceLifecycle(t, h, sealed)
		})
	}
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"one code on two instances", testServiceTwoInstances},
		{"logout everywhere across instances", testServiceLogoutAll},
		{"cap ends the oldest session", testServiceCap},
		{"seal key rotation", testServiceSealRotation},
		{"two apps", testServiceTwoApps},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, h)
		})
	}
}

// users is a fake WeChat that hands each code the session of the user the
// code names ("alice/…"), with a fresh session_key per code, as WeChat does.
type users struct {
	mu   sync.Mutex
	keys map[string]string // code → session_key issued
}

func (u *users) Code2Session(_ context.Context, code string) (session.WeChatSession, error) {
	user, _, ok := strings.Cut(code, "/")
	if !ok {
		return session.WeChatSession{}, apperr.Errorf(apperr.InvalidCode, "unknown code")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.keys == nil {
		u.keys = map[string]string{}
	}
	key, ok := u.keys[code]
	if !ok {
		key = newSessionKey()
		u.keys[code] = key
	}
	return session.WeChatSession{OpenID: "o-" + user, SessionKey: key}, nil
}

// newCode returns a fresh login code of user (a unique name per test).
func newCode(user string) string { return user + "/" + randomHex(8) }

func mustLogin(t *testing.T, svc *session.Service, code string) session.Login {
	t.Helper()
	l, err := svc.Login(context.Background(), code)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return l
}

func wantLive(t *testing.T, svc *session.Service, what string, skeys ...string) {
	t.Helper()
	for i, k := range skeys {
		if _, err := svc.Validate(context.Background(), k); err != nil {
			t.Fatalf("%s: session %d: Validate: %v, want it live", what, i, err)
		}
	}
}

func wantEnded(t *testing.T, svc *session.Service, what string, skeys ...string) {
	t.Helper()
	for i, k := range skeys {
		_, err := svc.Validate(context.Background(), k)
		if apperr.CodeOf(err) != apperr.SessionExpired {
			t.Fatalf("%s: session %d: Validate: got %v, want session_expired", what, i, err)
		}
	}
}

// testServiceLogoutAll: two instances over one store (two store clients
// where the store is a server). Sessions of one user created on both end
// when either logs out everywhere; another user's sessions stay; Revoke (the
// operator's command) does the same from outside.
func testServiceLogoutAll(t *testing.T, h Harness) {
	ctx := context.Background()
	clock := NewClock()
	wx := &users{}
	a := newService(t, h.New(t, clock.Now), wx, clock, nil)
	st := storeOf(t, a)
	if h.Second != nil {
		st = h.Second(t, st, clock.Now)
	}
	b := newService(t, st, wx, clock, nil)
	alice, bob := "alice-"+randomHex(4), "bob-"+randomHex(4)

	onA := []string{mustLogin(t, a, newCode(alice)).Skey, mustLogin(t, a, newCode(alice)).Skey}
	onB := []string{mustLogin(t, b, newCode(alice)).Skey, mustLogin(t, b, newCode(alice)).Skey}
	other := []string{mustLogin(t, a, newCode(bob)).Skey, mustLogin(t, b, newCode(bob)).Skey}
	wantLive(t, a, "before logout everywhere", append(onA, onB...)...)

	// One of alice's sessions logged out on its own first: the list still
	// names it, and logging out everywhere copes.
	single := mustLogin(t, b, newCode(alice)).Skey
	if err := a.Logout(ctx, single); err != nil {
		t.Fatalf("Logout: %v", err)
	}

	if err := a.LogoutAll(ctx, onB[0]); err != nil {
		t.Fatalf("LogoutAll on instance A with a session made on B: %v", err)
	}
	wantEnded(t, a, "after logout everywhere, seen from A", append(onA, onB...)...)
	wantEnded(t, b, "after logout everywhere, seen from B", append(onA, onB...)...)
	wantLive(t, b, "another user's sessions", other...)
	if list, err := b.Sessions(ctx, "o-"+alice); err != nil || len(list) != 0 {
		t.Fatalf("Sessions after logout everywhere: got %v, %v; want none", list, err)
	}

	// Logging out everywhere again with an ended skey has nothing to end.
	if err := b.LogoutAll(ctx, onA[0]); err != nil {
		t.Fatalf("LogoutAll with an ended skey: %v, want nil", err)
	}
	wantLive(t, a, "another user's sessions after a second LogoutAll", other...)
	err := a.LogoutAll(ctx, "")
	wantCode(t, "LogoutAll without an skey", err, apperr.SessionRequired)

	// The operator revokes bob from outside: a third instance.
	c := newService(t, storeOf(t, b), wx, clock, nil)
	later := mustLogin(t, a, newCode(alice)).Skey
	list, err := c.Sessions(ctx, "o-"+bob)
	if err != nil || len(list) != 2 {
		t.Fatalf("Sessions of bob: got %v, %v; want 2", list, err)
	}
	for _, s := range list {
		if s.OpenID != "o-"+bob || s.CreatedAt.IsZero() || !s.ExpiresAt.After(clock.Now()) {
			t.Fatalf("Sessions of bob: got %+v, want bob's live session", s)
		}
	}
	n, err := c.Revoke(ctx, "o-"+bob)
	if err != nil || n != 2 {
		t.Fatalf("Revoke bob: got %d, %v; want 2 ended", n, err)
	}
	wantEnded(t, a, "bob after Revoke", other...)
	wantLive(t, b, "alice's new session after bob's Revoke", later)
	if n, err := c.Revoke(ctx, "o-nobody-"+randomHex(4)); err != nil || n != 0 {
		t.Fatalf("Revoke of an unknown user: got %d, %v; want 0, nil", n, err)
	}
}

// storeOf returns the store a service of this suite was built over.
func storeOf(t *testing.T, svc *session.Service) session.Store {
	t.Helper()
	st, ok := serviceStores.Load(svc)
	if !ok {
		t.Fatal("service not built by newService")
	}
	return st.(session.Store)
}

var serviceStores sync.Map // *session.Service → session.Store

// testServiceCap: with SESSION_MAX_PER_USER 3, the fourth login (on another
// instance) ends exactly the oldest session; an ended one is not counted; the
// user's other sessions and other users stay.
func testServiceCap(t *testing.T, h Harness) {
	ctx := context.Background()
	clock := NewClock()
	wx := &users{}
	a := newServiceWith(t, h.New(t, clock.Now), wx, clock, func(set *session.Settings) { set.MaxSessions = 3 })
	st := storeOf(t, a)
	if h.Second != nil {
		st = h.Second(t, st, clock.Now)
	}
	b := newServiceWith(t, st, wx, clock, func(set *session.Settings) { set.MaxSessions = 3 })
	carol, dave := "carol-"+randomHex(4), "dave-"+randomHex(4)

	var skeys []string
	for i := range 3 {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		skeys = append(skeys, mustLogin(t, svc, newCode(carol)).Skey)
		clock.Advance(time.Second)
	}
	daves := mustLogin(t, a, newCode(dave)).Skey
	wantLive(t, a, "three sessions, at the cap", skeys...)

	fourth := mustLogin(t, b, newCode(carol)).Skey
	clock.Advance(time.Second)
	wantEnded(t, a, "the oldest, after the login past the cap", skeys[0])
	wantLive(t, a, "the others, after the login past the cap", skeys[1], skeys[2], fourth, daves)

	// A session logged out on its own does not count: the next login fits.
	if err := a.Logout(ctx, skeys[1]); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	fifth := mustLogin(t, a, newCode(carol)).Skey
	wantLive(t, b, "after a logout and a login that fits", skeys[2], fourth, fifth)
	list, err := a.Sessions(ctx, "o-"+carol)
	if err != nil || len(list) != 3 {
		t.Fatalf("Sessions: got %d (%v), want 3", len(list), err)
	}
	u, err := st.GetUser(ctx, testAppID, "o-"+carol)
	if err != nil || len(u.Sessions) > 4 {
		t.Fatalf("the user's session list: got %d entries (%v); want the ended ones trimmed", len(u.Sessions), err)
	}

	// Once a login that listed its session must have written it, an entry
	// whose session is gone is dropped, and the next login past the cap
	// ends the oldest live one.
	clock.Advance(10 * time.Second) // past ClaimPatience
	sixth := mustLogin(t, b, newCode(carol)).Skey
	wantEnded(t, a, "the oldest live session, after the next login past the cap", skeys[2])
	wantLive(t, a, "the three newest", fourth, fifth, sixth)
	if u, err := st.GetUser(ctx, testAppID, "o-"+carol); err != nil || len(u.Sessions) != 3 {
		t.Fatalf("the user's session list: got %d entries (%v); want the 3 live ones", len(u.Sessions), err)
	}
}

// testServiceSealRotation: sessions sealed under key 1; the ring becomes
// [key 2, key 1] and decrypt keeps working on every instance; a new login
// seals under key 2; once key 1 is dropped, a row still sealed under it
// answers stale_session_key (the client logs in again), and the re-sealed
// one still opens.
func testServiceSealRotation(t *testing.T, h Harness) {
	ctx := context.Background()
	clock := NewClock()
	wx := &users{}
	key1, key2 := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(key1)
	_, _ = rand.Read(key2)
	st := h.New(t, clock.Now)
	ring := func(keys ...[]byte) func(*session.Settings) {
		return func(set *session.Settings) {
			r, err := seal.NewRing(keys...)
			if err != nil {
				t.Fatal(err)
			}
			set.Sealer = r
		}
	}
	old := newServiceWith(t, st, wx, clock, ring(key1))
	erin, frank := "erin-"+randomHex(4), "frank-"+randomHex(4)
	erinCode, frankCode := newCode(erin), newCode(frank)
	e := mustLogin(t, old, erinCode)
	f := mustLogin(t, old, frankCode)
	erinData := func() wxcrypto.Input { return encryptFor(t, wx.keys[erinCode]) }

	rotated := newServiceWith(t, st, wx, clock, ring(key2, key1))
	if _, err := rotated.Decrypt(ctx, e.Skey, input(erinData())); err != nil {
		t.Fatalf("Decrypt of a row sealed under the old key, with [new, old]: %v", err)
	}
	// Frank logs in again after the rotation: his row is sealed under key 2.
	frankCode = newCode(frank)
	f2 := mustLogin(t, rotated, frankCode)
	frankData := encryptFor(t, wx.keys[frankCode])
	if _, err := rotated.Decrypt(ctx, f.Skey, input(frankData)); err != nil {
		t.Fatalf("Decrypt after a re-login under the new key: %v", err)
	}

	dropped := newServiceWith(t, st, wx, clock, ring(key2))
	if _, err := dropped.Decrypt(ctx, f2.Skey, input(frankData)); err != nil {
		t.Fatalf("Decrypt of a re-sealed row once the old key is dropped: %v", err)
	}
	_, err := dropped.Decrypt(ctx, e.Skey, input(erinData()))
	wantCode(t, "Decrypt of a row sealed only under the dropped key", err, apperr.StaleSessionKey)
	// The client's answer to 409: log in again, which re-seals the row.
	erinCode = newCode(erin)
	e2 := mustLogin(t, dropped, erinCode)
	if _, err := dropped.Decrypt(ctx, e2.Skey, input(encryptFor(t, wx.keys[erinCode]))); err != nil {
		t.Fatalf("Decrypt after the re-login the 409 asked for: %v", err)
	}
}

func testServiceLifecycle(t *testing.T, h Harness, sealed bool) {
	ctx := context.Background()
	clock := NewClock()
	s := h.New(t, clock.Now)
	var sealKey []byte
	if sealed {
		sealKey = make([]byte, 32)
		_, _ = rand.Read(sealKey)
	}
	openID := "o-" + randomHex(8)
	code1, code2 := "code1-"+randomHex(12), "code2-"+randomHex(12)
	key1, key2 := newSessionKey(), newSessionKey()
	wx := &exchanger{sessions: map[string]session.WeChatSession{
		code1: {OpenID: openID, SessionKey: key1},
		code2: {OpenID: openID, SessionKey: key2},
	}}
	svc := newService(t, s, wx, clock, sealKey)

	first, err := svc.Login(ctx, code1)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if sess, err := svc.Validate(ctx, first.Skey); err != nil || sess.OpenID != openID {
		t.Fatalf("Validate after login: got %+v, %v; want openid %s", sess, err, openID)
	}
	if _, err := svc.Decrypt(ctx, first.Skey, input(encryptFor(t, key1))); err != nil {
		t.Fatalf("Decrypt with the session_key of the login: %v", err)
	}

	again, err := svc.Login(ctx, code1)
	if err != nil {
		t.Fatalf("Login with a repeated code: %v", err)
	}
	if again.Skey != first.Skey || wx.calls.Load() != 1 {
		t.Fatalf("Login with a repeated code: got a new skey or %d WeChat calls; want the first skey and 1 call", wx.calls.Load())
	}

	// A second login replaces the user's session_key: decrypt, even on the
	// first session, must use the new one.
	second, err := svc.Login(ctx, code2)
	if err != nil {
		t.Fatalf("second Login: %v", err)
	}
	if _, err := svc.Decrypt(ctx, first.Skey, input(encryptFor(t, key2))); err != nil {
		t.Fatalf("Decrypt with the newest session_key: %v", err)
	}
	_, err = svc.Decrypt(ctx, first.Skey, input(encryptFor(t, key1)))
	wantCode(t, "Decrypt with a replaced session_key", err, apperr.StaleSessionKey)

	if h.Dump != nil {
		dump := h.Dump(t, s)
		for what, secret := range map[string]string{"first skey": first.Skey, "second skey": second.Skey, "first code": code1, "second code": code2, "replaced session_key": key1} {
			if strings.Contains(dump, secret) {
				t.Errorf("the store holds the %s in plain text", what)
			}
		}
		switch stored := strings.Contains(dump, key2); {
		case sealed && stored:
			t.Errorf("the store holds the session_key in plain text although SESSION_SEAL_KEY is set")
		case !sealed && !stored:
			// Without sealing the key is stored as is: not finding it means
			// Dump does not show what the store holds.
			t.Errorf("Dump does not show the unsealed session_key; it cannot be trusted to show secrets either")
		}
	}

	if err := svc.Logout(ctx, first.Skey); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	_, err = svc.Validate(ctx, first.Skey)
	wantCode(t, "Validate after logout", err, apperr.SessionExpired)
	if _, err := svc.Validate(ctx, second.Skey); err != nil {
		t.Fatalf("Validate of the other session after logout: %v", err)
	}
}

func testServiceTwoInstances(t *testing.T, h Harness) {
	ctx := context.Background()
	clock := NewClock()
	s := h.New(t, clock.Now)
	code := "code-" + randomHex(12)
	wx := &exchanger{delay: 100 * time.Millisecond, sessions: map[string]session.WeChatSession{
		code: {OpenID: "o-" + randomHex(8), SessionKey: newSessionKey()},
	}}
	// Two services share the store but not their in-process de-duplication,
	// as two function instances would.
	instances := []*session.Service{newService(t, s, wx, clock, nil), newService(t, s, wx, clock, nil)}
	logins := make([]session.Login, len(instances))
	errs := make([]error, len(instances))
	var wg sync.WaitGroup
	for i, svc := range instances {
		wg.Go(func() { logins[i], errs[i] = svc.Login(ctx, code) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: Login: %v", i, err)
		}
	}
	if logins[0].Skey != logins[1].Skey {
		t.Fatalf("two instances logging in with one code got different skeys; want one session")
	}
	if n := wx.calls.Load(); n != 1 {
		t.Fatalf("two instances logging in with one code called WeChat %d times; want 1", n)
	}
}
