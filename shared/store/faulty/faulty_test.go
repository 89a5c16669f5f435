package faulty_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/store/memory"
)

func TestModes(t *testing.T) {
	ctx := context.Background()
	s := faulty.New(memory.New(nil))
	sess := session.Session{OpenID: "o1", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}

	if err := s.PutSession(ctx, "a", sess); err != nil {
		t.Fatalf("healthy PutSession: %v", err)
	}

	s.Set(faulty.Fault{Mode: faulty.Fail, Ops: []faulty.Op{faulty.PutSession}, Times: 1})
	if _, err := s.GetSession(ctx, "a"); err != nil {
		t.Fatalf("GetSession is not picked, got %v", err)
	}
	if err := s.PutSession(ctx, "b", sess); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("failing PutSession: got %v, want ErrInjected", err)
	}
	if err := s.PutSession(ctx, "c", sess); err != nil {
		t.Fatalf("the fault was for one call; got %v", err)
	}
	if written, failed := s.SessionWrites(); len(written) != 2 || len(failed) != 1 || failed[0] != "b" {
		t.Fatalf("SessionWrites = %v, %v; want [a c], [b]", written, failed)
	}

	s.Set(faulty.Fault{Mode: faulty.Hang})
	hctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.GetSession(hctx, "a"); !errors.Is(err, faulty.ErrInjected) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging GetSession: got %v, want ErrInjected after the deadline", err)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("hang returned after %v, before the deadline", took)
	}

	s.Set(faulty.Fault{Mode: faulty.Slow, Delay: 30 * time.Millisecond})
	start = time.Now()
	if _, err := s.GetSession(ctx, "a"); err != nil || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("slow GetSession: got %v after %v", err, time.Since(start))
	}

	s.Set(faulty.Fault{Mode: faulty.Panic, Ops: []faulty.Op{faulty.DeleteSession}})
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("DeleteSession did not panic")
			}
		}()
		_ = s.DeleteSession(ctx, "a")
	}()

	s.Clear()
	if err := s.DeleteSession(ctx, "a"); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
	if s.Calls(faulty.DeleteSession) != 2 || s.Faults(faulty.DeleteSession) != 1 {
		t.Fatalf("DeleteSession calls %d, faults %d; want 2, 1", s.Calls(faulty.DeleteSession), s.Faults(faulty.DeleteSession))
	}
}
