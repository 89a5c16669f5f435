package storetest

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/wxcrypto"
)

// The two apps of the several-apps case.
const (
	firstApp  = "wx00000000000000a1"
	secondApp = "wx00000000000000b2"
)

// encryptIn is encryptFor with the watermark of app appID.
func encryptIn(t *testing.T, key, appID string) wxcrypto.Input {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	iv := wxcrypto.NewIV()
	ct, err := wxcrypto.Encrypt(k, []byte(`{"watermark":{"appid":"`+appID+`","timestamp":1700000000}}`), iv)
	if err != nil {
		t.Fatal(err)
	}
	return wxcrypto.Input{EncryptedData: base64.StdEncoding.EncodeToString(ct), IV: base64.StdEncoding.EncodeToString(iv)}
}

// testServiceTwoApps runs two apps' services over one store, as a
// deployment serving several mini-programs does: each app's sessions are
// its own, a row written before sessions recorded their app is the first
// app's, and decrypt checks each app's watermark.
func testServiceTwoApps(t *testing.T, h Harness) {
	ctx := context.Background()
	clock := NewClock()
	st := h.New(t, clock.Now)
	svcs := map[string]*session.Service{}
	keys := map[string]string{}
	for i, app := range []string{firstApp, secondApp} {
		// One user, "alice", with a different openid in each app, as WeChat
		// hands out.
		keys[app] = newSessionKey()
		wx := &exchanger{sessions: map[string]session.WeChatSession{
			"code-" + app: {OpenID: "o-alice-" + app[len(app)-2:], SessionKey: keys[app]},
		}}
		later := i > 0
		appID := app
		svcs[app] = newServiceWith(t, st, wx, clock, func(set *session.Settings) {
			set.AppID, set.LaterApp = appID, later
		})
	}
	logins := map[string]session.Login{}
	for app, svc := range svcs {
		l, err := svc.Login(ctx, "code-"+app)
		if err != nil {
			t.Fatalf("%s login: %v", app, err)
		}
		if l.AppID != app {
			t.Fatalf("%s login answered app %q", app, l.AppID)
		}
		logins[app] = l
		// The row records its app, through the store.
		sess, err := st.GetSession(ctx, session.SkeyHash(l.Skey))
		if err != nil || sess.AppID != app {
			t.Fatalf("%s: stored session %+v, %v; want app %s", app, sess, err, app)
		}
	}
	for app, other := range map[string]string{firstApp: secondApp, secondApp: firstApp} {
		if live, err := svcs[app].Validate(ctx, logins[app].Skey); err != nil || live.AppID != app {
			t.Fatalf("%s validate: %+v, %v", app, live, err)
		}
		_, err := svcs[app].Validate(ctx, logins[other].Skey)
		wantCode(t, app+" validating "+other+"'s skey", err, apperr.SessionExpired)
		_, err = svcs[app].Decrypt(ctx, logins[other].Skey, input(encryptIn(t, keys[other], other)))
		wantCode(t, app+" decrypting with "+other+"'s skey", err, apperr.SessionExpired)
		// Decrypt checks the watermark against the app's own appid.
		if _, err := svcs[app].Decrypt(ctx, logins[app].Skey, input(encryptIn(t, keys[app], app))); err != nil {
			t.Fatalf("%s decrypt: %v", app, err)
		}
		_, err = svcs[app].Decrypt(ctx, logins[app].Skey, input(encryptIn(t, keys[app], other)))
		wantCode(t, app+" decrypting data watermarked for "+other, err, apperr.StaleSessionKey)
	}
	// Logging out everywhere through another app's skey ends nothing.
	if err := svcs[firstApp].LogoutAll(ctx, logins[secondApp].Skey); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs[secondApp].Validate(ctx, logins[secondApp].Skey); err != nil {
		t.Fatalf("%s's session ended by %s's logout: %v", secondApp, firstApp, err)
	}
	// A session stored before rows recorded their app is the first app's.
	const old = "0123456789abcdef0123456789abcdef0123456789a"
	now := clock.Now()
	if err := st.PutSession(ctx, session.SkeyHash(old), session.Session{OpenID: "o-legacy", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if live, err := svcs[firstApp].Validate(ctx, old); err != nil || live.AppID != firstApp || live.OpenID != "o-legacy" {
		t.Fatalf("the first app refuses an unmarked session: %+v, %v", live, err)
	}
	_, err := svcs[secondApp].Validate(ctx, old)
	wantCode(t, "the second app validating an unmarked session", err, apperr.SessionExpired)
	// At rest, with two apps: no skey, and each session row names its app.
	if h.Dump != nil {
		dump := h.Dump(t, st)
		for app, l := range logins {
			if strings.Contains(dump, l.Skey) {
				t.Errorf("%s: an skey is stored", app)
			}
			if !strings.Contains(dump, app) {
				t.Errorf("%s: no row names the app", app)
			}
		}
	}
}
