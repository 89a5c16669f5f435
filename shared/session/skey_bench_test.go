package session_test

import (
	"testing"

	"github.com/wxsession/wxsession/shared/session"
)

// BenchmarkNewSkey is the skey a login issues: 256 bits from crypto/rand.
func BenchmarkNewSkey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = session.NewSkey()
	}
}

// BenchmarkID is the store key every request derives from its skey.
func BenchmarkID(b *testing.B) {
	skey := session.NewSkey()
	b.ReportAllocs()
	for b.Loop() {
		_ = session.SkeyHash(skey)
	}
}
