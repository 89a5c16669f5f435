package storeops_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wxsession/wxsession/bench/storeops"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// limits are the contract's store budgets per request (DESIGN.md and the
// performance issue): exact where the budget is exact, upper bounds elsewhere.
var limits = map[string]struct {
	reads, writes [2]int // [min, max]
	wechat        int
	totalAtMost   int
}{
	// claim the code, write the user, write the session; one WeChat call
	storeops.LoginNew: {reads: [2]int{0, 0}, writes: [2]int{1, 3}, wechat: 1, totalAtMost: 3},
	// the claim finds the first login's, which returns its session: no WeChat call
	storeops.LoginRepeated: {reads: [2]int{0, 1}, writes: [2]int{0, 1}, wechat: 0, totalAtMost: 2},
	// one read, no write
	storeops.ValidateSteady: {reads: [2]int{1, 1}, writes: [2]int{0, 0}, totalAtMost: 1},
	// less than half the TTL left: one read and one conditional renewal
	storeops.ValidateRenew: {reads: [2]int{1, 1}, writes: [2]int{1, 1}, totalAtMost: 2},
	storeops.ValidateAfter: {reads: [2]int{1, 1}, writes: [2]int{0, 0}, totalAtMost: 1},
	// the session and the user's session_key
	storeops.Decrypt:      {reads: [2]int{1, 2}, writes: [2]int{0, 0}, totalAtMost: 2},
	storeops.Logout:       {reads: [2]int{0, 0}, writes: [2]int{1, 1}, totalAtMost: 1},
	storeops.ValidateGone: {reads: [2]int{1, 1}, writes: [2]int{0, 0}, totalAtMost: 1},
	// a login of a user whose row lists sessions costs what a first one does:
	// the list is updated in the user's write, never read first
	storeops.LoginListed: {reads: [2]int{0, 0}, writes: [2]int{3, 3}, wechat: 1, totalAtMost: 3},
	// the skey's session and the user's list; one delete per listed session
	// (2) and one write trimming the list
	storeops.LogoutAll: {reads: [2]int{2, 2}, writes: [2]int{3, 3}, totalAtMost: 5},
	// past the cap: the oldest is read (is it still live?), deleted and
	// trimmed from the list: two writes and a read on top of a login's three
	storeops.LoginPastCap: {reads: [2]int{1, 1}, writes: [2]int{5, 5}, wechat: 1, totalAtMost: 6},
}

// TestStoreOperations counts, with a middleware on the DynamoDB client and a
// hook on the Redis client, the round trips each request makes to DynamoDB
// Local and redis-server (make test starts both), and checks them against the
// budgets.
func TestStoreOperations(t *testing.T) {
	stores := []struct {
		name string
		env  string
		open func(ctx context.Context, url string, c *storeops.Counter, now func() time.Time) (session.Store, error)
	}{
		{"dynamodb", "WXSESSION_DYNAMODB_URL", func(ctx context.Context, url string, c *storeops.Counter, now func() time.Time) (session.Store, error) {
			return storeops.DynamoDB(ctx, url, c, now)
		}},
		{"redis", "WXSESSION_REDIS_URL", func(_ context.Context, url string, c *storeops.Counter, now func() time.Time) (session.Store, error) {
			return storeops.Redis(url, c, now)
		}},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			url := os.Getenv(s.env)
			if url == "" {
				t.Skipf("set %s to count %s operations (make test starts one: scripts/test-services.sh)", s.env, s.name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			clock := storetest.NewClock()
			c := storeops.NewCounter()
			st, err := s.open(ctx, url, c, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := storeops.Measure(ctx, st, c, clock)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(limits) {
				t.Fatalf("measured %d requests, want %d", len(rows), len(limits))
			}
			for _, r := range rows {
				t.Logf("%-26s reads %d writes %d wechat %d: %s", r.Request, r.Reads, r.Writes, r.WeChat, r.Detail())
				l := limits[r.Request]
				if r.Reads < l.reads[0] || r.Reads > l.reads[1] {
					t.Errorf("%s: got %d store reads (%s), want %d to %d", r.Request, r.Reads, r.Detail(), l.reads[0], l.reads[1])
				}
				if r.Writes < l.writes[0] || r.Writes > l.writes[1] {
					t.Errorf("%s: got %d store writes (%s), want %d to %d", r.Request, r.Writes, r.Detail(), l.writes[0], l.writes[1])
				}
				if total := r.Reads + r.Writes + r.Other; total > l.totalAtMost {
					t.Errorf("%s: got %d store round trips (%s), want at most %d", r.Request, total, r.Detail(), l.totalAtMost)
				}
				if r.WeChat != l.wechat {
					t.Errorf("%s: got %d WeChat calls, want %d", r.Request, r.WeChat, l.wechat)
				}
			}
		})
	}
}
