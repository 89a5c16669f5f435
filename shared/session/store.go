package session

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store for a row that does not exist or whose
// expiry has passed, whether or not the store has deleted it yet.
var ErrNotFound = errors.New("session: not found")

// Session is one login session, stored under the hash of its skey.
type Session struct {
	// AppID is the app the session belongs to. A row written before rows
	// recorded their app has none: it is the deployment's first app's.
	AppID   string
	OpenID  string
	UnionID string
	// CreatedAt is the login time; SESSION_MAX_AGE counts from it.
	CreatedAt time.Time
	// ExpiresAt is the sliding expiry, never past CreatedAt+SESSION_MAX_AGE.
	ExpiresAt time.Time
}

// User holds the newest session_key WeChat issued for one user of one app.
type User struct {
	AppID  string
	OpenID string
	// SessionKey is the session_key as stored: WeChat's base64 string, or that
	// string sealed when SESSION_SEAL_KEY is set. Stores keep it opaque.
	SessionKey string
	// ExpiresAt is when no session of this user can be alive any more.
	ExpiresAt time.Time
	// Sessions lists the user's sessions, as GetUser reads them: every
	// session login has added and no logout has removed yet. It may name
	// sessions that have since ended (a single logout does not touch the
	// user's row); PutUser ignores it.
	Sessions []Ref
}

// Ref is one entry of a user's session list: enough to find the
// session (its id, the skey's hash) and to know when it surely ends.
type Ref struct {
	ID        string
	CreatedAt time.Time
	// ExpiresAt is the session's absolute cap (login + SESSION_MAX_AGE); the
	// sliding expiry lives in the session's own row only, so that a renewal
	// writes one row.
	ExpiresAt time.Time
}

// CodeClaim records which skey a login code produced, for the code's lifetime,
// so a repeated code returns the same session without a second WeChat call.
type CodeClaim struct {
	// ID is derived from the app and the code; the code itself is not stored.
	ID string
	// SealedSkey is the skey sealed under a key derived from the code: only
	// someone holding the code can read it.
	SealedSkey []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// Store persists sessions, users and code claims. Each row has an expiry: a
// row whose expiry has passed (by the store's clock) is never returned, even
// while it is still physically present, and never renewed. Stores keep times
// to the millisecond at least. Errors other than ErrNotFound mean the store
// could not be reached or failed.
type Store interface {
	// ClaimCode stores c unless an unexpired claim with the same ID exists.
	// It returns the claim that holds the code and whether it is c: of many
	// concurrent callers, across processes, exactly one wins. A store that
	// retries a write whose answer was lost must recognise its own claim
	// (same SealedSkey) as won, or one login would look like two.
	ClaimCode(ctx context.Context, c CodeClaim) (holder CodeClaim, won bool, err error)
	// ReleaseCode deletes a claim, so a login that failed may be tried again.
	ReleaseCode(ctx context.Context, id string) error

	// PutUser creates the user's row or replaces its session_key and expiry,
	// and adds add to the user's session list, keeping the rest of the list,
	// in one atomic write: concurrent logins of one user, across processes,
	// all find their sessions listed. It returns the list as it stands after
	// the write.
	PutUser(ctx context.Context, u User, add Ref) ([]Ref, error)
	// GetUser returns the user's row, session list included, or ErrNotFound.
	GetUser(ctx context.Context, appID, openID string) (User, error)
	// RemoveSessions drops ids from the user's session list in one atomic
	// write, leaving any other entry (a racing login's) in place. Ids not
	// listed are ignored, and a missing row is not created.
	RemoveSessions(ctx context.Context, appID, openID string, ids []string) error

	// PutSession creates a session under id, the skey's hash.
	PutSession(ctx context.Context, id string, s Session) error
	// GetSession returns the session stored under id or ErrNotFound.
	GetSession(ctx context.Context, id string) (Session, error)
	// RenewSession moves the expiry of a live session to expiresAt. It returns
	// ErrNotFound, and writes nothing, when the session is gone or expired:
	// renewal never brings a session back.
	RenewSession(ctx context.Context, id string, expiresAt time.Time) error
	// DeleteSession removes a session; deleting a missing one is not an error.
	DeleteSession(ctx context.Context, id string) error
}
