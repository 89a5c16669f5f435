package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/token"
)

func TestTokenConformance(t *testing.T) {
	c, u := localClient(t)
	storetest.RunToken(t, storetest.TokenHarness{
		// Two stores over two clients (two connection pools) and one
		// database, as two instances would be; the second speaks RESP2, as
		// older managed Redis services do, the first go-redis's default RESP3.
		New: func(t *testing.T, now func() time.Time) (token.Store, token.Store) {
			prefix := testPrefix(t, c)
			c2, err := NewClient(withQuery(u, "protocol=2"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c2.Close() })
			return New(c, now, WithPrefix(prefix)), New(c2, now, WithPrefix(prefix))
		},
		Dump: func(t *testing.T, s token.Store) string { return dump(t, s.(*Store)) },
	})
}

func withQuery(u, q string) string {
	if strings.Contains(u, "?") {
		return u + "&" + q
	}
	return u + "?" + q
}

// TestTokenKeyTTL checks the key's hash tag and that its TTL follows the
// later of the token's expiry and the lease's end.
func TestTokenKeyTTL(t *testing.T) {
	c, _ := localClient(t)
	clock := storetest.NewClock()
	s := New(c, clock.Now, WithPrefix(testPrefix(t, c)))
	ctx := context.Background()
	const app = "wx00000000000000cc"
	key := s.tokenKey(app)
	if !strings.HasSuffix(key, "t:{"+app+"}") {
		t.Fatalf("key %q, want the appid as its hash tag", key)
	}
	if won, err := s.LeaseToken(ctx, app, "h", "", clock.Now().Add(10*time.Second)); err != nil || !won {
		t.Fatalf("LeaseToken: %v, %v", won, err)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("lease-only key: PTTL %v, want the lease's 10s", ttl)
	}
	if err := s.PutToken(ctx, app, "h", token.Row{Token: "T", ExpiresAt: clock.Now().Add(2 * time.Hour)}); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl <= time.Hour || ttl > 2*time.Hour {
		t.Fatalf("token key: PTTL %v, want the token's 2h", ttl)
	}
	if dropped, err := s.DropToken(ctx, app, "T"); err != nil || !dropped {
		t.Fatalf("DropToken: %v, %v", dropped, err)
	}
	if n := c.Exists(ctx, key).Val(); n != 0 {
		t.Fatal("a key with neither token nor lease left must be deleted")
	}
}
