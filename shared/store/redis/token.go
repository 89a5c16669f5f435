package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxsession/wxsession/shared/token"
)

var _ token.Store = (*Store)(nil)

// An app's access_token row is one key:
//
//	wxsession:t:{<appid>}   {"token","expires_ms","lease_holder","lease_until_ms"}
//
// token is as the manager hands it over (sealed when SESSION_SEAL_KEY is
// set). The key lives (PX) until the later of the token's expiry and the
// lease's end. Every operation is one Lua script on this one key: a script
// on Redis Cluster (TencentDB for Redis in cluster mode) must keep to one
// hash slot, and the {appid} hash tag keeps any key added beside it on the
// same slot. Scripts answer integers only, the same under RESP2 and RESP3.
func (s *Store) tokenKey(appID string) string { return s.prefix + "t:{" + appID + "}" }

type tokenValue struct {
	Token        string `json:"token"`
	ExpiresMS    int64  `json:"expires_ms"`
	LeaseHolder  string `json:"lease_holder"`
	LeaseUntilMS int64  `json:"lease_until_ms"`
}

// tokenLua is the start of every token script: load reads the row (an
// unreadable value counts as none), save writes it back with the key's TTL
// at the later of the token's expiry and the lease's end, dropping whatever
// has expired, or deletes it when nothing is left. ARGV[1] is always now (ms).
const tokenLua = `
local now = tonumber(ARGV[1])
local function load()
  local v = redis.call('GET', KEYS[1])
  if not v then return {} end
  local ok, r = pcall(cjson.decode, v)
  if not ok or type(r) ~= 'table' then return {} end
  return r
end
local function liveToken(r)
  return type(r.token) == 'string' and tonumber(r.expires_ms) ~= nil and tonumber(r.expires_ms) > now
end
local function liveLease(r)
  return type(r.lease_holder) == 'string' and tonumber(r.lease_until_ms) ~= nil and tonumber(r.lease_until_ms) > now
end
local function save(r)
  local keep = 0
  if liveToken(r) then keep = tonumber(r.expires_ms) else r.token = nil; r.expires_ms = nil end
  if liveLease(r) then keep = math.max(keep, tonumber(r.lease_until_ms)) else r.lease_holder = nil; r.lease_until_ms = nil end
  if keep <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], cjson.encode(r), 'PX', keep - now)
  end
end
`

// leaseTokenScript: ARGV[2] holder, ARGV[3] the token the caller saw ("" for
// none), ARGV[4] lease end (ms). Returns 1 when holder holds the lease.
var leaseTokenScript = goredis.NewScript(tokenLua + `
local r = load()
if liveLease(r) and r.lease_holder ~= ARGV[2] then return 0 end
local cur = ''
if liveToken(r) then cur = r.token end
if cur ~= ARGV[3] then return 0 end
r.lease_holder = ARGV[2]
r.lease_until_ms = tonumber(ARGV[4])
save(r)
return 1
`)

// putTokenScript: ARGV[2] holder, ARGV[3] token, ARGV[4] its expiry (ms).
// Returns 0, writing nothing, when holder does not hold a live lease.
var putTokenScript = goredis.NewScript(tokenLua + `
local r = load()
if not liveLease(r) or r.lease_holder ~= ARGV[2] then return 0 end
save({token = ARGV[3], expires_ms = tonumber(ARGV[4])})
return 1
`)

// releaseTokenScript: ARGV[2] holder. Returns 1 when it ended holder's lease.
var releaseTokenScript = goredis.NewScript(tokenLua + `
local r = load()
if r.lease_holder ~= ARGV[2] then return 0 end
r.lease_holder = nil
r.lease_until_ms = nil
save(r)
return 1
`)

// dropTokenScript: ARGV[2] the token as stored. Returns 1 when it dropped it.
var dropTokenScript = goredis.NewScript(tokenLua + `
local r = load()
if r.token ~= ARGV[2] then return 0 end
r.token = nil
r.expires_ms = nil
save(r)
return 1
`)

// GetToken implements token.Store.
func (s *Store) GetToken(ctx context.Context, appID string) (token.Row, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	b, err := s.client.Get(ctx, s.tokenKey(appID)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return token.Row{}, token.ErrNotFound
	}
	if err != nil {
		return token.Row{}, fmt.Errorf("redis: get token: %w", err)
	}
	var v tokenValue
	if err := json.Unmarshal(b, &v); err != nil {
		return token.Row{}, fmt.Errorf("redis: get token: decode stored value: %w", err)
	}
	now := s.now().UnixMilli()
	var row token.Row
	if v.Token != "" && now < v.ExpiresMS {
		row.Token, row.ExpiresAt = v.Token, time.UnixMilli(v.ExpiresMS)
	}
	if v.LeaseHolder != "" && now < v.LeaseUntilMS {
		row.LeaseUntil = time.UnixMilli(v.LeaseUntilMS)
	}
	if row.Token == "" && row.LeaseUntil.IsZero() {
		return token.Row{}, token.ErrNotFound
	}
	return row, nil
}

// LeaseToken implements token.Store.
func (s *Store) LeaseToken(ctx context.Context, appID, holder, ifToken string, until time.Time) (bool, error) {
	n, err := s.runToken(ctx, leaseTokenScript, appID, holder, ifToken, until.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("redis: lease token: %w", err)
	}
	return n == 1, nil
}

// PutToken implements token.Store.
func (s *Store) PutToken(ctx context.Context, appID, holder string, row token.Row) error {
	n, err := s.runToken(ctx, putTokenScript, appID, holder, row.Token, row.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("redis: put token: %w", err)
	}
	if n == 0 {
		return token.ErrLeaseLost
	}
	return nil
}

// ReleaseToken implements token.Store.
func (s *Store) ReleaseToken(ctx context.Context, appID, holder string) error {
	if _, err := s.runToken(ctx, releaseTokenScript, appID, holder); err != nil {
		return fmt.Errorf("redis: release token: %w", err)
	}
	return nil
}

// DropToken implements token.Store.
func (s *Store) DropToken(ctx context.Context, appID, ifToken string) (bool, error) {
	n, err := s.runToken(ctx, dropTokenScript, appID, ifToken)
	if err != nil {
		return false, fmt.Errorf("redis: drop token: %w", err)
	}
	return n == 1, nil
}

// runToken runs a token script on the app's key with now (ms) as ARGV[1].
func (s *Store) runToken(ctx context.Context, script *goredis.Script, appID string, args ...any) (int, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return script.Run(ctx, s.client, []string{s.tokenKey(appID)}, append([]any{s.now().UnixMilli()}, args...)...).Int()
}
