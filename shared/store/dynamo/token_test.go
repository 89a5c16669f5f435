package dynamo

import (
	"os"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/token"
)

// requireLocal fails, rather than skips, a test that needs DynamoDB Local
// when CI is set and the endpoint is not.
func requireLocal(t *testing.T) {
	t.Helper()
	if os.Getenv(endpointEnv) == "" && os.Getenv("CI") != "" {
		t.Fatalf("CI is set but %s is not: DynamoDB Local must run (make test starts it)", endpointEnv)
	}
}

func TestTokenConformance(t *testing.T) {
	requireLocal(t)
	c, endpoint := localClient(t)
	storetest.RunToken(t, storetest.TokenHarness{
		// Two stores over two clients (two connection pools) and one table,
		// as two instances would be.
		New: func(t *testing.T, now func() time.Time) (token.Store, token.Store) {
			table := newTable(t, c)
			// Generous per-call budgets: many subtests share a loaded machine.
			return New(c, table, now, WithTimeout(10*time.Second)), New(localClientAt(endpoint), table, now, WithTimeout(10*time.Second))
		},
		Dump: func(t *testing.T, s token.Store) string { return dump(t, c, s.(*Store)) },
	})
}
