package redis

import (
	"net/url"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// TestHTTPOutage cuts redis-server off from a running handler: every route
// answers 503 store_unavailable within about a second, and the same handler
// recovers once the server is back.
func TestHTTPOutage(t *testing.T) {
	c, raw := localClient(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunHTTPOutage(t, u.Host, func(t *testing.T, addr string, now func() time.Time) session.Store {
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
