package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/wxsession/wxsession/shared/seal"
)

func mustSealer(t *testing.T, key []byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	key := seal.Derive([]byte("secret"), "test")
	s := mustSealer(t, key)
	plain, ad := []byte("tiihtNczf5v6AKRyjwEUhQ=="), []byte("row-1")
	sealed := s.Seal(plain, ad)
	if bytes.Contains(sealed, plain) {
		t.Fatal("the sealed value contains the plaintext")
	}
	if again := s.Seal(plain, ad); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1

	tests := []struct {
		name   string
		sealer *seal.Sealer
		value  []byte
		ad     []byte
		ok     bool
	}{
		{"round trip", s, sealed, ad, true},
		{"other row", s, sealed, []byte("row-2"), false},
		{"other key", mustSealer(t, seal.Derive([]byte("secret"), "other purpose")), sealed, ad, false},
		{"tampered", s, tampered, ad, false},
		{"truncated", s, sealed[:10], ad, false},
		{"empty", s, nil, ad, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.Open(tt.value, tt.ad)
			if tt.ok {
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("got %q, %v; want the plaintext", got, err)
				}
				return
			}
			if !errors.Is(err, seal.ErrOpen) {
				t.Fatalf("got %v, want ErrOpen", err)
			}
		})
	}
}

func TestNewRefusesWrongKeySizes(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := seal.New(make([]byte, n)); err == nil {
			t.Fatalf("New accepted a %d-byte key", n)
		}
	}
}

func TestDeriveSeparatesPurposes(t *testing.T) {
	a, b := seal.Derive([]byte("code"), "id"), seal.Derive([]byte("code"), "seal")
	if len(a) != seal.KeySize || bytes.Equal(a, b) {
		t.Fatalf("Derive gave %d bytes, equal for two purposes: %v", len(a), bytes.Equal(a, b))
	}
}

// TestRing: the newest key seals; every key of the ring opens; a value sealed
// under a key no longer in the ring does not open.
func TestRing(t *testing.T) {
	oldKey, newKey := seal.Derive([]byte("old"), "test"), seal.Derive([]byte("new"), "test")
	ad := []byte("row-1")
	before, err := seal.NewRing(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealedOld := before.Seal([]byte("k1"), ad)

	during, err := seal.NewRing(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := during.Open(sealedOld, ad); err != nil || string(got) != "k1" {
		t.Fatalf("[new, old] opening a value sealed under old: got %q, %v", got, err)
	}
	sealedNew := during.Seal([]byte("k2"), ad)
	if _, err := mustSealer(t, newKey).Open(sealedNew, ad); err != nil {
		t.Fatalf("[new, old] must seal under new: %v", err)
	}
	if _, err := during.Open(sealedOld, []byte("row-2")); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("opening with other additional data: got %v, want ErrOpen", err)
	}

	after, err := seal.NewRing(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := after.Open(sealedNew, ad); err != nil || string(got) != "k2" {
		t.Fatalf("[new] opening a value sealed under new: got %q, %v", got, err)
	}
	if _, err := after.Open(sealedOld, ad); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("[new] opening a value sealed under the dropped key: got %v, want ErrOpen", err)
	}
	if _, err := seal.NewRing(); err == nil {
		t.Fatal("NewRing with no key: want an error")
	}
	if _, err := seal.NewRing(newKey, []byte("short")); err == nil {
		t.Fatal("NewRing with a short key: want an error")
	}
}
