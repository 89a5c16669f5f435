package redis

import (
	"os"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/token"
)

// requireServer fails, rather than skips, a test that needs redis-server when
// CI is set and the server's URL is not.
func requireServer(t *testing.T) {
	t.Helper()
	if os.Getenv(urlEnv) == "" && os.Getenv("CI") != "" {
		t.Fatalf("CI is set but %s is not: redis-server must run (make test starts it)", urlEnv)
	}
}

func TestTokenConformance(t *testing.T) {
	requireServer(t)
	c, u := localClient(t)
	storetest.RunToken(t, storetest.TokenHarness{
		// Two stores over two clients (two connection pools) and one
		// database, as two instances would be.
		New: func(t *testing.T, now func() time.Time) (token.Store, token.Store) {
			prefix := testPrefix(t, c)
			c2, err := NewClient(u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c2.Close() })
			return New(c, now, WithPrefix(prefix), WithTimeout(10*time.Second)), New(c2, now, WithPrefix(prefix), WithTimeout(10*time.Second))
		},
		Dump: func(t *testing.T, s token.Store) string { return dump(t, s.(*Store)) },
	})
}
