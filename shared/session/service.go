// Package session is wxsession's core: it turns login codes into sessions,
// checks and renews them, and decrypts a user's data with the newest
// session_key WeChat issued for that user.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/reqlog"
	"github.com/wxsession/wxsession/shared/seal"
	"github.com/wxsession/wxsession/shared/wxcrypto"
)

// CodeLifetime is how long WeChat accepts a login code, and so how long a
// repeated code returns the session it first created.
const CodeLifetime = 5 * time.Minute

// releaseTimeout bounds the release of a failed login's code claim, which
// runs after the request's own context may be done.
const releaseTimeout = 2 * time.Second

// Longest login code accepted; WeChat's are 32 characters.
const maxCodeLen = 128

// Settings describe the app a Service serves. They arrive validated (boot
// translates them from the configuration), so NewService trusts them.
//
// One Settings describes one app: a deployment that serves several
// mini-programs builds one Service per app. A later setting is a new field
// whose zero value keeps today's behaviour.
type Settings struct {
	// AppID is the mini-program's AppID: rows are keyed by it and decrypt
	// checks watermarks against it.
	AppID string
	// TTL is the sliding session lifetime (SESSION_TTL).
	TTL time.Duration
	// MaxAge caps a session's life from login (SESSION_MAX_AGE); never
	// shorter than TTL.
	MaxAge time.Duration
	// WatermarkMaxAge, when positive, is the oldest watermark decrypt accepts.
	WatermarkMaxAge time.Duration
	// Sealer seals session_keys at rest; nil stores them as WeChat sent them.
	Sealer Sealer
	// MaxSessions, when positive, is the most live sessions one user may
	// hold (SESSION_MAX_PER_USER): the login that goes past it ends the
	// user's oldest session.
	MaxSessions int
	// ClaimPatience is how long a login whose code another instance is
	// already trading waits for that instance's session to appear: the
	// longest the WeChat call with its retry and the store writes may take.
	// An older claim with no session behind it belongs to a login that
	// failed or was logged out.
	ClaimPatience time.Duration
	// LaterApp marks an app that is not the deployment's first: sessions
	// stored without an app (written before rows recorded it) are the first
	// app's, so a single-app deployment that adds apps keeps its users
	// logged in, and never this one's.
	LaterApp bool
}

// Sealer seals secrets at rest and opens them again; *seal.Sealer is one, and
// *seal.Ring (seals with its newest key, opens with any) another.
type Sealer interface {
	Seal(plaintext, additionalData []byte) []byte
	Open(sealed, additionalData []byte) ([]byte, error)
}

// WeChatSession is what WeChat says of a user when it accepts a login code.
type WeChatSession struct {
	OpenID     string
	UnionID    string // empty unless the app is bound to an Open Platform account
	SessionKey string // base64, as WeChat sends it; a secret
}

// CodeExchanger trades a login code for the user's WeChat session. Its
// errors are *apperr.Error values (invalid_code, wechat_unavailable, …).
type CodeExchanger interface {
	Code2Session(ctx context.Context, code string) (WeChatSession, error)
}

// Service implements login, validate, decrypt and logout over a Store.
type Service struct {
	set    Settings
	store  Store
	wx     CodeExchanger
	now    func() time.Time
	log    *slog.Logger
	flight singleflight.Group
	phones PhoneNumbers // nil unless WithPhoneNumbers
	tokens AccessTokens // nil unless WithAccessTokens
}

// Option adjusts a Service.
type Option func(*Service)

// WithClock makes the Service read the time from now; tests pass a fake clock.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets the logger for the few events that are not part of a
// request's own log line (a failed clean-up, say).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// NewService returns a Service for the app set describes, over store, trading
// login codes with wx.
func NewService(set Settings, store Store, wx CodeExchanger, opts ...Option) *Service {
	s := &Service{set: set, store: store, wx: wx, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Live is a live session as one request saw it.
type Live struct {
	Session
	// ExpiresIn is the session's remaining lifetime, in whole seconds, when
	// the request was served.
	ExpiresIn int64
}

func (s *Service) live(sess Session) Live {
	sess.AppID = s.set.AppID
	return Live{Session: sess, ExpiresIn: int64(sess.ExpiresAt.Sub(s.now()) / time.Second)}
}

// Login is a session created (or found again) for a login code, and the skey
// that names it.
type Login struct {
	Skey string
	Live
}

// Login trades a login code for a session. A code seen again within its
// lifetime returns the session it first created, with no second WeChat call;
// concurrent calls with one code, here or on other instances, create one
// session between them.
func (s *Service) Login(ctx context.Context, code string) (Login, error) {
	if code == "" || len(code) > maxCodeLen || strings.IndexFunc(code, notCodeRune) >= 0 {
		return Login{}, apperr.Errorf(apperr.InvalidRequest, "code must be the string wx.login returned")
	}
	c := newCodeRef(s.set.AppID, code)
	// A login runs to its end even when the client that started it goes away
	// (its connection closes, on plain HTTP): WeChat may already have used
	// the code, and the client's retry with the same code must then find the
	// session rather than a spent code. The invocation's deadline, if any,
	// still bounds it, and every call below has a timeout of its own.
	lctx := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		lctx, cancel = context.WithDeadline(lctx, deadline)
		defer cancel()
	}
	// Callers in this process share one attempt; other instances are held off
	// by the store's claim.
	v, err, _ := s.flight.Do(c.id, func() (any, error) { return s.login(lctx, code, c) })
	if err != nil {
		return Login{}, err
	}
	return v.(Login), nil
}

func notCodeRune(r rune) bool { return r <= ' ' || r > '~' }

// codeRef is what wxsession keeps of a login code: an id to store the claim
// under and a key to seal the skey with, both derived from the code, which is
// never stored.
type codeRef struct {
	id     string
	sealer *seal.Sealer
}

func newCodeRef(appID, code string) codeRef {
	secret := []byte(appID + "\x00" + code)
	id := seal.Derive(secret, "wxsession code id")
	sealer, err := seal.New(seal.Derive(secret, "wxsession code seal"))
	if err != nil {
		panic(err) // Derive returns seal.KeySize bytes
	}
	return codeRef{id: hex.EncodeToString(id), sealer: sealer}
}

func (s *Service) login(ctx context.Context, code string, c codeRef) (Login, error) {
	skey := NewSkey()
	giveUp := time.Now().Add(s.set.ClaimPatience) // real time: bounds the polling below
	for wait := 25 * time.Millisecond; ; wait = min(2*wait, 400*time.Millisecond) {
		now := s.now()
		claim := CodeClaim{ID: c.id, SealedSkey: c.sealer.Seal([]byte(skey), []byte(c.id)), CreatedAt: now, ExpiresAt: now.Add(CodeLifetime)}
		holder, won, err := s.store.ClaimCode(ctx, claim)
		if err != nil {
			return Login{}, storeError("claim login code", err)
		}
		if won {
			return s.create(ctx, code, c.id, skey)
		}
		// Another login holds this code: its session is ours to return.
		heldSkey, err := c.sealer.Open(holder.SealedSkey, []byte(c.id))
		if err != nil {
			return Login{}, fmt.Errorf("open code claim: %w", err)
		}
		sess, err := s.store.GetSession(ctx, SkeyHash(string(heldSkey)))
		switch {
		case err == nil:
			reqlog.Add(ctx, slog.Bool("repeated_code", true))
			return Login{Skey: string(heldSkey), Live: s.live(sess)}, nil
		case !errors.Is(err, ErrNotFound):
			return Login{}, storeError("read session of repeated code", err)
		case now.Sub(holder.CreatedAt) > s.set.ClaimPatience || time.Now().After(giveUp):
			// The login that claimed the code failed without releasing it, or
			// its session was logged out: the code is spent either way.
			return Login{}, apperr.Errorf(apperr.InvalidCode, "the login code was already used; call wx.login again")
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return Login{}, apperr.Wrap(ctx.Err(), apperr.InvalidCode, "the login code is in use by another login; call wx.login again")
		}
	}
}

// create trades a claimed code at WeChat and writes the user and the session.
// On failure the claim is released so the code is not left pointing at a
// session that does not exist.
func (s *Service) create(ctx context.Context, code, claimID, skey string) (login Login, err error) {
	defer func() {
		if err != nil {
			// The release must happen even when the request's context is
			// done (that may be why the login failed), but not take forever.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			defer cancel()
			if rerr := s.store.ReleaseCode(rctx, claimID); rerr != nil {
				s.log.WarnContext(ctx, "release login code claim", "err", rerr)
			}
		}
	}()
	ws, err := s.wx.Code2Session(ctx, code)
	if err != nil {
		return Login{}, err
	}
	now := s.now()
	id := SkeyHash(skey)
	// The user's row first: WeChat has replaced the session_key whether or not
	// the session write below succeeds, and decrypt must use the newest one.
	// It also lists the new session before the session exists, so that a
	// logout of every session, from any instance, finds every session that
	// exists when it starts.
	user := User{AppID: s.set.AppID, OpenID: ws.OpenID, SessionKey: s.sealSessionKey(ws.OpenID, ws.SessionKey), ExpiresAt: now.Add(s.set.MaxAge)}
	refs, err := s.store.PutUser(ctx, user, Ref{ID: id, CreatedAt: now, ExpiresAt: now.Add(s.set.MaxAge)})
	if err != nil {
		return Login{}, storeError("write user", err)
	}
	if err := s.trim(ctx, ws.OpenID, id, refs); err != nil {
		return Login{}, err
	}
	// MaxAge >= TTL (config checks), so the first expiry is never past the
	// cap.
	sess := Session{AppID: s.set.AppID, OpenID: ws.OpenID, UnionID: ws.UnionID, CreatedAt: now, ExpiresAt: now.Add(s.set.TTL)}
	if err := s.store.PutSession(ctx, id, sess); err != nil {
		return Login{}, storeError("write session", err)
	}
	return Login{Skey: skey, Live: s.live(sess)}, nil
}

// Validate returns the live session an skey names, renewing it when less than
// half of its TTL is left. Renewing only past half-time keeps a validate in
// steady state to one store read and no write, while an active user never
// sees a session expire under them.
func (s *Service) Validate(ctx context.Context, skey string) (Live, error) {
	if err := requireSkey(skey); err != nil {
		return Live{}, err
	}
	sess, err := s.validate(ctx, skey)
	if err != nil {
		return Live{}, err
	}
	return s.live(sess), nil
}

// validate is Validate for a request known to carry an skey.
func (s *Service) validate(ctx context.Context, skey string) (Session, error) {
	if !wellFormedSkey(skey) {
		return Session{}, errExpired()
	}
	id := SkeyHash(skey)
	sess, err := s.store.GetSession(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Session{}, errExpired()
	}
	if err != nil {
		return Session{}, storeError("read session", err)
	}
	if !s.owns(sess) {
		// Another app's skey: to this app it names no session, and the
		// answer is the same as for any unknown skey.
		return Session{}, errExpired()
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) {
		return Session{}, errExpired()
	}
	if sess.ExpiresAt.Sub(now) >= s.set.TTL/2 {
		return sess, nil
	}
	renewed := now.Add(s.set.TTL)
	if capAt := sess.CreatedAt.Add(s.set.MaxAge); capAt.Before(renewed) {
		renewed = capAt
	}
	if !renewed.After(sess.ExpiresAt) {
		return sess, nil // at the absolute cap already
	}
	switch err := s.store.RenewSession(ctx, id, renewed); {
	case err == nil:
		sess.ExpiresAt = renewed
		reqlog.Add(ctx, slog.Bool("renewed", true))
	case errors.Is(err, ErrNotFound):
		return Session{}, errExpired() // logged out meanwhile
	default:
		// The session is valid; only its extension failed. Answer with the
		// expiry it has, and let a later request renew it.
		reqlog.Add(ctx, slog.String("renew_error", err.Error()))
	}
	return sess, nil
}

// Decrypt checks the session, then opens the data read returns (what the
// mini-program received from WeChat) with the user's newest session_key. read
// is called only for a request that carries an skey, so an anonymous request
// is told to log in before it is told its body is wrong; malformed data is
// refused before any store read.
func (s *Service) Decrypt(ctx context.Context, skey string, read func() (wxcrypto.Input, error)) (json.RawMessage, error) {
	if err := requireSkey(skey); err != nil {
		return nil, err
	}
	in, err := read()
	if err != nil {
		return nil, err
	}
	parsed, err := wxcrypto.Parse(in)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.InvalidRequest, err.Error())
	}
	sess, err := s.validate(ctx, skey)
	if err != nil {
		return nil, err
	}
	user, err := s.store.GetUser(ctx, s.set.AppID, sess.OpenID)
	if errors.Is(err, ErrNotFound) {
		return nil, errStale(errors.New("no session_key stored for the user"))
	}
	if err != nil {
		return nil, storeError("read user", err)
	}
	key, err := s.openSessionKey(user)
	if err != nil {
		// The row cannot be read (SESSION_SEAL_KEY changed, say). A new login
		// rewrites it, so the client is sent down that path.
		return nil, errStale(fmt.Errorf("open stored session_key: %w", err))
	}
	data, err := wxcrypto.Open(key, parsed, wxcrypto.Options{AppID: s.set.AppID, MaxAge: s.set.WatermarkMaxAge, Now: s.now()})
	if err != nil {
		return nil, errStale(err)
	}
	return data, nil
}

// trim keeps a user's session list short once a login (the session newID)
// has added to it: it drops entries past their cap and, when more than
// MaxSessions other sessions would then be live, ends the oldest live ones.
// Only a login past the cap (or one that finds entries to drop) reads or
// writes more than it did before: the list may name sessions a single logout
// ended, so each candidate is read before it is counted.
func (s *Service) trim(ctx context.Context, openID, newID string, refs []Ref) error {
	now := s.now()
	var drop, others []Ref
	for _, r := range refs {
		switch {
		case r.ID == newID:
		case !now.Before(r.ExpiresAt):
			drop = append(drop, r)
		default:
			others = append(others, r)
		}
	}
	var ended []string
	if s.set.MaxSessions > 0 && len(others) >= s.set.MaxSessions {
		slices.SortFunc(others, func(a, b Ref) int { return a.CreatedAt.Compare(b.CreatedAt) })
		// Newest first, count the live ones; whatever is live past the cap
		// (the oldest) ends.
		live := 0
		for i := len(others) - 1; i >= 0; i-- {
			r := others[i]
			if _, err := s.store.GetSession(ctx, r.ID); errors.Is(err, ErrNotFound) {
				// Ended (a single logout), or a racing login that has listed
				// its session but not written it yet: that one must stay
				// listed, so an entry is dropped only once such a login
				// would have finished.
				if now.Sub(r.CreatedAt) > s.set.ClaimPatience {
					drop = append(drop, r)
				}
				continue
			} else if err != nil {
				return storeError("read session of user", err)
			}
			if live++; live < s.set.MaxSessions {
				continue
			}
			if err := s.store.DeleteSession(ctx, r.ID); err != nil {
				return storeError("end oldest session", err)
			}
			drop = append(drop, r)
			ended = append(ended, r.ID)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	ids := make([]string, len(drop))
	for i, r := range drop {
		ids[i] = r.ID
	}
	if err := s.store.RemoveSessions(ctx, s.set.AppID, openID, ids); err != nil {
		return storeError("trim session list", err)
	}
	if len(ended) > 0 {
		reqlog.Add(ctx, slog.Int("sessions_ended", len(ended)))
	}
	return nil
}

// AppID returns the app the service serves.
func (s *Service) AppID() string { return s.set.AppID }

// owns reports whether sess belongs to the service's app.
func (s *Service) owns(sess Session) bool {
	if sess.AppID == "" {
		return !s.set.LaterApp
	}
	return sess.AppID == s.set.AppID
}

// Logout ends the session an skey names. An unknown or expired skey is not an
// error: the outcome the client wants holds either way.
func (s *Service) Logout(ctx context.Context, skey string) error {
	if err := requireSkey(skey); err != nil {
		return err
	}
	if !wellFormedSkey(skey) {
		return nil
	}
	if err := s.store.DeleteSession(ctx, SkeyHash(skey)); err != nil {
		return storeError("delete session", err)
	}
	return nil
}

// LogoutAll ends every session of the user an skey names, on every device,
// before it returns: every session that exists when it starts is listed in
// the user's row (login lists a session before writing it), so none of them
// survives; a login racing with it may. An unknown or expired skey is not an
// error, as for Logout.
func (s *Service) LogoutAll(ctx context.Context, skey string) error {
	if err := requireSkey(skey); err != nil {
		return err
	}
	if !wellFormedSkey(skey) {
		return nil
	}
	sess, err := s.store.GetSession(ctx, SkeyHash(skey))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeError("read session", err)
	}
	if !s.owns(sess) {
		return nil
	}
	_, err = s.Revoke(ctx, sess.OpenID)
	return err
}

// Revoke ends every session of one user (of the Service's app), as LogoutAll
// does, and returns how many the user's list named. It is the operator's
// answer to a banned or compromised user.
func (s *Service) Revoke(ctx context.Context, openID string) (int, error) {
	u, err := s.store.GetUser(ctx, s.set.AppID, openID)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, storeError("read user", err)
	}
	ids := make([]string, len(u.Sessions))
	for i, r := range u.Sessions {
		if err := s.store.DeleteSession(ctx, r.ID); err != nil {
			return 0, storeError("delete session", err)
		}
		ids[i] = r.ID
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if err := s.store.RemoveSessions(ctx, s.set.AppID, openID, ids); err != nil {
		return 0, storeError("trim session list", err)
	}
	return len(ids), nil
}

// Sessions returns one user's live sessions, oldest first: when each was
// created and when it expires if not renewed. It never reveals an skey.
func (s *Service) Sessions(ctx context.Context, openID string) ([]Session, error) {
	u, err := s.store.GetUser(ctx, s.set.AppID, openID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError("read user", err)
	}
	var out []Session
	for _, r := range u.Sessions {
		sess, err := s.store.GetSession(ctx, r.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, storeError("read session", err)
		}
		out = append(out, sess)
	}
	slices.SortFunc(out, func(a, b Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// sealedPrefix marks a sealed session_key. Unmarked
// values are read as plain, so sealing can be switched on for a live store.
const sealedPrefix = "sealed:v1:"

func (s *Service) sealSessionKey(openID, key string) string {
	if s.set.Sealer == nil {
		return key
	}
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(s.set.Sealer.Seal([]byte(key), userAD(s.set.AppID, openID)))
}

func (s *Service) openSessionKey(u User) (string, error) {
	rest, sealed := strings.CutPrefix(u.SessionKey, sealedPrefix)
	if !sealed {
		return u.SessionKey, nil
	}
	if s.set.Sealer == nil {
		return "", errors.New("session_key is sealed but SESSION_SEAL_KEY is not set")
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("sealed session_key: %w", err)
	}
	key, err := s.set.Sealer.Open(b, userAD(u.AppID, u.OpenID))
	if err != nil {
		return "", err
	}
	return string(key), nil
}

// userAD binds a sealed session_key to its user, so it opens in no other row.
func userAD(appID, openID string) []byte {
	sum := sha256.Sum256([]byte("wxsession user\x00" + appID + "\x00" + openID))
	return sum[:]
}

// requireSkey returns the session_required error for a request that sent no
// skey, and nil otherwise.
func requireSkey(skey string) error {
	if skey == "" {
		return apperr.Errorf(apperr.SessionRequired, "send the skey as Authorization: Bearer <skey> (or X-WX-Skey)")
	}
	return nil
}

func errExpired() error {
	return apperr.Errorf(apperr.SessionExpired, "the session is unknown or expired; log in again")
}

func errStale(cause error) error {
	return apperr.Wrap(cause, apperr.StaleSessionKey,
		"the data does not match the user's current session_key; call wx.login, fetch the data again and retry")
}

func storeError(op string, err error) error {
	return apperr.Wrap(fmt.Errorf("%s: %w", op, err), apperr.StoreUnavailable, "the session store is unavailable; retry shortly")
}
