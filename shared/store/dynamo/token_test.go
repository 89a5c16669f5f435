package dynamo

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/token"
)

func TestTokenConformance(t *testing.T) {
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

// TestTokenItemShape checks the token row's key and that its TTL attribute
// follows the lease on a new row, then the token.
func TestTokenItemShape(t *testing.T) {
	c, _ := localClient(t)
	clock := storetest.NewClock()
	s := New(c, newTable(t, c), clock.Now, WithTimeout(10*time.Second))
	ctx := context.Background()
	const app = "wx00000000000000cc"
	until := clock.Now().Add(10 * time.Second)
	if won, err := s.LeaseToken(ctx, app, "h", "", until); err != nil || !won {
		t.Fatalf("LeaseToken: %v, %v", won, err)
	}
	if d := dump(t, c, s); !strings.Contains(d, "pk=t#"+app) || !strings.Contains(d, fmt.Sprintf("expires_at=%d ", ceilSeconds(until.UnixMilli()))) {
		t.Fatalf("lease-only row:\n%s\nwant pk t#%s and expires_at at the lease's end", d, app)
	}
	expires := clock.Now().Add(2 * time.Hour)
	if err := s.PutToken(ctx, app, "h", token.Row{Token: "T", ExpiresAt: expires}); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
	if d := dump(t, c, s); !strings.Contains(d, fmt.Sprintf("expires_at=%d ", ceilSeconds(expires.UnixMilli()))) || strings.Contains(d, "lease_holder") {
		t.Fatalf("token row:\n%s\nwant expires_at at the token's expiry and no lease", d)
	}
}
