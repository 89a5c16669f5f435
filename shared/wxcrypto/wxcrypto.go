// Package wxcrypto implements WeChat's open-data cryptography: decrypting the
// encryptedData a mini-program receives (AES-128-CBC under the user's
// session_key, PKCS#7 padding, a watermark naming the app) and checking the
// signature over rawData (sha1(rawData + session_key)).
//
// Every failure on well-formed input is the same ErrStale, whatever failed:
// padding, JSON, watermark or signature. Telling them apart would hand an
// attacker a padding oracle, and for the client they mean the same thing: the
// data was produced under another session_key, so log in and fetch it again.
package wxcrypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // WeChat's signature scheme is defined as SHA-1.
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sizes fixed by WeChat's scheme.
const (
	KeySize = 16 // session_key: AES-128
	IVSize  = aes.BlockSize
)

// ErrStale is the one error for data that does not decrypt or verify with the
// session_key at hand.
var ErrStale = errors.New("wxcrypto: data does not match the session_key")

// InputError describes input that is malformed before any cryptography runs.
type InputError struct {
	Field  string
	Reason string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Reason }

// Input is what the mini-program sends to be decrypted, as received.
type Input struct {
	EncryptedData string
	IV            string
	RawData       string // optional, with Signature
	Signature     string // optional, with RawData
}

// Parsed is Input with its binary fields decoded and checked for shape.
type Parsed struct {
	Ciphertext []byte
	IV         []byte
	RawData    string
	Signature  []byte // nil when no signature was sent
}

// Parse decodes and checks the shape of an Input: base64 fields, a 16-byte IV,
// a ciphertext that is a non-empty whole number of blocks, rawData and
// signature given together, the signature as 40 hex digits.
func Parse(in Input) (Parsed, error) {
	var p Parsed
	var err error
	if in.EncryptedData == "" {
		return p, &InputError{"encryptedData", "is required"}
	}
	if in.IV == "" {
		return p, &InputError{"iv", "is required"}
	}
	if p.Ciphertext, err = decodeBase64(in.EncryptedData); err != nil {
		return p, &InputError{"encryptedData", "is not valid base64"}
	}
	if len(p.Ciphertext) == 0 || len(p.Ciphertext)%aes.BlockSize != 0 {
		return p, &InputError{"encryptedData", fmt.Sprintf("must decode to a whole number of %d-byte blocks", aes.BlockSize)}
	}
	if p.IV, err = decodeBase64(in.IV); err != nil {
		return p, &InputError{"iv", "is not valid base64"}
	}
	if len(p.IV) != IVSize {
		return p, &InputError{"iv", fmt.Sprintf("must decode to %d bytes", IVSize)}
	}
	if (in.RawData == "") != (in.Signature == "") {
		return p, &InputError{"signature", "rawData and signature must be sent together"}
	}
	if in.Signature != "" {
		if len(in.Signature) != 2*sha1.Size {
			return p, &InputError{"signature", "must be 40 hex digits"}
		}
		if p.Signature, err = hex.DecodeString(in.Signature); err != nil {
			return p, &InputError{"signature", "must be 40 hex digits"}
		}
		p.RawData = in.RawData
	}
	return p, nil
}

// decodeBase64 accepts standard base64, padded or not, as WeChat sends it.
func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Options are the checks Open makes on the decrypted data.
type Options struct {
	AppID string // watermark.appid must equal it
	// MaxAge, when positive, refuses a watermark.timestamp older than Now-MaxAge.
	MaxAge time.Duration
	Now    time.Time
}

// Open verifies the signature (when sent), decrypts the data with the
// base64 session_key and checks its watermark. It returns the decrypted JSON
// object, watermark included, or ErrStale.
func Open(sessionKey string, p Parsed, opt Options) (json.RawMessage, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != KeySize {
		return nil, ErrStale
	}
	if p.Signature != nil && !signatureMatches(p.RawData, sessionKey, p.Signature) {
		return nil, ErrStale
	}
	plain, err := Decrypt(key, p.Ciphertext, p.IV)
	if err != nil {
		return nil, ErrStale
	}
	var doc struct {
		Watermark *struct {
			AppID     string `json:"appid"`
			Timestamp int64  `json:"timestamp"`
		} `json:"watermark"`
	}
	if json.Unmarshal(plain, &doc) != nil || doc.Watermark == nil {
		return nil, ErrStale
	}
	if subtle.ConstantTimeCompare([]byte(doc.Watermark.AppID), []byte(opt.AppID)) != 1 {
		return nil, ErrStale
	}
	if opt.MaxAge > 0 && opt.Now.Sub(time.Unix(doc.Watermark.Timestamp, 0)) > opt.MaxAge {
		return nil, ErrStale
	}
	return json.RawMessage(plain), nil
}

// Decrypt decrypts AES-128-CBC ciphertext and strips strict PKCS#7 padding.
func Decrypt(key, ciphertext, iv []byte) ([]byte, error) {
	if len(key) != KeySize || len(iv) != IVSize || len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, ErrStale
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrStale
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	return unpad(plain)
}

// unpad removes PKCS#7 padding, checking every padding byte in constant time.
func unpad(b []byte) ([]byte, error) {
	pad := b[len(b)-1]
	n := int(pad)
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, aes.BlockSize)
	checked := subtle.ConstantTimeSelect(good, n, aes.BlockSize) // keeps the arithmetic in range
	tail := b[len(b)-aes.BlockSize:]
	for i := range aes.BlockSize {
		// Byte i of the last block is padding when i >= BlockSize-n.
		isPad := subtle.ConstantTimeLessOrEq(aes.BlockSize-checked, i)
		good &= subtle.ConstantTimeSelect(isPad, subtle.ConstantTimeByteEq(tail[i], pad), 1)
	}
	if good != 1 {
		return nil, ErrStale
	}
	return b[:len(b)-n], nil
}

// Encrypt encrypts plaintext as WeChat does, with PKCS#7 padding. The emulator
// and tests use it; the product only decrypts.
func Encrypt(key, plaintext, iv []byte) ([]byte, error) {
	if len(key) != KeySize || len(iv) != IVSize {
		return nil, errors.New("wxcrypto: key and iv must be 16 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("wxcrypto: %w", err)
	}
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(n)}, n)...)
	out := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, padded)
	return out, nil
}

// NewIV returns a random IV.
func NewIV() []byte {
	iv := make([]byte, IVSize)
	_, _ = rand.Read(iv)
	return iv
}

// Sign returns WeChat's signature of rawData: hex(sha1(rawData + sessionKey)),
// with sessionKey as the base64 string WeChat issued.
func Sign(rawData, sessionKey string) string {
	sum := sha1.Sum([]byte(rawData + sessionKey)) //nolint:gosec // WeChat's scheme.
	return hex.EncodeToString(sum[:])
}

func signatureMatches(rawData, sessionKey string, sig []byte) bool {
	sum := sha1.Sum([]byte(rawData + sessionKey)) //nolint:gosec // WeChat's scheme.
	return subtle.ConstantTimeCompare(sum[:], sig) == 1
}
