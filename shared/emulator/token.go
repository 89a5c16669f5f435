package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultTokenLifetime is how long an access_token lives, as on WeChat
// (expires_in 7200).
const DefaultTokenLifetime = 7200 * time.Second

// TokenOverlap is how long before its expiry WeChat hands out the next
// access_token in stable_token's normal mode: from then on, a call gets a new
// token while the old one stays valid until it expires.
const TokenOverlap = 5 * time.Minute

// PhoneCodeLifetime is how long a getPhoneNumber code is accepted, as on
// WeChat.
const PhoneCodeLifetime = 5 * time.Minute

// WithTokenLifetime makes access tokens live for d instead of
// DefaultTokenLifetime (tests use short lives to see renewals).
func WithTokenLifetime(d time.Duration) Option { return func(e *Emulator) { e.tokenLifetime = d } }

// WithTokenOverlap makes stable_token hand out the next token d before the
// current one expires, instead of TokenOverlap.
func WithTokenOverlap(d time.Duration) Option { return func(e *Emulator) { e.tokenOverlap = d } }

// accessToken is one token the emulator issued.
type accessToken struct {
	value     string
	expiresAt time.Time
	revoked   bool
}

// PhoneNumber returns the phone number (without a country code) the named
// user has bound to WeChat: mainland China, so countryCode is 86.
func (e *Emulator) PhoneNumber(name string) string {
	if name == "" {
		name = DefaultUser
	}
	m := hmac.New(sha256.New, []byte("phone"))
	m.Write([]byte(name))
	n := binary.BigEndian.Uint64(m.Sum(nil)) % 100_000_000
	return fmt.Sprintf("139%08d", n)
}

// PhoneCode issues a getPhoneNumber code for the named user of the first app,
// as the button hands one to the mini-program once the user agrees. It is
// valid for PhoneCodeLifetime and can be used once.
func (e *Emulator) PhoneCode(name string) string { return e.PhoneCodeIn(e.defaultApp, name) }

// PhoneCodeIn issues a getPhoneNumber code for the named user of the given app.
func (e *Emulator) PhoneCodeIn(appID, name string) string {
	c := randomHex(32)
	e.mu.Lock()
	defer e.mu.Unlock()
	u := e.userLocked(appID, name)
	e.phoneCodes[c] = &code{appID: appID, openID: u.openID, expiresAt: e.now().Add(PhoneCodeLifetime)}
	return c
}

// RevokeToken revokes every access_token issued for the app (the first app
// when appID is empty), as a forced refresh elsewhere or a leaked token
// reset would: calls with them get 40001 and stable_token issues a new one.
func (e *Emulator) RevokeToken(appID string) {
	if appID == "" {
		appID = e.defaultApp
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.apps[appID]; a != nil {
		for _, t := range a.tokens {
			t.revoked = true
		}
	}
}

// ValidToken reports whether token is an access_token WeChat would accept
// now, for tests.
func (e *Emulator) ValidToken(token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, errcode := e.tokenLocked(token)
	return errcode == 0
}

// tokenLocked finds the app a token belongs to, or the errcode WeChat answers
// for it. Callers hold e.mu.
func (e *Emulator) tokenLocked(token string) (*app, int) {
	if token == "" {
		return nil, 41001
	}
	now := e.now()
	for _, a := range e.apps {
		for _, t := range a.tokens {
			if t.value != token {
				continue
			}
			switch {
			case t.revoked:
				return nil, 40001
			case !now.Before(t.expiresAt):
				return nil, 42001
			}
			return a, 0
		}
	}
	return nil, 40001
}

// stableToken answers cgi-bin/stable_token. In normal mode it returns the
// app's current token while that has more than the overlap left, and a new
// one after (the old one lives on until it expires); force_refresh revokes
// every earlier token.
func (e *Emulator) stableToken(w http.ResponseWriter, r *http.Request) {
	f := e.begin(APIStableToken)
	w, answered := e.misbehave(w, r, f)
	if answered {
		return
	}
	if r.Method != http.MethodPost {
		writeWeChatError(w, 43002, "require POST method")
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeWeChatError(w, 47001, "data format error")
		return
	}
	e.mu.Lock()
	a := e.apps[req.AppID]
	switch {
	case req.GrantType != "client_credential":
		e.mu.Unlock()
		writeWeChatError(w, 40002, "invalid grant_type")
		return
	case a == nil:
		e.mu.Unlock()
		writeWeChatError(w, 40013, "invalid appid")
		return
	case req.Secret != a.secret:
		e.mu.Unlock()
		writeWeChatError(w, 40125, "invalid appsecret")
		return
	}
	now := e.now()
	live := a.tokens[:0]
	for _, t := range a.tokens {
		if now.Before(t.expiresAt) && !t.revoked {
			live = append(live, t)
		}
	}
	a.tokens = live
	if req.ForceRefresh {
		e.forced++
		for _, t := range a.tokens {
			t.revoked = true
		}
	}
	var cur *accessToken
	if n := len(a.tokens); n > 0 && !a.tokens[n-1].revoked && a.tokens[n-1].expiresAt.Sub(now) > e.tokenOverlap {
		cur = a.tokens[n-1]
	} else {
		// WeChat's tokens are at least 512 characters of storage; ours are
		// shorter but shaped alike.
		cur = &accessToken{value: randomString(136), expiresAt: now.Add(e.tokenLifetime)}
		a.tokens = append(a.tokens, cur)
	}
	expiresIn := int64(cur.expiresAt.Sub(now) / time.Second)
	e.mu.Unlock()
	writeWeChat(w, map[string]any{"access_token": cur.value, "expires_in": expiresIn})
}

// getUserPhoneNumber answers wxa/business/getuserphonenumber: the token must
// be live, the code the token's app's, unexpired and unused, and, when an
// openid is sent, that of the user the code was issued to.
func (e *Emulator) getUserPhoneNumber(w http.ResponseWriter, r *http.Request) {
	f := e.begin(APIPhoneNumber)
	if f != nil && f.Mode == FaultErrCode && f.ConsumeCode {
		e.usePhoneCode(r)
	}
	w, answered := e.misbehave(w, r, f)
	if answered {
		return
	}
	if r.Method != http.MethodPost {
		writeWeChatError(w, 43002, "require POST method")
		return
	}
	var req struct {
		Code   string `json:"code"`
		OpenID string `json:"openid"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeWeChatError(w, 47001, "data format error")
		return
	}
	e.mu.Lock()
	a, errcode := e.tokenLocked(r.URL.Query().Get("access_token"))
	if errcode != 0 {
		e.mu.Unlock()
		writeWeChatError(w, errcode, faultMessage(errcode))
		return
	}
	c, ok := e.phoneCodes[req.Code]
	switch {
	case req.Code == "":
		e.mu.Unlock()
		writeWeChatError(w, 41008, "missing code")
		return
	case !ok || c.appID != a.id || !e.now().Before(c.expiresAt):
		e.mu.Unlock()
		writeWeChatError(w, 40029, "invalid code")
		return
	case c.used:
		e.mu.Unlock()
		writeWeChatError(w, 40163, "code been used")
		return
	case req.OpenID != "" && req.OpenID != c.openID:
		// The docs say WeChat checks the code against the openid when one is
		// sent, without naming the errcode: the emulator answers 40003
		// (invalid openid), leaving the code unspent.
		e.mu.Unlock()
		writeWeChatError(w, 40003, "invalid openid")
		return
	}
	c.used = true
	u := e.users[c.openID]
	pure := e.PhoneNumber(u.name)
	now := e.now()
	e.mu.Unlock()
	// WeChat's own example sends countryCode as a number.
	writeWeChat(w, map[string]any{"errcode": 0, "errmsg": "ok", "phone_info": map[string]any{
		"phoneNumber":     pure,
		"purePhoneNumber": pure,
		"countryCode":     86,
		"watermark":       map[string]any{"timestamp": now.Unix(), "appid": a.id},
	}})
}

// usePhoneCode spends the code a getuserphonenumber request carries, as when
// WeChat used it and then failed. It reads the body, so it runs only on an
// answer that does not read it again.
func (e *Emulator) usePhoneCode(r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req) != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.phoneCodes[req.Code]; ok {
		c.used = true
	}
}
