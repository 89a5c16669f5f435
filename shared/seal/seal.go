// Package seal encrypts small secrets at rest with AES-256-GCM.
//
// wxsession seals two things: a user's session_key under SESSION_SEAL_KEY, and,
// for the five minutes a login code lives, the skey that code produced under a
// key derived from the code itself. The additional data binds a sealed value to
// the row it belongs to, so a value copied into another row does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the size of a sealing key: AES-256.
const KeySize = 32

// ErrOpen is returned when a sealed value does not open: wrong key, wrong
// additional data or a damaged value.
var ErrOpen = errors.New("seal: value does not open with this key")

// Sealer seals and opens values with one key. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Derive returns a 32-byte key for one purpose from secret material, so one
// secret (a login code, say) can key several unrelated things.
func Derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Seal encrypts plaintext bound to additionalData; the result holds a random
// nonce followed by the ciphertext and tag.
func (s *Sealer) Seal(plaintext, additionalData []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return s.aead.Seal(nonce, nonce, plaintext, additionalData)
}

// Open decrypts a value made by Seal with the same key and additional data.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], additionalData)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// Ring seals with its newest key and opens with any of its keys, so the key
// can be rotated: add the new key first, and drop the old one once nothing
// sealed under it can still be read (SESSION_MAX_AGE later). A value sealed
// under an old key is sealed again under the newest when it is next written.
// It is safe for concurrent use.
type Ring struct {
	sealers []*Sealer
}

// NewRing returns a Ring over keys, newest (the one that seals) first.
func NewRing(keys ...[]byte) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: a key ring needs a key")
	}
	r := &Ring{sealers: make([]*Sealer, len(keys))}
	for i, k := range keys {
		s, err := New(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		r.sealers[i] = s
	}
	return r, nil
}

// Seal seals with the newest key.
func (r *Ring) Seal(plaintext, additionalData []byte) []byte {
	return r.sealers[0].Seal(plaintext, additionalData)
}

// Open opens a value sealed under any of the ring's keys.
func (r *Ring) Open(sealed, additionalData []byte) ([]byte, error) {
	for _, s := range r.sealers {
		if plain, err := s.Open(sealed, additionalData); err == nil {
			return plain, nil
		}
	}
	return nil, ErrOpen
}
