// Package emulator plays WeChat for development and tests, on both sides a
// mini-program developer needs: it hands out login codes as wx.login would,
// and phone codes as the getPhoneNumber button would; it answers
// sns/jscode2session, cgi-bin/stable_token and
// wxa/business/getuserphonenumber with WeChat's field names and errcodes; and
// it encrypts sample data with a user's current session_key as WeChat does for
// wx.getWeRunData and friends. Faults (hangs, slow or broken answers, any
// errcode, per API) can be switched on to test how wxsession copes, and the
// app's access_token can be revoked.
//
// It plays one app, or several (WithApp): openids, codes and access tokens
// belong to one app each, as on WeChat. Where a route takes ?appid, it
// defaults to the first app.
//
// Routes, relative to where the handler is mounted:
//
//	GET  /sns/jscode2session?appid&secret&js_code&grant_type   WeChat's API
//	POST /cgi-bin/stable_token {"grant_type","appid","secret","force_refresh"}   WeChat's API
//	POST /wxa/business/getuserphonenumber?access_token {"code","openid"}   WeChat's API
//	POST /wx.login?user=NAME&appid    {"code"}: a login code for that user
//	POST /getPhoneNumber?user=NAME&appid   {"code"}: a phone code, as the button hands out
//	POST /encrypt {"openid","data"?}  {"encryptedData","iv","rawData","signature"}
//	POST /fault {"mode",…,"api"?}     switch a fault on; DELETE /fault clears them
//	POST /fault {"mode":"revoke_token","appid"?}   revoke the app's access tokens (→ 40001)
//	GET  /stats                       {"jscode2session_calls", "stable_token_calls", …}
package emulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wxsession/wxsession/shared/wxcrypto"
)

// CodeLifetime is how long a login code is accepted, as on WeChat.
const CodeLifetime = 5 * time.Minute

// DefaultUser is the user a code is issued for when none is named.
const DefaultUser = "demo"

// FaultMode names a way jscode2session can misbehave.
type FaultMode string

// The fault modes.
const (
	FaultHang      FaultMode = "hang"       // never answer (until the caller gives up)
	FaultSlow      FaultMode = "slow"       // answer correctly, but only after Delay
	FaultHTTPError FaultMode = "http_error" // answer with HTTP Status (500 if unset)
	FaultGarbage   FaultMode = "garbage"    // answer 200 with a body that is not JSON
	FaultErrCode   FaultMode = "errcode"    // answer with ErrCode (e.g. -1, 40226, 45011)
	FaultReset     FaultMode = "reset"      // close the connection without answering
)

// The WeChat APIs the emulator serves, as a Fault's API names them.
const (
	APICode2Session = "jscode2session"
	APIStableToken  = "stable_token"
	APIPhoneNumber  = "getuserphonenumber"
)

// Fault describes how the next calls to one WeChat API misbehave.
type Fault struct {
	Mode    FaultMode     `json:"mode"`
	ErrCode int           `json:"errcode,omitempty"`
	Status  int           `json:"status,omitempty"`
	Delay   time.Duration `json:"delay,omitempty"`
	// Times is how many calls the fault affects; 0 means until cleared.
	Times int `json:"times,omitempty"`
	// ConsumeCode makes an errcode fault still use up the code, as when
	// WeChat used a code and then failed (-1 after the fact).
	ConsumeCode bool `json:"consume_code,omitempty"`
	// API is the API the fault affects: APICode2Session (the default, when
	// empty), APIStableToken or APIPhoneNumber.
	API string `json:"api,omitempty"`
}

// Emulator is an in-memory WeChat. It is safe for concurrent use.
type Emulator struct {
	defaultApp    string
	now           func() time.Time
	tokenLifetime time.Duration
	tokenOverlap  time.Duration

	mu         sync.Mutex
	apps       map[string]*app
	users      map[string]*user // by openid (openids differ per app)
	codes      map[string]*code
	phoneCodes map[string]*code
	faults     map[string]*Fault // by API
	calls      map[string]int    // by API
	forced     int               // stable_token calls with force_refresh
}

// app is one mini-program the emulator plays.
type app struct {
	id     string
	secret string
	tokens []*accessToken // issued, oldest first; expired ones are pruned
}

type user struct {
	appID      string
	name       string
	openID     string
	unionID    string
	sessionKey string // base64 of 16 bytes, as WeChat issues it
}

type code struct {
	appID     string
	openID    string
	expiresAt time.Time
	used      bool
}

// Option adjusts an Emulator.
type Option func(*Emulator)

// WithClock makes the emulator read the time from now.
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.now = now } }

// WithApp makes the emulator play one more app.
func WithApp(appID, secret string) Option {
	return func(e *Emulator) { e.apps[appID] = &app{id: appID, secret: secret} }
}

// New returns an emulator for one app (more with WithApp).
func New(appID, secret string, opts ...Option) *Emulator {
	e := &Emulator{
		defaultApp:    appID,
		now:           time.Now,
		tokenLifetime: DefaultTokenLifetime,
		tokenOverlap:  TokenOverlap,
		apps:          map[string]*app{appID: {id: appID, secret: secret}},
		users:         make(map[string]*user),
		codes:         make(map[string]*code),
		phoneCodes:    make(map[string]*code),
		faults:        make(map[string]*Fault),
		calls:         make(map[string]int),
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// OpenID returns the openid the named user has in the first app.
func (e *Emulator) OpenID(name string) string { return e.OpenIDIn(e.defaultApp, name) }

// OpenIDIn returns the openid the named user has in the given app.
func (e *Emulator) OpenIDIn(appID, name string) string {
	m := hmac.New(sha256.New, []byte(appID))
	m.Write([]byte("openid\x00" + name))
	// Real openids are 28 characters starting with "o".
	return "o" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:27]
}

func (e *Emulator) unionIDOf(name string) string {
	m := hmac.New(sha256.New, []byte("open-platform"))
	m.Write([]byte("unionid\x00" + name))
	return "o" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:27]
}

// Code issues a login code for the named user of the first app, as wx.login
// does on their phone. The code is valid for CodeLifetime and can be used once.
func (e *Emulator) Code(name string) string { return e.CodeIn(e.defaultApp, name) }

// CodeIn issues a login code for the named user of the given app.
func (e *Emulator) CodeIn(appID, name string) string {
	c := randomString(24)
	e.mu.Lock()
	defer e.mu.Unlock()
	u := e.userLocked(appID, name)
	e.codes[c] = &code{appID: appID, openID: u.openID, expiresAt: e.now().Add(CodeLifetime)}
	return c
}

// userLocked returns the named user of an app, creating it. Callers hold e.mu.
func (e *Emulator) userLocked(appID, name string) *user {
	if name == "" {
		name = DefaultUser
	}
	openID := e.OpenIDIn(appID, name)
	u, ok := e.users[openID]
	if !ok {
		u = &user{appID: appID, name: name, openID: openID}
		u.unionID = e.unionIDOf(name)
		e.users[openID] = u
	}
	return u
}

// SessionKey returns the user's current session_key, for tests.
func (e *Emulator) SessionKey(openID string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.users[openID]
	if !ok || u.sessionKey == "" {
		return "", false
	}
	return u.sessionKey, true
}

// SetFault makes the next calls to f.API misbehave; nil clears every fault.
func (e *Emulator) SetFault(f *Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f == nil {
		clear(e.faults)
		return
	}
	cp := *f
	if cp.API == "" {
		cp.API = APICode2Session
	}
	e.faults[cp.API] = &cp
}

// Calls returns how many jscode2session calls the emulator has answered.
func (e *Emulator) Calls() int { return e.CallsTo(APICode2Session) }

// CallsTo returns how many calls to the named API (APIStableToken, …) the
// emulator has answered, faulty answers included.
func (e *Emulator) CallsTo(api string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[api]
}

// Stats returns the call counts /stats serves.
func (e *Emulator) Stats() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return map[string]int{
		"jscode2session_calls":      e.calls[APICode2Session],
		"stable_token_calls":        e.calls[APIStableToken],
		"stable_token_forced_calls": e.forced,
		"getuserphonenumber_calls":  e.calls[APIPhoneNumber],
	}
}

// Encrypted is data encrypted for a user, with a signed rawData, as WeChat
// hands it to a mini-program: together they are a valid /decrypt body.
type Encrypted struct {
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
}

// ErrNoSession is returned by Encrypt for a user who has not logged in.
var ErrNoSession = errors.New("emulator: user has no session_key yet: log in first")

// Encrypt encrypts data for a user with their current session_key, adding
// WeChat's watermark. A nil data encrypts a WeRun-shaped sample. rawData is a
// sample user profile signed with the same key.
func (e *Emulator) Encrypt(openID string, data map[string]any) (Encrypted, error) {
	key, ok := e.SessionKey(openID)
	if !ok {
		return Encrypted{}, ErrNoSession
	}
	e.mu.Lock()
	appID := e.defaultApp
	if u, ok := e.users[openID]; ok {
		appID = u.appID
	}
	e.mu.Unlock()
	now := e.now()
	if data == nil {
		data = map[string]any{"stepInfoList": []map[string]any{
			{"timestamp": now.Truncate(24 * time.Hour).Add(-24 * time.Hour).Unix(), "step": 8421},
			{"timestamp": now.Truncate(24 * time.Hour).Unix(), "step": 2317},
		}}
	}
	data["watermark"] = map[string]any{"appid": appID, "timestamp": now.Unix()}
	return EncryptWith(key, data, `{"nickName":"微信用户","avatarUrl":"","gender":0,"language":"zh_CN"}`)
}

// EncryptWith encrypts data (as JSON) under a base64 session_key and signs
// rawData with it. Tests use it to make data under keys that are not current.
func EncryptWith(sessionKey string, data any, rawData string) (Encrypted, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		return Encrypted{}, fmt.Errorf("emulator: session_key: %w", err)
	}
	plain, err := json.Marshal(data)
	if err != nil {
		return Encrypted{}, fmt.Errorf("emulator: data: %w", err)
	}
	iv := wxcrypto.NewIV()
	ct, err := wxcrypto.Encrypt(key, plain, iv)
	if err != nil {
		return Encrypted{}, err
	}
	return Encrypted{
		EncryptedData: base64.StdEncoding.EncodeToString(ct),
		IV:            base64.StdEncoding.EncodeToString(iv),
		RawData:       rawData,
		Signature:     wxcrypto.Sign(rawData, sessionKey),
	}, nil
}

// jscode2session answers WeChat's API, or misbehaves as the fault says.
func (e *Emulator) jscode2session(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := e.begin(APICode2Session)
	if f != nil && f.Mode == FaultErrCode && f.ConsumeCode {
		e.mu.Lock()
		if c, ok := e.codes[q.Get("js_code")]; ok {
			c.used = true
		}
		e.mu.Unlock()
	}
	w, answered := e.misbehave(w, r, f)
	if answered {
		return
	}

	e.mu.Lock()
	a := e.apps[q.Get("appid")]
	e.mu.Unlock()
	switch {
	case a == nil:
		writeWeChatError(w, 40013, "invalid appid")
		return
	case q.Get("secret") != a.secret:
		writeWeChatError(w, 40125, "invalid appsecret")
		return
	case q.Get("grant_type") != "authorization_code":
		writeWeChatError(w, 40002, "invalid grant_type")
		return
	case q.Get("js_code") == "":
		writeWeChatError(w, 41008, "missing code")
		return
	}

	e.mu.Lock()
	c, ok := e.codes[q.Get("js_code")]
	var reply map[string]any
	switch {
	case !ok || c.appID != a.id || !e.now().Before(c.expiresAt):
		e.mu.Unlock()
		writeWeChatError(w, 40029, "invalid code")
		return
	case c.used:
		e.mu.Unlock()
		writeWeChatError(w, 40163, "code been used")
		return
	}
	c.used = true
	u := e.users[c.openID]
	// Every login issues a fresh session_key; the old one stops working.
	u.sessionKey = base64.StdEncoding.EncodeToString(randomBytes(wxcrypto.KeySize))
	reply = map[string]any{"openid": u.openID, "session_key": u.sessionKey}
	if u.unionID != "" {
		reply["unionid"] = u.unionID
	}
	e.mu.Unlock()
	writeWeChat(w, reply)
}

// begin counts a call to api and returns the fault it meets, if any.
func (e *Emulator) begin(api string) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[api]++
	return e.takeFault(api)
}

// misbehave answers as the fault f says and reports whether it did. With no
// fault it leaves the answer to the caller, and with a slow one it does too,
// through the writer it returns, which holds the answer back.
func (e *Emulator) misbehave(w http.ResponseWriter, r *http.Request, f *Fault) (http.ResponseWriter, bool) {
	if f == nil {
		return w, false
	}
	switch f.Mode {
	case FaultHang:
		// The server notices the caller hanging up only once the body is read.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
		<-r.Context().Done()
		return w, true
	case FaultSlow:
		// WeChat does its work (and uses the code) at once; only the
		// answer is slow. A caller that gives up has spent the code.
		return &delayedWriter{ResponseWriter: w, delay: f.Delay, done: r.Context().Done()}, false
	case FaultHTTPError:
		status := f.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		http.Error(w, "<html><body>server error</body></html>", status)
		return w, true
	case FaultReset:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return w, true
		}
		panic(http.ErrAbortHandler) // no connection to hijack (HTTP/2): abort the stream
	case FaultGarbage:
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>503 Service Temporarily Unavailable</html>"))
		return w, true
	case FaultErrCode:
		writeWeChatError(w, f.ErrCode, faultMessage(f.ErrCode))
		return w, true
	}
	return w, false
}

// delayedWriter holds an answer back for delay, or until the caller gives up
// (then the answer is dropped, as a slow server's is).
type delayedWriter struct {
	http.ResponseWriter
	delay  time.Duration
	done   <-chan struct{}
	waited bool
	gone   bool
}

func (w *delayedWriter) wait() {
	if w.waited {
		return
	}
	w.waited = true
	t := time.NewTimer(w.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.done:
		w.gone = true
	}
}

func (w *delayedWriter) WriteHeader(status int) {
	if w.wait(); !w.gone {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *delayedWriter) Write(b []byte) (int, error) {
	if w.wait(); w.gone {
		return 0, http.ErrHandlerTimeout
	}
	return w.ResponseWriter.Write(b)
}

// takeFault returns the fault for this call to api and counts it down.
// Callers hold e.mu.
func (e *Emulator) takeFault(api string) *Fault {
	f := e.faults[api]
	if f == nil {
		return nil
	}
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			delete(e.faults, api)
		}
	}
	cp := *f
	return &cp
}

func faultMessage(code int) string {
	switch code {
	case -1:
		return "system error"
	case 40029:
		return "invalid code"
	case 40163:
		return "code been used"
	case 40226:
		return "high risk user"
	case 45011:
		return "api minute-quota reach limit  mustslower  retry next minute"
	case 40001:
		return "invalid credential, access_token is invalid or not latest"
	case 42001:
		return "access_token expired"
	case 40014:
		return "invalid access_token"
	case 40013:
		return "invalid appid"
	case 40125:
		return "invalid appsecret"
	case 40164:
		return "invalid ip, not in whitelist"
	case 45009:
		return "reach max api daily quota limit"
	}
	return "emulated error"
}

// writeWeChat writes a JSON answer the way WeChat does: HTTP 200, text/plain.
func writeWeChat(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/plain")
	_ = json.NewEncoder(w).Encode(v)
}

// writeWeChatError writes an errcode answer with a rid in errmsg, as WeChat does.
func writeWeChatError(w http.ResponseWriter, errcode int, msg string) {
	rid := fmt.Sprintf("%s-%s-%s", randomHex(4), randomHex(4), randomHex(4))
	writeWeChat(w, map[string]any{"errcode": errcode, "errmsg": msg + ", rid: " + rid})
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// randomString returns n characters shaped like a WeChat login code.
func randomString(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))[:n]
}
