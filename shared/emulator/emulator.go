// Package emulator plays WeChat for development and tests, on both sides a
// mini-program developer needs: it hands out login codes as wx.login would,
// answers sns/jscode2session with WeChat's field names and errcodes, and
// encrypts sample data with a user's current session_key as WeChat does for
// wx.getWeRunData and friends. Faults (hangs, slow or broken answers, any
// errcode) can be switched on to test how wxsession copes.
//
// Routes, relative to where the handler is mounted:
//
//	GET  /sns/jscode2session?appid&secret&js_code&grant_type   WeChat's API
//	POST /wx.login?user=NAME          {"code"}: a login code for that user
//	POST /encrypt {"openid","data"?}  {"encryptedData","iv","rawData","signature"}
//	POST /fault {"mode",…}            switch a fault on; DELETE /fault clears it
//	GET  /stats                       {"jscode2session_calls"}
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

// Fault describes how the next jscode2session calls misbehave.
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
}

// Emulator is an in-memory WeChat. It is safe for concurrent use.
type Emulator struct {
	appID  string
	secret string
	now    func() time.Time

	mu    sync.Mutex
	users map[string]*user // by openid
	codes map[string]*code
	fault *Fault
	calls int
}

type user struct {
	openID     string
	unionID    string
	sessionKey string // base64 of 16 bytes, as WeChat issues it
}

type code struct {
	openID    string
	expiresAt time.Time
	used      bool
}

// Option adjusts an Emulator.
type Option func(*Emulator)

// WithClock makes the emulator read the time from now.
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.now = now } }

// New returns an emulator for one app.
func New(appID, secret string, opts ...Option) *Emulator {
	e := &Emulator{
		appID:  appID,
		secret: secret,
		now:    time.Now,
		users:  make(map[string]*user),
		codes:  make(map[string]*code),
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// OpenID returns the openid the named user has in this app.
func (e *Emulator) OpenID(name string) string {
	m := hmac.New(sha256.New, []byte(e.appID))
	m.Write([]byte("openid\x00" + name))
	// Real openids are 28 characters starting with "o".
	return "o" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:27]
}

func (e *Emulator) unionIDOf(name string) string {
	m := hmac.New(sha256.New, []byte("open-platform"))
	m.Write([]byte("unionid\x00" + name))
	return "o" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:27]
}

// Code issues a login code for the named user, as wx.login does on their
// phone. The code is valid for CodeLifetime and can be used once.
func (e *Emulator) Code(name string) string {
	if name == "" {
		name = DefaultUser
	}
	c := randomString(24)
	e.mu.Lock()
	defer e.mu.Unlock()
	openID := e.OpenID(name)
	if _, ok := e.users[openID]; !ok {
		e.users[openID] = &user{openID: openID, unionID: e.unionIDOf(name)}
	}
	e.codes[c] = &code{openID: openID, expiresAt: e.now().Add(CodeLifetime)}
	return c
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

// SetFault makes the next jscode2session calls misbehave; nil clears it.
func (e *Emulator) SetFault(f *Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fault = f
}

// Calls returns how many jscode2session calls the emulator has answered.
func (e *Emulator) Calls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
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
	now := e.now()
	if data == nil {
		data = map[string]any{"stepInfoList": []map[string]any{
			{"timestamp": now.Truncate(24 * time.Hour).Add(-24 * time.Hour).Unix(), "step": 8421},
			{"timestamp": now.Truncate(24 * time.Hour).Unix(), "step": 2317},
		}}
	}
	data["watermark"] = map[string]any{"appid": e.appID, "timestamp": now.Unix()}
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
	e.mu.Lock()
	e.calls++
	f := e.takeFault()
	e.mu.Unlock()

	if f != nil {
		switch f.Mode {
		case FaultHang:
			<-r.Context().Done()
			return
		case FaultSlow:
			// WeChat does its work (and uses the code) at once; only the
			// answer is slow. A caller that gives up has spent the code.
			w = &delayedWriter{ResponseWriter: w, delay: f.Delay, done: r.Context().Done()}
		case FaultHTTPError:
			status := f.Status
			if status == 0 {
				status = http.StatusInternalServerError
			}
			http.Error(w, "<html><body>server error</body></html>", status)
			return
		case FaultReset:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
				return
			}
			panic(http.ErrAbortHandler) // no connection to hijack (HTTP/2): abort the stream
		case FaultGarbage:
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>503 Service Temporarily Unavailable</html>"))
			return
		case FaultErrCode:
			if f.ConsumeCode {
				e.mu.Lock()
				if c, ok := e.codes[q.Get("js_code")]; ok {
					c.used = true
				}
				e.mu.Unlock()
			}
			writeWeChatError(w, f.ErrCode, faultMessage(f.ErrCode))
			return
		}
	}

	switch {
	case q.Get("appid") != e.appID:
		writeWeChatError(w, 40013, "invalid appid")
		return
	case q.Get("secret") != e.secret:
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
	case !ok || !e.now().Before(c.expiresAt):
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

// takeFault returns the fault for this call and counts it down. Callers hold e.mu.
func (e *Emulator) takeFault() *Fault {
	f := e.fault
	if f == nil {
		return nil
	}
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			e.fault = nil
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
