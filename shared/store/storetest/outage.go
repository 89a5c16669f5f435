package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/session"
)

// MaxFailTime is how long a store may take to report that its server is down
// or hung: the service answers store_unavailable then, well inside a
// function's deadline.
const MaxFailTime = 2 * time.Second

// recoverWithin is how soon a store must work again once its server is back.
const recoverWithin = 10 * time.Second

// RunOutage checks that a store reports a server that is down or hung as an
// error (never as session.ErrNotFound, which the service would turn into
// session_expired) within MaxFailTime, and that the same store works again
// once the server is back, without being rebuilt. open returns a store whose
// server is at addr (host:port): a Proxy to target that RunOutage cuts.
func RunOutage(t *testing.T, target string, open func(t *testing.T, addr string, now func() time.Time) session.Store) {
	t.Helper()
	ctx := context.Background()
	clock := NewClock()
	p := NewProxy(t, target)
	s := open(t, p.Addr(), clock.Now)

	id := sessionID()
	sess := newSession(clock.Now())
	mustPutSession(t, s, id, sess)
	wantSession(t, s, id, sess)

	ops := []struct {
		name string
		do   func() error
	}{
		{"GetSession", func() error { _, err := s.GetSession(ctx, id); return err }},
		{"PutSession", func() error { return s.PutSession(ctx, sessionID(), sess) }},
		{"RenewSession", func() error { return s.RenewSession(ctx, id, clock.Now().Add(time.Hour)) }},
		{"DeleteSession", func() error { return s.DeleteSession(ctx, sessionID()) }},
		{"GetUser", func() error { _, err := s.GetUser(ctx, "wxapp", "o-someone"); return err }},
		{"ClaimCode", func() error { _, _, err := s.ClaimCode(ctx, newClaim(claimID(), clock.Now())); return err }},
	}
	outages := []struct {
		name  string
		begin func()
	}{
		{"server down", p.Down},
		{"server hung", p.Hang},
	}
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			o.begin()
			for _, op := range ops {
				start := time.Now()
				err := op.do()
				took := time.Since(start)
				switch {
				case err == nil:
					t.Errorf("%s: got no error, want one", op.name)
				case errors.Is(err, session.ErrNotFound):
					t.Errorf("%s: got session.ErrNotFound, want an error that says the store failed", op.name)
				case took > MaxFailTime:
					t.Errorf("%s: failed after %v, want within %v", op.name, took.Round(time.Millisecond), MaxFailTime)
				default:
					t.Logf("%s failed after %v: %v", op.name, took.Round(time.Millisecond), err)
				}
			}
			p.Up()
			start := time.Now()
			for {
				_, err := s.GetSession(ctx, id)
				if err == nil {
					break
				}
				if time.Since(start) > recoverWithin {
					t.Fatalf("GetSession still fails %v after the server came back: %v", recoverWithin, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("recovered %v after the server came back", time.Since(start).Round(time.Millisecond))
			wantSession(t, s, id, sess)
		})
	}
}
