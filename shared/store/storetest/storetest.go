// Package storetest is the conformance suite every session.Store passes: the
// memory store in its own tests, the DynamoDB and Redis stores against
// DynamoDB Local and redis-server. One suite keeps the stores interchangeable:
// whatever the service relies on is written down here once.
package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/session"
)

// Harness describes a store to the suite.
type Harness struct {
	// New returns an empty store that reads the time from now. Stores from
	// separate calls must not share rows (use a fresh table or key prefix),
	// since subtests run in parallel; New registers its own clean-up on t.
	New func(t *testing.T, now func() time.Time) session.Store
	// Dump returns everything s holds at rest, as stored (binary values as
	// their raw bytes), so the suite can check that no skey, code or
	// plaintext session_key is stored. Nil skips those checks.
	Dump func(t *testing.T, s session.Store) string
	// Second returns another client of the same rows s holds (its own
	// connection to the same server, table or prefix), as a second function
	// instance would have. Nil for an in-process store: instances then share
	// s itself.
	Second func(t *testing.T, s session.Store, now func() time.Time) session.Store
}

// Run runs the conformance suite. Stores keep times to at least the
// millisecond; the suite's clock starts on a whole millisecond and moves in
// whole milliseconds.
func Run(t *testing.T, h Harness) {
	t.Helper()
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock()
			tc.run(t, h.New(t, clock.Now), clock)
		})
	}
	t.Run("service", func(t *testing.T) {
		t.Parallel()
		runService(t, h)
	})
}

type storeCase struct {
	name string
	run  func(t *testing.T, s session.Store, clock *Clock)
}

var storeCases = []storeCase{
	{"session/put and get", testSessionPutGet},
	{"session/get missing", testSessionGetMissing},
	{"session/expiry", testSessionExpiry},
	{"session/renew", testSessionRenew},
	{"session/renew expired writes nothing", testSessionRenewExpired},
	{"session/renew deleted creates nothing", testSessionRenewDeleted},
	{"session/delete", testSessionDelete},
	{"user/put and get", testUserPutGet},
	{"user/get missing", testUserGetMissing},
	{"user/newest session_key wins", testUserReplace},
	{"user/apps are separate", testUserApps},
	{"user/expiry", testUserExpiry},
	{"user/session list", testUserSessionList},
	{"user/session list under concurrent logins", testUserSessionListConcurrent},
	{"user/session list of an expired row", testUserSessionListExpired},
	{"claim/first caller wins", testClaimFirst},
	{"claim/50 concurrent callers", testClaimConcurrent},
	{"claim/live claim holds", testClaimHolds},
	{"claim/expired claim is overwritten", testClaimExpired},
	{"claim/release", testClaimRelease},
}

// sessionID returns a fresh id shaped like the service's (a SHA-256 hex).
func sessionID() string { return session.SkeyHash(session.NewSkey()) }

func mustPutSession(t *testing.T, s session.Store, id string, sess session.Session) {
	t.Helper()
	if err := s.PutSession(context.Background(), id, sess); err != nil {
		t.Fatalf("PutSession: %v", err)
	}
}

// wantSession checks that id holds want.
func wantSession(t *testing.T, s session.Store, id string, want session.Session) {
	t.Helper()
	got, err := s.GetSession(context.Background(), id)
	if err != nil {
		t.Fatalf("GetSession: got error %v, want %+v", err, want)
	}
	if got.OpenID != want.OpenID || got.UnionID != want.UnionID || !sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Fatalf("GetSession: got %+v, want %+v", got, want)
	}
}

// wantNoSession checks that id holds no live session.
func wantNoSession(t *testing.T, s session.Store, id string) {
	t.Helper()
	got, err := s.GetSession(context.Background(), id)
	if !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetSession: got %+v, %v; want session.ErrNotFound", got, err)
	}
}

// sameTime compares to the millisecond, the precision stores promise.
func sameTime(a, b time.Time) bool { return a.UnixMilli() == b.UnixMilli() }

func newSession(now time.Time) session.Session {
	const ttl = time.Hour
	return session.Session{OpenID: "o-" + session.NewSkey()[:12], UnionID: "u-" + session.NewSkey()[:12], CreatedAt: now, ExpiresAt: now.Add(ttl)}
}

func testSessionPutGet(t *testing.T, s session.Store, clock *Clock) {
	tests := []struct {
		name string
		sess session.Session
	}{
		{"with unionid", newSession(clock.Now())},
		{"without unionid", session.Session{OpenID: "o-plain", CreatedAt: clock.Now().Add(-time.Minute), ExpiresAt: clock.Now().Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := sessionID()
			mustPutSession(t, s, id, tt.sess)
			wantSession(t, s, id, tt.sess)
		})
	}
}

func testSessionGetMissing(t *testing.T, s session.Store, _ *Clock) {
	wantNoSession(t, s, sessionID())
}

func testSessionExpiry(t *testing.T, s session.Store, clock *Clock) {
	id := sessionID()
	sess := newSession(clock.Now())
	mustPutSession(t, s, id, sess)
	clock.Advance(time.Hour - time.Millisecond)
	wantSession(t, s, id, sess)
	clock.Advance(time.Millisecond) // exactly at ExpiresAt: expired
	wantNoSession(t, s, id)
}

func testSessionRenew(t *testing.T, s session.Store, clock *Clock) {
	ctx := context.Background()
	id := sessionID()
	sess := newSession(clock.Now())
	mustPutSession(t, s, id, sess)
	clock.Advance(50 * time.Minute)
	renewed := clock.Now().Add(time.Hour)
	if err := s.RenewSession(ctx, id, renewed); err != nil {
		t.Fatalf("RenewSession: %v", err)
	}
	want := sess
	want.ExpiresAt = renewed
	wantSession(t, s, id, want)
	// Renewed past the old expiry, the session lives on.
	clock.Advance(30 * time.Minute)
	wantSession(t, s, id, want)
}

func testSessionRenewExpired(t *testing.T, s session.Store, clock *Clock) {
	id := sessionID()
	sess := newSession(clock.Now())
	mustPutSession(t, s, id, sess)
	clock.Advance(time.Hour)
	if err := s.RenewSession(context.Background(), id, clock.Now().Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("RenewSession of an expired session: got %v, want session.ErrNotFound", err)
	}
	wantNoSession(t, s, id)
	// Back to just before the old expiry: the row, still physically there,
	// must carry its old expiry, not the refused one.
	clock.Advance(-time.Millisecond)
	wantSession(t, s, id, sess)
}

func testSessionRenewDeleted(t *testing.T, s session.Store, clock *Clock) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, id string)
	}{
		{"never existed", func(*testing.T, string) {}},
		{"logged out", func(t *testing.T, id string) {
			mustPutSession(t, s, id, newSession(clock.Now()))
			if err := s.DeleteSession(ctx, id); err != nil {
				t.Fatalf("DeleteSession: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := sessionID()
			tt.prepare(t, id)
			if err := s.RenewSession(ctx, id, clock.Now().Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("RenewSession: got %v, want session.ErrNotFound", err)
			}
			wantNoSession(t, s, id)
		})
	}
}

func testSessionDelete(t *testing.T, s session.Store, clock *Clock) {
	ctx := context.Background()
	id, other := sessionID(), sessionID()
	sess, otherSess := newSession(clock.Now()), newSession(clock.Now())
	mustPutSession(t, s, id, sess)
	mustPutSession(t, s, other, otherSess)
	if err := s.DeleteSession(ctx, id); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantNoSession(t, s, id)
	wantSession(t, s, other, otherSess)
	if err := s.DeleteSession(ctx, id); err != nil {
		t.Fatalf("DeleteSession of a deleted session: got %v, want nil", err)
	}
	if err := s.DeleteSession(ctx, sessionID()); err != nil {
		t.Fatalf("DeleteSession of an unknown session: got %v, want nil", err)
	}
}

func mustPutUser(t *testing.T, s session.Store, u session.User) {
	t.Helper()
	now := u.ExpiresAt.Add(-24 * time.Hour)
	mustAddSession(t, s, u, session.Ref{ID: sessionID(), CreatedAt: now, ExpiresAt: u.ExpiresAt})
}

func mustAddSession(t *testing.T, s session.Store, u session.User, add session.Ref) []session.Ref {
	t.Helper()
	refs, err := s.PutUser(context.Background(), u, add)
	if err != nil {
		t.Fatalf("PutUser: %v", err)
	}
	return refs
}

// refIDs returns the ids of refs, sorted.
func refIDs(refs []session.Ref) []string {
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	slices.Sort(ids)
	return ids
}

func wantRefs(t *testing.T, what string, got []session.Ref, want ...session.Ref) {
	t.Helper()
	if !slices.Equal(refIDs(got), refIDs(want)) {
		t.Fatalf("%s: got sessions %v, want %v", what, refIDs(got), refIDs(want))
	}
	for _, w := range want {
		i := slices.IndexFunc(got, func(r session.Ref) bool { return r.ID == w.ID })
		if !sameTime(got[i].CreatedAt, w.CreatedAt) || !sameTime(got[i].ExpiresAt, w.ExpiresAt) {
			t.Fatalf("%s: got %+v, want %+v", what, got[i], w)
		}
	}
}

func newRef(now time.Time) session.Ref {
	return session.Ref{ID: sessionID(), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
}

// testUserSessionList: each PutUser adds its session to the user's list and
// keeps the others; GetUser reads the list; RemoveSessions drops exactly the
// ids it names.
func testUserSessionList(t *testing.T, s session.Store, clock *Clock) {
	ctx := context.Background()
	u := newUser(clock.Now())
	a := newRef(clock.Now())
	wantRefs(t, "first PutUser", mustAddSession(t, s, u, a), a)
	clock.Advance(time.Second)
	b := newRef(clock.Now())
	u.SessionKey = "newer-" + session.NewSkey()[:16]
	wantRefs(t, "second PutUser", mustAddSession(t, s, u, b), a, b)
	c := newRef(clock.Now())
	wantRefs(t, "third PutUser", mustAddSession(t, s, u, c), a, b, c)
	got, err := s.GetUser(ctx, u.AppID, u.OpenID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	wantRefs(t, "GetUser", got.Sessions, a, b, c)
	if got.SessionKey != u.SessionKey {
		t.Fatalf("GetUser: session_key %q, want the newest %q", got.SessionKey, u.SessionKey)
	}
	if err := s.RemoveSessions(ctx, u.AppID, u.OpenID, []string{a.ID, c.ID, sessionID()}); err != nil {
		t.Fatalf("RemoveSessions: %v", err)
	}
	got, _ = s.GetUser(ctx, u.AppID, u.OpenID)
	wantRefs(t, "GetUser after RemoveSessions", got.Sessions, b)
	wantUser(t, s, u) // the rest of the row is untouched
	if err := s.RemoveSessions(ctx, u.AppID, u.OpenID, []string{b.ID}); err != nil {
		t.Fatalf("RemoveSessions of the last: %v", err)
	}
	got, _ = s.GetUser(ctx, u.AppID, u.OpenID)
	wantRefs(t, "GetUser after removing every session", got.Sessions)
	wantUser(t, s, u)
	// Removing from a user who has no row creates none.
	if err := s.RemoveSessions(ctx, u.AppID, "o-nobody", []string{a.ID}); err != nil {
		t.Fatalf("RemoveSessions of an unknown user: %v", err)
	}
	wantNoUser(t, s, u.AppID, "o-nobody")
}

// testUserSessionListConcurrent: logins of one user racing on many
// instances all find their sessions listed (no lost update).
func testUserSessionListConcurrent(t *testing.T, s session.Store, clock *Clock) {
	u := newUser(clock.Now())
	refs := make([]session.Ref, 20)
	var wg sync.WaitGroup
	for i := range refs {
		refs[i] = newRef(clock.Now())
		wg.Go(func() {
			if _, err := s.PutUser(context.Background(), u, refs[i]); err != nil {
				t.Errorf("PutUser: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetUser(context.Background(), u.AppID, u.OpenID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	wantRefs(t, "GetUser after 20 concurrent PutUser", got.Sessions, refs...)
}

// testUserSessionListExpired: a user row that expired starts a new list.
func testUserSessionListExpired(t *testing.T, s session.Store, clock *Clock) {
	u := newUser(clock.Now())
	old := newRef(clock.Now())
	mustAddSession(t, s, u, old)
	clock.Advance(25 * time.Hour)
	u.ExpiresAt = clock.Now().Add(24 * time.Hour)
	fresh := newRef(clock.Now())
	got := mustAddSession(t, s, u, fresh)
	if !slices.Contains(refIDs(got), fresh.ID) {
		t.Fatalf("PutUser over an expired row: got %v, want %s listed", refIDs(got), fresh.ID)
	}
	// The expired row's entry may linger (DynamoDB keeps the item until its
	// TTL deletes it), but only with the expiry it had: past its cap, so the
	// service drops it.
	for _, r := range got {
		if r.ID == old.ID && clock.Now().Before(r.ExpiresAt) {
			t.Fatalf("PutUser over an expired row: %+v is listed as live", r)
		}
	}
}

func wantUser(t *testing.T, s session.Store, want session.User) {
	t.Helper()
	got, err := s.GetUser(context.Background(), want.AppID, want.OpenID)
	if err != nil {
		t.Fatalf("GetUser: got error %v, want %+v", err, want)
	}
	if got.AppID != want.AppID || got.OpenID != want.OpenID || got.SessionKey != want.SessionKey || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Fatalf("GetUser: got %+v, want %+v", got, want)
	}
}

func wantNoUser(t *testing.T, s session.Store, appID, openID string) {
	t.Helper()
	got, err := s.GetUser(context.Background(), appID, openID)
	if !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetUser: got %+v, %v; want session.ErrNotFound", got, err)
	}
}

func newUser(now time.Time) session.User {
	return session.User{AppID: "wxapp", OpenID: "o-" + session.NewSkey()[:12], SessionKey: session.NewSkey()[:24], ExpiresAt: now.Add(24 * time.Hour)}
}

func testUserPutGet(t *testing.T, s session.Store, clock *Clock) {
	u := newUser(clock.Now())
	mustPutUser(t, s, u)
	wantUser(t, s, u)
}

func testUserGetMissing(t *testing.T, s session.Store, _ *Clock) {
	wantNoUser(t, s, "wxapp", "o-nobody")
}

func testUserReplace(t *testing.T, s session.Store, clock *Clock) {
	u := newUser(clock.Now())
	mustPutUser(t, s, u)
	clock.Advance(time.Minute)
	newer := u
	newer.SessionKey = "newer-" + session.NewSkey()[:16]
	newer.ExpiresAt = clock.Now().Add(24 * time.Hour)
	mustPutUser(t, s, newer)
	wantUser(t, s, newer)
}

func testUserApps(t *testing.T, s session.Store, clock *Clock) {
	a := newUser(clock.Now())
	b := a
	b.AppID = "wxother"
	b.SessionKey = "other-" + session.NewSkey()[:16]
	mustPutUser(t, s, a)
	mustPutUser(t, s, b)
	wantUser(t, s, a)
	wantUser(t, s, b)
}

func testUserExpiry(t *testing.T, s session.Store, clock *Clock) {
	u := newUser(clock.Now())
	mustPutUser(t, s, u)
	clock.Advance(u.ExpiresAt.Sub(clock.Now()) - time.Millisecond)
	wantUser(t, s, u)
	clock.Advance(time.Millisecond)
	wantNoUser(t, s, u.AppID, u.OpenID)
}

// newClaim returns a claim on id with a distinct sealed skey, as the service
// makes one.
func newClaim(id string, now time.Time) session.CodeClaim {
	return session.CodeClaim{ID: id, SealedSkey: []byte("sealed:" + session.NewSkey()), CreatedAt: now, ExpiresAt: now.Add(session.CodeLifetime)}
}

func claimID() string { return "claim-" + sessionID() }

func claim(t *testing.T, s session.Store, c session.CodeClaim) (session.CodeClaim, bool) {
	t.Helper()
	holder, won, err := s.ClaimCode(context.Background(), c)
	if err != nil {
		t.Fatalf("ClaimCode: %v", err)
	}
	return holder, won
}

// wantHolder checks the claim a ClaimCode returned.
func wantHolder(t *testing.T, got, want session.CodeClaim) {
	t.Helper()
	if got.ID != want.ID || string(got.SealedSkey) != string(want.SealedSkey) || !sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.ExpiresAt, want.ExpiresAt) {
		t.Fatalf("ClaimCode holder: got %+v, want %+v", got, want)
	}
}

func testClaimFirst(t *testing.T, s session.Store, clock *Clock) {
	c := newClaim(claimID(), clock.Now())
	holder, won := claim(t, s, c)
	if !won {
		t.Fatalf("ClaimCode on a fresh id: got won=false (holder %+v), want true", holder)
	}
	wantHolder(t, holder, c)
}

func testClaimConcurrent(t *testing.T, s session.Store, clock *Clock) {
	const callers = 50
	id := claimID()
	type result struct {
		mine   session.CodeClaim
		holder session.CodeClaim
		won    bool
		err    error
	}
	results := make([]result, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			c := newClaim(id, clock.Now())
			<-start
			holder, won, err := s.ClaimCode(context.Background(), c)
			results[i] = result{c, holder, won, err}
		})
	}
	close(start)
	wg.Wait()
	var winner *result
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("caller %d: ClaimCode: %v", i, r.err)
		}
		if r.won {
			if winner != nil {
				t.Fatalf("callers won twice (%d and another); want exactly one winner", i)
			}
			winner = &results[i]
		}
	}
	if winner == nil {
		t.Fatalf("no caller won; want exactly one winner")
	}
	for i, r := range results {
		if string(r.holder.SealedSkey) != string(winner.mine.SealedSkey) {
			t.Fatalf("caller %d: holder is not the winner's claim", i)
		}
	}
}

func testClaimHolds(t *testing.T, s session.Store, clock *Clock) {
	id := claimID()
	first := newClaim(id, clock.Now())
	claim(t, s, first)
	clock.Advance(session.CodeLifetime - time.Millisecond)
	holder, won := claim(t, s, newClaim(id, clock.Now()))
	if won {
		t.Fatalf("ClaimCode while a live claim holds the code: got won=true, want false")
	}
	wantHolder(t, holder, first)
}

func testClaimExpired(t *testing.T, s session.Store, clock *Clock) {
	id := claimID()
	claim(t, s, newClaim(id, clock.Now()))
	clock.Advance(session.CodeLifetime) // the first claim is expired, not deleted
	second := newClaim(id, clock.Now())
	holder, won := claim(t, s, second)
	if !won {
		t.Fatalf("ClaimCode over an expired claim: got won=false (holder %+v), want true", holder)
	}
	holder, won = claim(t, s, newClaim(id, clock.Now()))
	if won {
		t.Fatalf("ClaimCode after the expired claim was replaced: got won=true, want false")
	}
	wantHolder(t, holder, second)
}

func testClaimRelease(t *testing.T, s session.Store, clock *Clock) {
	ctx := context.Background()
	id := claimID()
	claim(t, s, newClaim(id, clock.Now()))
	if err := s.ReleaseCode(ctx, id); err != nil {
		t.Fatalf("ReleaseCode: %v", err)
	}
	again := newClaim(id, clock.Now())
	holder, won := claim(t, s, again)
	if !won {
		t.Fatalf("ClaimCode after ReleaseCode: got won=false (holder %+v), want true", holder)
	}
	if err := s.ReleaseCode(ctx, claimID()); err != nil {
		t.Fatalf("ReleaseCode of an unknown claim: got %v, want nil", err)
	}
}
