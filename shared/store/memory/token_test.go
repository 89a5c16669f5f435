package memory_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/store/storetest"
	"github.com/wxsession/wxsession/shared/token"
)

func TestTokenConformance(t *testing.T) {
	storetest.RunToken(t, storetest.TokenHarness{
		// One process, one store: both "clients" are the same value.
		New: func(_ *testing.T, now func() time.Time) (token.Store, token.Store) {
			s := memory.New(now)
			return s, s
		},
		Dump: func(_ *testing.T, s token.Store) string { return fmt.Sprintf("%+v", s) },
	})
}
