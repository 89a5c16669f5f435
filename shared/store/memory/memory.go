// Package memory is an in-process session store: the default for the local
// server and the reference every other store is tested against.
package memory

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/wxsession/wxsession/shared/session"
)

var _ session.Store = (*Store)(nil)

// sweepEvery is how many writes pass between sweeps of expired rows, so rows
// that are never read again do not pile up.
const sweepEvery = 1024

// Store keeps rows in maps guarded by one mutex. The zero value is not usable;
// call New.
type Store struct {
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]session.Session
	users    map[userKey]session.User
	codes    map[string]session.CodeClaim
	writes   int
	tokens   map[string]tokenRow // by appid; see token.go
}

type userKey struct{ appID, openID string }

// New returns an empty store that reads the time from now (time.Now if nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:      now,
		sessions: make(map[string]session.Session),
		users:    make(map[userKey]session.User),
		codes:    make(map[string]session.CodeClaim),
	}
}

// ClaimCode implements session.Store.
func (s *Store) ClaimCode(_ context.Context, c session.CodeClaim) (session.CodeClaim, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, ok := s.codes[c.ID]; ok && s.live(held.ExpiresAt) {
		return held, false, nil
	}
	s.codes[c.ID] = c
	s.wrote()
	return c, true, nil
}

// ReleaseCode implements session.Store.
func (s *Store) ReleaseCode(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.codes, id)
	return nil
}

// PutUser implements session.Store.
func (s *Store) PutUser(_ context.Context, u session.User, add session.Ref) ([]session.Ref, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := userKey{u.AppID, u.OpenID}
	var refs []session.Ref
	if old, ok := s.users[k]; ok && s.live(old.ExpiresAt) {
		refs = slices.DeleteFunc(slices.Clone(old.Sessions), func(r session.Ref) bool { return r.ID == add.ID })
	}
	u.Sessions = append(refs, add)
	s.users[k] = u
	s.wrote()
	return slices.Clone(u.Sessions), nil
}

// RemoveSessions implements session.Store.
func (s *Store) RemoveSessions(_ context.Context, appID, openID string, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := userKey{appID, openID}
	u, ok := s.users[k]
	if !ok {
		return nil
	}
	u.Sessions = slices.DeleteFunc(slices.Clone(u.Sessions), func(r session.Ref) bool { return slices.Contains(ids, r.ID) })
	s.users[k] = u
	return nil
}

// GetUser implements session.Store.
func (s *Store) GetUser(_ context.Context, appID, openID string) (session.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userKey{appID, openID}]
	if !ok || !s.live(u.ExpiresAt) {
		return session.User{}, session.ErrNotFound
	}
	u.Sessions = slices.Clone(u.Sessions)
	return u, nil
}

// PutSession implements session.Store.
func (s *Store) PutSession(_ context.Context, id string, sess session.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[id] = sess
	s.wrote()
	return nil
}

// GetSession implements session.Store.
func (s *Store) GetSession(_ context.Context, id string) (session.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok || !s.live(sess.ExpiresAt) {
		return session.Session{}, session.ErrNotFound
	}
	return sess, nil
}

// RenewSession implements session.Store.
func (s *Store) RenewSession(_ context.Context, id string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok || !s.live(sess.ExpiresAt) {
		return session.ErrNotFound
	}
	sess.ExpiresAt = expiresAt
	s.sessions[id] = sess
	return nil
}

// DeleteSession implements session.Store.
func (s *Store) DeleteSession(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return nil
}

// live reports whether a row expiring at t is still alive. Callers hold s.mu.
func (s *Store) live(t time.Time) bool { return s.now().Before(t) }

// wrote counts a write and now and then drops expired rows. Callers hold s.mu.
func (s *Store) wrote() {
	s.writes++
	if s.writes%sweepEvery != 0 {
		return
	}
	now := s.now()
	for id, v := range s.sessions {
		if !now.Before(v.ExpiresAt) {
			delete(s.sessions, id)
		}
	}
	for k, v := range s.users {
		if !now.Before(v.ExpiresAt) {
			delete(s.users, k)
		}
	}
	for id, v := range s.codes {
		if !now.Before(v.ExpiresAt) {
			delete(s.codes, id)
		}
	}
}
