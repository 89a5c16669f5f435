package dynamo

import (
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// TestHTTPOutage cuts DynamoDB Local off from a running handler: every route
// answers 503 store_unavailable within about a second, and the same handler
// recovers once the server is back.
func TestHTTPOutage(t *testing.T) {
	c, endpoint := localClient(t)
	storetest.RunHTTPOutage(t, strings.TrimPrefix(endpoint, "http://"), func(t *testing.T, addr string, now func() time.Time) session.Store {
		return New(localClientAt("http://"+addr), newTable(t, c), now)
	})
}
