// Package redis keeps sessions, users and login-code claims in Redis.
//
// Keys, under a prefix that defaults to "wxsession:":
//
//	wxsession:s:<session id>       {"openid","unionid","created_ms","expires_ms"}
//	wxsession:u:<appid>:<openid>   {"session_key","expires_ms","sessions":{"<session id>":[created_ms,cap_ms]}}
//	wxsession:c:<claim id>         {"sealed_skey" (base64),"created_ms","expires_ms"}
//
// Every value is a compact JSON string set with PX to the row's remaining
// lifetime. The session id is already the SHA-256 of the skey and the claim id
// is derived from the code, so neither the skey nor the code is stored;
// session_key is stored as the service hands it over (sealed when
// SESSION_SEAL_KEY is set).
//
// Times are kept to the millisecond (Unix milliseconds). A row is alive while
// the store's clock, in milliseconds, is before expires_ms; reads and the Lua
// scripts compare the two themselves rather than rely on the key's TTL alone,
// so rows follow the store's clock (a test's fake one, too).
//
// Each operation touches one key, so the store also works on Redis Cluster.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxsession/wxsession/shared/session"
)

var _ session.Store = (*Store)(nil)

// DefaultPrefix starts every key the store writes.
const DefaultPrefix = "wxsession:"

// DefaultTimeout bounds each store call, go-redis's retries included, so an
// unreachable or hung server fails the request in time to answer
// store_unavailable.
const DefaultTimeout = 1500 * time.Millisecond

// Client is the part of go-redis the store calls; *goredis.Client and
// *goredis.ClusterClient are ones.
type Client interface {
	Get(ctx context.Context, key string) *goredis.StringCmd
	Set(ctx context.Context, key string, value any, expiration time.Duration) *goredis.StatusCmd
	Del(ctx context.Context, keys ...string) *goredis.IntCmd
	goredis.Scripter
}

// Store is a session.Store over Redis. It is safe for concurrent use.
type Store struct {
	client  Client
	prefix  string
	now     func() time.Time
	timeout time.Duration
}

// Option adjusts a Store.
type Option func(*Store)

// WithPrefix starts every key with prefix instead of DefaultPrefix, so several
// deployments (or tests) can share one database.
func WithPrefix(prefix string) Option { return func(s *Store) { s.prefix = prefix } }

// WithTimeout bounds each store call to d instead of DefaultTimeout.
func WithTimeout(d time.Duration) Option { return func(s *Store) { s.timeout = d } }

// New returns a store over client that reads the time from now (time.Now if
// nil).
func New(client Client, now func() time.Time, opts ...Option) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{client: client, prefix: DefaultPrefix, now: now, timeout: DefaultTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Close closes the client, if it can be closed. A function never needs to;
// the local server does on shutdown.
func (s *Store) Close() error {
	if c, ok := s.client.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

type sessionValue struct {
	// AppID is absent from values written before sessions recorded their app.
	AppID     string `json:"appid,omitempty"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	CreatedMS int64  `json:"created_ms"`
	ExpiresMS int64  `json:"expires_ms"`
}

type userValue struct {
	SessionKey string              `json:"session_key"`
	ExpiresMS  int64               `json:"expires_ms"`
	Sessions   map[string][2]int64 `json:"sessions,omitempty"` // id → [created_ms, cap_ms]
}

func (v userValue) refs() []session.Ref {
	refs := make([]session.Ref, 0, len(v.Sessions))
	for id, t := range v.Sessions {
		refs = append(refs, session.Ref{ID: id, CreatedAt: time.UnixMilli(t[0]), ExpiresAt: time.UnixMilli(t[1])})
	}
	return refs
}

type claimValue struct {
	SealedSkey []byte `json:"sealed_skey"`
	CreatedMS  int64  `json:"created_ms"`
	ExpiresMS  int64  `json:"expires_ms"`
}

func (s *Store) sessionKey(id string) string         { return s.prefix + "s:" + id }
func (s *Store) userKey(appID, openID string) string { return s.prefix + "u:" + appID + ":" + openID }
func (s *Store) claimKey(id string) string           { return s.prefix + "c:" + id }

// call bounds one store call, go-redis's retries included.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// claimScript sets the claim unless a live one is there, and returns the one
// that is, all in one round trip. A value that does not decode is not a live
// claim. KEYS[1] claim; ARGV[1] value, ARGV[2] now (ms), ARGV[3] TTL (ms).
var claimScript = goredis.NewScript(`
local held = redis.call('GET', KEYS[1])
if held then
  local ok, c = pcall(cjson.decode, held)
  if ok and type(c) == 'table' and tonumber(c.expires_ms) and tonumber(c.expires_ms) > tonumber(ARGV[2]) then
    return held
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return false
`)

// ClaimCode implements session.Store.
func (s *Store) ClaimCode(ctx context.Context, c session.CodeClaim) (session.CodeClaim, bool, error) {
	v := claimValue{SealedSkey: c.SealedSkey, CreatedMS: c.CreatedAt.UnixMilli(), ExpiresMS: c.ExpiresAt.UnixMilli()}
	b, err := json.Marshal(v)
	if err != nil {
		return session.CodeClaim{}, false, fmt.Errorf("redis: claim code: %w", err)
	}
	nowMS := s.now().UnixMilli()
	ttl := v.ExpiresMS - nowMS
	if ttl <= 0 {
		// Already expired: nobody can hold it, and SET PX refuses it.
		return c, true, nil
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	held, err := claimScript.Run(ctx, s.client, []string{s.claimKey(c.ID)}, b, nowMS, ttl).Text()
	switch {
	case errors.Is(err, goredis.Nil):
		return c, true, nil
	case err != nil:
		return session.CodeClaim{}, false, fmt.Errorf("redis: claim code: %w", err)
	case held == string(b):
		// go-redis retried a script whose answer was lost, and the first run
		// won. The sealed skey has a random nonce, so no other caller's claim
		// can equal ours.
		return c, true, nil
	}
	var hv claimValue
	if err := json.Unmarshal([]byte(held), &hv); err != nil {
		return session.CodeClaim{}, false, fmt.Errorf("redis: claim code: read holder: %w", err)
	}
	return session.CodeClaim{
		ID: c.ID, SealedSkey: hv.SealedSkey, CreatedAt: time.UnixMilli(hv.CreatedMS), ExpiresAt: time.UnixMilli(hv.ExpiresMS),
	}, false, nil
}

// ReleaseCode implements session.Store.
func (s *Store) ReleaseCode(ctx context.Context, id string) error {
	if err := s.del(ctx, s.claimKey(id)); err != nil {
		return fmt.Errorf("redis: release code: %w", err)
	}
	return nil
}

// putUserScript replaces the user's session_key and expiry and adds one
// session to the user's list, keeping the entries already there (unless the
// row has expired), in one atomic step on the user's key alone. It returns the
// row as written. KEYS[1] user; ARGV[1] the row's JSON without the session
// list and the closing brace (Go encodes it: cjson would escape the "/" of a
// base64 session_key), ARGV[2] expiry (ms),
// ARGV[3] now (ms), ARGV[4] session id, ARGV[5] created (ms), ARGV[6] cap (ms).
var putUserScript = goredis.NewScript(`
local sessions = {}
local v = redis.call('GET', KEYS[1])
if v then
  local ok, u = pcall(cjson.decode, v)
  if ok and type(u) == 'table' and tonumber(u.expires_ms) and tonumber(u.expires_ms) > tonumber(ARGV[3]) and type(u.sessions) == 'table' then
    sessions = u.sessions
  end
end
sessions[ARGV[4]] = {tonumber(ARGV[5]), tonumber(ARGV[6])}
local out = ARGV[1] .. ',"sessions":' .. cjson.encode(sessions) .. '}'
redis.call('SET', KEYS[1], out, 'PX', tonumber(ARGV[2]) - tonumber(ARGV[3]))
return out
`)

// PutUser implements session.Store.
func (s *Store) PutUser(ctx context.Context, u session.User, add session.Ref) ([]session.Ref, error) {
	nowMS, expMS := s.now().UnixMilli(), u.ExpiresAt.UnixMilli()
	if expMS <= nowMS {
		// Already expired: it could never be read, and SET PX refuses it.
		if err := s.del(ctx, s.userKey(u.AppID, u.OpenID)); err != nil {
			return nil, fmt.Errorf("redis: put user: %w", err)
		}
		return []session.Ref{add}, nil
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	head, err := json.Marshal(userValue{SessionKey: u.SessionKey, ExpiresMS: expMS}) //nolint:gosec // the user's row is where session_key is kept (sealed when SESSION_SEAL_KEY is set)
	if err != nil {
		return nil, fmt.Errorf("redis: put user: %w", err)
	}
	out, err := putUserScript.Run(ctx, s.client, []string{s.userKey(u.AppID, u.OpenID)},
		head[:len(head)-1], expMS, nowMS, add.ID, add.CreatedAt.UnixMilli(), add.ExpiresAt.UnixMilli()).Text()
	if err != nil {
		return nil, fmt.Errorf("redis: put user: %w", err)
	}
	var v userValue
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return nil, fmt.Errorf("redis: put user: read row: %w", err)
	}
	return v.refs(), nil
}

// removeSessionsScript drops ids from the user's list, keeping the key's
// remaining lifetime; a missing row stays missing. The row's other fields are
// kept byte for byte (the list is its last field, see putUserScript).
// KEYS[1] user; ARGV the ids.
var removeSessionsScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, u = pcall(cjson.decode, v)
if not ok or type(u) ~= 'table' or type(u.sessions) ~= 'table' then return 0 end
local head = string.match(v, '^(.*),"sessions":')
if not head then return 0 end
for i = 1, #ARGV do u.sessions[ARGV[i]] = nil end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
local out = head .. '}'
if next(u.sessions) ~= nil then out = head .. ',"sessions":' .. cjson.encode(u.sessions) .. '}' end
redis.call('SET', KEYS[1], out, 'PX', ttl)
return 1
`)

// RemoveSessions implements session.Store.
func (s *Store) RemoveSessions(ctx context.Context, appID, openID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	if err := removeSessionsScript.Run(ctx, s.client, []string{s.userKey(appID, openID)}, args...).Err(); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis: remove sessions: %w", err)
	}
	return nil
}

// GetUser implements session.Store.
func (s *Store) GetUser(ctx context.Context, appID, openID string) (session.User, error) {
	var v userValue
	if err := s.get(ctx, s.userKey(appID, openID), &v, func() int64 { return v.ExpiresMS }); err != nil {
		return session.User{}, fmt.Errorf("redis: get user: %w", err)
	}
	return session.User{AppID: appID, OpenID: openID, SessionKey: v.SessionKey, ExpiresAt: time.UnixMilli(v.ExpiresMS), Sessions: v.refs()}, nil
}

// PutSession implements session.Store.
func (s *Store) PutSession(ctx context.Context, id string, sess session.Session) error {
	v := sessionValue{AppID: sess.AppID, OpenID: sess.OpenID, UnionID: sess.UnionID, CreatedMS: sess.CreatedAt.UnixMilli(), ExpiresMS: sess.ExpiresAt.UnixMilli()}
	if err := s.set(ctx, s.sessionKey(id), v, v.ExpiresMS); err != nil {
		return fmt.Errorf("redis: put session: %w", err)
	}
	return nil
}

// GetSession implements session.Store.
func (s *Store) GetSession(ctx context.Context, id string) (session.Session, error) {
	var v sessionValue
	if err := s.get(ctx, s.sessionKey(id), &v, func() int64 { return v.ExpiresMS }); err != nil {
		return session.Session{}, fmt.Errorf("redis: get session: %w", err)
	}
	return session.Session{AppID: v.AppID, OpenID: v.OpenID, UnionID: v.UnionID, CreatedAt: time.UnixMilli(v.CreatedMS), ExpiresAt: time.UnixMilli(v.ExpiresMS)}, nil
}

// renewScript moves a live session's expiry, and writes nothing for a missing
// or expired one, so a renewal racing a logout or an expiry cannot bring the
// session back. KEYS[1] session; ARGV[1] now (ms), ARGV[2] new expiry (ms).
// Returns 1 when renewed, 0 when not found.
//
// cjson re-encodes numbers with 14 significant digits: Unix milliseconds have
// 13 until the year 2286.
var renewScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, s = pcall(cjson.decode, v)
if not ok or type(s) ~= 'table' or not tonumber(s.expires_ms) then return 0 end
local now, exp = tonumber(ARGV[1]), tonumber(ARGV[2])
if tonumber(s.expires_ms) <= now then return 0 end
if exp <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
s.expires_ms = exp
redis.call('SET', KEYS[1], cjson.encode(s), 'PX', exp - now)
return 1
`)

// RenewSession implements session.Store.
func (s *Store) RenewSession(ctx context.Context, id string, expiresAt time.Time) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	n, err := renewScript.Run(ctx, s.client, []string{s.sessionKey(id)}, s.now().UnixMilli(), expiresAt.UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("redis: renew session: %w", err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// DeleteSession implements session.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.del(ctx, s.sessionKey(id)); err != nil {
		return fmt.Errorf("redis: delete session: %w", err)
	}
	return nil
}

// set writes v under key until expiresMS, replacing what was there. A row
// that has already expired is deleted instead: it could never be read, and
// SET PX refuses a TTL that is not positive.
func (s *Store) set(ctx context.Context, key string, v any, expiresMS int64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ttl := expiresMS - s.now().UnixMilli()
	if ttl <= 0 {
		return s.del(ctx, key)
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	return s.client.Set(ctx, key, b, time.Duration(ttl)*time.Millisecond).Err()
}

// get reads key into dst and returns session.ErrNotFound for a missing key or
// one whose expiry (read from dst by expiresMS) has passed.
func (s *Store) get(ctx context.Context, key string, dst any, expiresMS func() int64) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	b, err := s.client.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return session.ErrNotFound
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("decode stored value: %w", err)
	}
	if s.now().UnixMilli() >= expiresMS() {
		return session.ErrNotFound
	}
	return nil
}

func (s *Store) del(ctx context.Context, key string) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return s.client.Del(ctx, key).Err()
}
