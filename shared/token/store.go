package token

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Store.GetToken when the app's row holds neither a
// live token nor a live lease.
var ErrNotFound = errors.New("token: not found")

// ErrLeaseLost is returned by Store.PutToken when the caller no longer holds
// the lease (it ran out and another caller took it): nothing is written.
var ErrLeaseLost = errors.New("token: renewal lease not held")

// Row is an app's access_token row as the store keeps it.
type Row struct {
	// Token is the access_token as stored: sealed when the Manager has a
	// sealer. Stores keep it opaque. Empty when the row holds no live token.
	Token string
	// ExpiresAt is when WeChat stops accepting the token.
	ExpiresAt time.Time
	// LeaseUntil is when the current renewal lease runs out; zero when no
	// live lease is held.
	LeaseUntil time.Time
}

// Store keeps one row per app, shared by every instance. Liveness is judged
// by the store's clock: a token whose ExpiresAt has passed, or a lease whose
// LeaseUntil has, is not returned and does not count, whether or not the
// store has deleted it yet. Stores keep times to the millisecond at least,
// and give the row a TTL so it does not outlive its token and lease. Errors
// other than ErrNotFound and ErrLeaseLost mean the store failed.
type Store interface {
	// GetToken returns the app's row, or ErrNotFound.
	GetToken(ctx context.Context, appID string) (Row, error)
	// LeaseToken takes the renewal lease for holder until the given time,
	// unless another holder has a live one or the row's token is no longer
	// ifToken (as stored; "" stands for no live token): a caller that read
	// the row, then lost a race with a renewal, must not renew again. It
	// reports whether holder now holds the lease. Of many concurrent callers,
	// across processes, at most one wins. It creates the row when there is
	// none and leaves the token be.
	LeaseToken(ctx context.Context, appID, holder, ifToken string, until time.Time) (bool, error)
	// PutToken stores a token and ends the lease, if holder holds a live
	// lease; otherwise it writes nothing and returns ErrLeaseLost.
	PutToken(ctx context.Context, appID, holder string, row Row) error
	// ReleaseToken ends holder's lease, if holder holds it, and leaves the
	// token be (a renewal that failed stores nothing).
	ReleaseToken(ctx context.Context, appID, holder string) error
	// DropToken removes the token only if the row still holds ifToken (as
	// stored), and reports whether it did. A lease is left be.
	DropToken(ctx context.Context, appID, ifToken string) (bool, error)
}
