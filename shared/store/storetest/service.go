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
	set := session.Settings{AppID: testAppID, TTL: time.Hour, MaxAge: 24 * time.Hour, ClaimPatience: 8 * time.Second}
	if sealKey != nil {
		sealer, err := seal.New(sealKey)
		if err != nil {
			t.Fatalf("seal.New: %v", err)
		}
		set.Sealer = sealer
	}
	return session.NewService(set, s, wx, session.WithClock(clock.Now))
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
	t.Run("one code on two instances", func(t *testing.T) {
		t.Parallel()
		testServiceTwoInstances(t, h)
	})
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
