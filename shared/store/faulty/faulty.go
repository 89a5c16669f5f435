// Package faulty wraps a session.Store so a test can make it fail, stall or
// panic on command, call by call: the faults a real store shows in an outage
// (refused connections, a server that never answers, a slow one) and the one
// it should never show (a panic), without a server to break.
//
// For outages of a real server, use storetest.Proxy instead; this wrapper is
// for faults a proxy cannot aim, such as failing only the session write of a
// login after the user's row was written.
package faulty

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wxsession/wxsession/shared/session"
)

// ErrInjected is the error a Fail fault returns, and a Hang fault once the
// caller gives up.
var ErrInjected = errors.New("faulty: injected store failure")

// Op names a Store method.
type Op string

// The Store's methods.
const (
	ClaimCode     Op = "ClaimCode"
	ReleaseCode   Op = "ReleaseCode"
	PutUser       Op = "PutUser"
	GetUser       Op = "GetUser"
	PutSession    Op = "PutSession"
	GetSession    Op = "GetSession"
	RenewSession  Op = "RenewSession"
	DeleteSession Op = "DeleteSession"
	// RemoveSessions is the trimming of a user's session list.
	RemoveSessions Op = "RemoveSessions"
)

// Ops is every Op.
var Ops = []Op{ClaimCode, ReleaseCode, PutUser, GetUser, PutSession, GetSession, RenewSession, DeleteSession, RemoveSessions}

// Mode is how a faulty call misbehaves.
type Mode string

// The modes.
const (
	// Fail returns ErrInjected at once, as a refused connection does.
	Fail Mode = "fail"
	// Hang blocks until the caller's context is done, then returns
	// ErrInjected wrapping the context's error: a server that never answers,
	// behind a client with no timeout of its own.
	Hang Mode = "hang"
	// Slow waits Delay (or until the caller's context is done), then makes
	// the call.
	Slow Mode = "slow"
	// Panic panics, as a bug in a store would.
	Panic Mode = "panic"
)

// Fault says which calls misbehave, and how.
type Fault struct {
	Mode  Mode
	Delay time.Duration // for Slow
	// Ops are the methods affected; none means all.
	Ops []Op
	// Times is how many calls the fault affects; 0 means until cleared.
	Times int
}

// Store is a session.Store that forwards to another, except for the calls a
// Fault picks. It is safe for concurrent use.
type Store struct {
	next session.Store

	mu    sync.Mutex
	fault *Fault
	calls map[Op]int
	hit   map[Op]int
	// Session ids PutSession was called with, by outcome.
	written, unwritten []string
}

var _ session.Store = (*Store)(nil)

// New returns a Store forwarding to next, healthy until Set is called.
func New(next session.Store) *Store {
	return &Store{next: next, calls: make(map[Op]int), hit: make(map[Op]int)}
}

// Set makes the calls f picks misbehave; it replaces any fault set before.
func (s *Store) Set(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = &f
}

// Clear makes every call healthy again.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
}

// Calls returns how many calls of op were made, faulty or not.
func (s *Store) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Faults returns how many calls of op misbehaved.
func (s *Store) Faults(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hit[op]
}

// SessionWrites returns the ids of the sessions PutSession wrote, and of those
// it was asked to write but answered with an error. A test checks that none
// of the latter exists: a login that failed left no session behind.
func (s *Store) SessionWrites() (written, failed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.written...), append([]string(nil), s.unwritten...)
}

// take counts a call of op and returns the fault it gets, if any.
func (s *Store) take(op Op) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	f := s.fault
	if f == nil || !picks(f.Ops, op) {
		return nil
	}
	s.hit[op]++
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			s.fault = nil
		}
	}
	cp := *f
	return &cp
}

func picks(ops []Op, op Op) bool {
	if len(ops) == 0 {
		return true
	}
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// before applies the fault for a call of op, if any: it returns an error to
// return instead of making the call, or nil to go ahead.
func (s *Store) before(ctx context.Context, op Op) error {
	f := s.take(op)
	if f == nil {
		return nil
	}
	switch f.Mode {
	case Fail:
		return fmt.Errorf("%s: %w", op, ErrInjected)
	case Hang:
		<-ctx.Done()
		return fmt.Errorf("%s: %w (%w)", op, ErrInjected, ctx.Err())
	case Slow:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (%w)", op, ErrInjected, ctx.Err())
		}
	case Panic:
		panic(fmt.Sprintf("faulty: injected panic in %s", op))
	}
	return nil
}

// ClaimCode implements session.Store.
func (s *Store) ClaimCode(ctx context.Context, c session.CodeClaim) (session.CodeClaim, bool, error) {
	if err := s.before(ctx, ClaimCode); err != nil {
		return session.CodeClaim{}, false, err
	}
	return s.next.ClaimCode(ctx, c)
}

// ReleaseCode implements session.Store.
func (s *Store) ReleaseCode(ctx context.Context, id string) error {
	if err := s.before(ctx, ReleaseCode); err != nil {
		return err
	}
	return s.next.ReleaseCode(ctx, id)
}

// PutUser implements session.Store.
func (s *Store) PutUser(ctx context.Context, u session.User, add session.Ref) ([]session.Ref, error) {
	if err := s.before(ctx, PutUser); err != nil {
		return nil, err
	}
	return s.next.PutUser(ctx, u, add)
}

// RemoveSessions implements session.Store.
func (s *Store) RemoveSessions(ctx context.Context, appID, openID string, ids []string) error {
	if err := s.before(ctx, RemoveSessions); err != nil {
		return err
	}
	return s.next.RemoveSessions(ctx, appID, openID, ids)
}

// GetUser implements session.Store.
func (s *Store) GetUser(ctx context.Context, appID, openID string) (session.User, error) {
	if err := s.before(ctx, GetUser); err != nil {
		return session.User{}, err
	}
	return s.next.GetUser(ctx, appID, openID)
}

// PutSession implements session.Store.
func (s *Store) PutSession(ctx context.Context, id string, sess session.Session) error {
	err := s.before(ctx, PutSession)
	if err == nil {
		err = s.next.PutSession(ctx, id, sess)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.written = append(s.written, id)
	} else {
		s.unwritten = append(s.unwritten, id)
	}
	return err
}

// GetSession implements session.Store.
func (s *Store) GetSession(ctx context.Context, id string) (session.Session, error) {
	if err := s.before(ctx, GetSession); err != nil {
		return session.Session{}, err
	}
	return s.next.GetSession(ctx, id)
}

// RenewSession implements session.Store.
func (s *Store) RenewSession(ctx context.Context, id string, expiresAt time.Time) error {
	if err := s.before(ctx, RenewSession); err != nil {
		return err
	}
	return s.next.RenewSession(ctx, id, expiresAt)
}

// DeleteSession implements session.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.before(ctx, DeleteSession); err != nil {
		return err
	}
	return s.next.DeleteSession(ctx, id)
}
