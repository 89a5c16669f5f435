package memory_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(_ *testing.T, now func() time.Time) session.Store { return memory.New(now) },
		// The maps as fmt prints them: strings as they are, byte slices as
		// numbers (which hides no plain-text string).
		Dump: func(_ *testing.T, s session.Store) string { return fmt.Sprintf("%+v", s) },
	})
}
