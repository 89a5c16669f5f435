package boot

import (
	"context"
	"time"

	"github.com/wxsession/wxsession/shared/reqlog"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/token"
)

// timeStore wraps st so that every call's duration goes to the request's
// measures (reqlog), whatever the store: the one place store latency is
// measured for the log line's metrics. A store that also keeps access tokens
// stays a token.Store.
func timeStore(st session.Store) session.Store {
	if ts, ok := st.(token.Store); ok {
		return timedTokenStore{timedStore{st}, ts}
	}
	return timedStore{st}
}

// timedStore times every session.Store method. It embeds the store so that
// a method added to session.Store still compiles here; a test calls every
// method of the interface and fails on one that is not timed.
type timedStore struct{ session.Store }

// timed runs call and adds its duration to ctx's request measures.
func timed[T any](ctx context.Context, call func() (T, error)) (T, error) {
	start := time.Now()
	v, err := call()
	reqlog.AddStoreTime(ctx, time.Since(start))
	return v, err
}

func timedErr(ctx context.Context, call func() error) error {
	_, err := timed(ctx, func() (struct{}, error) { return struct{}{}, call() })
	return err
}

func (s timedStore) ClaimCode(ctx context.Context, c session.CodeClaim) (session.CodeClaim, bool, error) {
	var won bool
	holder, err := timed(ctx, func() (session.CodeClaim, error) {
		h, w, err := s.Store.ClaimCode(ctx, c)
		won = w
		return h, err
	})
	return holder, won, err
}

func (s timedStore) ReleaseCode(ctx context.Context, id string) error {
	return timedErr(ctx, func() error { return s.Store.ReleaseCode(ctx, id) })
}

func (s timedStore) PutUser(ctx context.Context, u session.User, add session.Ref) ([]session.Ref, error) {
	return timed(ctx, func() ([]session.Ref, error) { return s.Store.PutUser(ctx, u, add) })
}

func (s timedStore) RemoveSessions(ctx context.Context, appID, openID string, ids []string) error {
	return timedErr(ctx, func() error { return s.Store.RemoveSessions(ctx, appID, openID, ids) })
}

func (s timedStore) GetUser(ctx context.Context, appID, openID string) (session.User, error) {
	return timed(ctx, func() (session.User, error) { return s.Store.GetUser(ctx, appID, openID) })
}

func (s timedStore) PutSession(ctx context.Context, id string, sess session.Session) error {
	return timedErr(ctx, func() error { return s.Store.PutSession(ctx, id, sess) })
}

func (s timedStore) GetSession(ctx context.Context, id string) (session.Session, error) {
	return timed(ctx, func() (session.Session, error) { return s.Store.GetSession(ctx, id) })
}

func (s timedStore) RenewSession(ctx context.Context, id string, expiresAt time.Time) error {
	return timedErr(ctx, func() error { return s.Store.RenewSession(ctx, id, expiresAt) })
}

func (s timedStore) DeleteSession(ctx context.Context, id string) error {
	return timedErr(ctx, func() error { return s.Store.DeleteSession(ctx, id) })
}

// timedTokenStore is a timedStore whose store keeps access tokens too.
type timedTokenStore struct {
	timedStore
	tok token.Store
}

var _ token.Store = timedTokenStore{}

func (s timedTokenStore) GetToken(ctx context.Context, appID string) (token.Row, error) {
	return timed(ctx, func() (token.Row, error) { return s.tok.GetToken(ctx, appID) })
}

func (s timedTokenStore) LeaseToken(ctx context.Context, appID, holder, ifToken string, until time.Time) (bool, error) {
	return timed(ctx, func() (bool, error) { return s.tok.LeaseToken(ctx, appID, holder, ifToken, until) })
}

func (s timedTokenStore) PutToken(ctx context.Context, appID, holder string, row token.Row) error {
	return timedErr(ctx, func() error { return s.tok.PutToken(ctx, appID, holder, row) })
}

func (s timedTokenStore) ReleaseToken(ctx context.Context, appID, holder string) error {
	return timedErr(ctx, func() error { return s.tok.ReleaseToken(ctx, appID, holder) })
}

func (s timedTokenStore) DropToken(ctx context.Context, appID, ifToken string) (bool, error) {
	return timed(ctx, func() (bool, error) { return s.tok.DropToken(ctx, appID, ifToken) })
}
