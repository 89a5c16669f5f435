package memory

import (
	"context"
	"time"

	"github.com/wxsession/wxsession/shared/token"
)

var _ token.Store = (*Store)(nil)

// tokenRow is an app's access_token row.
type tokenRow struct {
	token      string
	expiresAt  time.Time
	holder     string
	leaseUntil time.Time
}

// tokenRowLocked returns the app's row. Callers hold s.mu.
func (s *Store) tokenRowLocked(appID string) tokenRow {
	if s.tokens == nil {
		s.tokens = make(map[string]tokenRow)
	}
	return s.tokens[appID]
}

// GetToken implements token.Store.
func (s *Store) GetToken(_ context.Context, appID string) (token.Row, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.tokenRowLocked(appID)
	var row token.Row
	if r.token != "" && s.live(r.expiresAt) {
		row.Token, row.ExpiresAt = r.token, r.expiresAt
	}
	if r.holder != "" && s.live(r.leaseUntil) {
		row.LeaseUntil = r.leaseUntil
	}
	if row.Token == "" && row.LeaseUntil.IsZero() {
		return token.Row{}, token.ErrNotFound
	}
	return row, nil
}

// LeaseToken implements token.Store.
func (s *Store) LeaseToken(_ context.Context, appID, holder, ifToken string, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.tokenRowLocked(appID)
	if r.holder != "" && r.holder != holder && s.live(r.leaseUntil) {
		return false, nil
	}
	current := r.token
	if !s.live(r.expiresAt) {
		current = ""
	}
	if current != ifToken {
		return false, nil
	}
	r.holder, r.leaseUntil = holder, until
	s.tokens[appID] = r
	return true, nil
}

// PutToken implements token.Store.
func (s *Store) PutToken(_ context.Context, appID, holder string, row token.Row) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.tokenRowLocked(appID); r.holder != holder || !s.live(r.leaseUntil) {
		return token.ErrLeaseLost
	}
	s.tokens[appID] = tokenRow{token: row.Token, expiresAt: row.ExpiresAt}
	return nil
}

// ReleaseToken implements token.Store.
func (s *Store) ReleaseToken(_ context.Context, appID, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.tokenRowLocked(appID); r.holder == holder {
		r.holder, r.leaseUntil = "", time.Time{}
		s.tokens[appID] = r
	}
	return nil
}

// DropToken implements token.Store.
func (s *Store) DropToken(_ context.Context, appID, ifToken string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.tokenRowLocked(appID)
	if r.token == "" || r.token != ifToken {
		return false, nil
	}
	r.token, r.expiresAt = "", time.Time{}
	s.tokens[appID] = r
	return true, nil
}
