package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// skeyBytes is the skey's entropy: 256 bits.
const skeyBytes = 32

// Skey lengths accepted from clients: 43 characters is 32 bytes unpadded;
// longer keys leave room to grow.
const (
	minSkeyLen = 43
	maxSkeyLen = 128
)

// NewSkey returns a fresh skey: 256 bits from crypto/rand as unpadded
// base64url. It is never derived from anything WeChat sent.
func NewSkey() string {
	b := make([]byte, skeyBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// SkeyHash returns what a session is stored under: the hex SHA-256 of its
// skey. A fast hash suffices because the skey has 256 bits of entropy; the
// store never sees the skey itself.
func SkeyHash(skey string) string {
	sum := sha256.Sum256([]byte(skey))
	return hex.EncodeToString(sum[:])
}

// wellFormedSkey reports whether s could be an skey this service issued, so a
// garbage header costs no store read.
func wellFormedSkey(s string) bool {
	if len(s) < minSkeyLen || len(s) > maxSkeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
