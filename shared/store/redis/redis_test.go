package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// urlEnv names the redis-server the integration tests use.
const urlEnv = "WXSESSION_REDIS_URL"

// localClient returns a client for the test server (see storetest.ServerURL).
func localClient(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	u := storetest.ServerURL(t, urlEnv)
	c, err := NewClient(u)
	if err != nil {
		t.Fatalf("%s: %v", urlEnv, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, u
}

// testPrefix returns a key prefix only this test uses; its keys are deleted
// afterwards.
func testPrefix(t *testing.T, c *goredis.Client) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "wxsession-test:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("delete keys %s*: %v", prefix, err)
		}
	})
	return prefix
}

// dump renders every key under the store's prefix with its value.
func dump(t *testing.T, s *Store) string {
	t.Helper()
	ctx := context.Background()
	c := s.client.(*goredis.Client)
	keys, err := c.Keys(ctx, s.prefix+"*").Result()
	if err != nil {
		t.Fatalf("KEYS %s*: %v", s.prefix, err)
	}
	var b strings.Builder
	for _, k := range keys {
		v, err := c.Get(ctx, k).Result()
		if err != nil && err != goredis.Nil {
			t.Fatalf("GET %s: %v", k, err)
		}
		b.WriteString(k + " " + v + "\n")
	}
	return b.String()
}

func TestConformance(t *testing.T) {
	c, _ := localClient(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, now func() time.Time) session.Store {
			return New(c, now, WithPrefix(testPrefix(t, c)))
		},
		Dump: func(t *testing.T, s session.Store) string { return dump(t, s.(*Store)) },
		Second: func(t *testing.T, s session.Store, now func() time.Time) session.Store {
			// Its own connection pool, as another function instance has.
			c2, _ := localClient(t)
			return New(c2, now, WithPrefix(s.(*Store).prefix))
		},
	})
}

func TestOutage(t *testing.T) {
	c, raw := localClient(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunOutage(t, u.Host, func(t *testing.T, addr string, now func() time.Time) session.Store {
		viaProxy := *u
		viaProxy.Host = addr
		pc, err := NewClient(viaProxy.String())
		if err != nil {
			t.Fatal(err)
		}
		s := New(pc, now, WithPrefix(testPrefix(t, c)))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestKeyShape checks the key layout and that each key's TTL follows the
// row's expiry, renewals included.
func TestKeyShape(t *testing.T) {
	c, _ := localClient(t)
	ctx := context.Background()
	prefix := testPrefix(t, c)
	clock := storetest.NewClock()
	s := New(c, clock.Now, WithPrefix(prefix))

	id := session.SkeyHash(session.NewSkey())
	now := clock.Now()
	if err := s.PutSession(ctx, id, session.Session{OpenID: "o1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenewSession(ctx, id, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutUser(ctx, session.User{AppID: "wxapp", OpenID: "o1", SessionKey: "k", ExpiresAt: now.Add(24 * time.Hour)}, session.Ref{ID: id, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClaimCode(ctx, session.CodeClaim{ID: "abc", SealedSkey: []byte{1, 2}, CreatedAt: now, ExpiresAt: now.Add(session.CodeLifetime)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		key string
		ttl time.Duration
	}{
		{prefix + "s:" + id, 2 * time.Hour},
		{prefix + "u:wxapp:o1", 24 * time.Hour},
		{prefix + "c:abc", session.CodeLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.key[len(prefix):len(prefix)+1], func(t *testing.T) {
			got, err := c.PTTL(ctx, tt.key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got > tt.ttl || got < tt.ttl-10*time.Second {
				t.Errorf("PTTL %s: got %v, want about %v", tt.key, got, tt.ttl)
			}
		})
	}

	// The renewal went through cjson: the expiry must come back exact.
	sess, err := s.GetSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.ExpiresAt.Equal(now.Add(2 * time.Hour)) {
		t.Errorf("renewed ExpiresAt: got %v, want %v", sess.ExpiresAt, now.Add(2*time.Hour))
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		url     string
		wantErr bool
		check   func(*goredis.Options) bool
	}{
		{"redis://127.0.0.1:6379/2", false, func(o *goredis.Options) bool {
			return o.DB == 2 && o.DialTimeout == dialTimeout && o.ReadTimeout == ioTimeout && o.PoolSize == poolSize && o.ContextTimeoutEnabled
		}},
		{"rediss://user:pw@example.com:6380/0", false, func(o *goredis.Options) bool { return o.TLSConfig != nil && o.Password == "pw" }},
		{"redis://127.0.0.1:6379/0?dial_timeout=3s", false, func(o *goredis.Options) bool { return o.DialTimeout == 3*time.Second }},
		{"http://127.0.0.1:6379", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := NewClient(tt.url)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewClient: got no error, want one")
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			defer c.Close()
			if !tt.check(c.Options()) {
				t.Errorf("NewClient: options %+v do not have the expected settings", c.Options())
			}
		})
	}
}
