package wxcrypto_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/wxcrypto"
)

const (
	appID = "wx0123456789abcdef"
	// Keys as WeChat issues them: base64 of 16 bytes.
	key      = "tiihtNczf5v6AKRyjwEUhQ=="
	otherKey = "AAECAwQFBgcICQoLDA0ODw=="
	rawData  = `{"nickName":"Band","gender":1}`
)

var now = time.Unix(1_780_000_000, 0)

// sealed encrypts a document under k with the given watermark.
func sealed(t testing.TB, k string, doc map[string]any) (ct, iv []byte) {
	t.Helper()
	plain, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := base64.StdEncoding.DecodeString(k)
	iv = wxcrypto.NewIV()
	ct, err = wxcrypto.Encrypt(kb, plain, iv)
	if err != nil {
		t.Fatal(err)
	}
	return ct, iv
}

func doc(appid string, ts int64) map[string]any {
	return map[string]any{"stepInfoList": []any{map[string]any{"step": 100}}, "watermark": map[string]any{"appid": appid, "timestamp": ts}}
}

func input(ct, iv []byte, raw, sig string) wxcrypto.Input {
	return wxcrypto.Input{
		EncryptedData: base64.StdEncoding.EncodeToString(ct),
		IV:            base64.StdEncoding.EncodeToString(iv),
		RawData:       raw,
		Signature:     sig,
	}
}

func TestOpen(t *testing.T) {
	good, goodIV := sealed(t, key, doc(appID, now.Unix()))
	otherApp, otherAppIV := sealed(t, key, doc("wxffffffffffffffff", now.Unix()))
	old, oldIV := sealed(t, key, doc(appID, now.Add(-2*time.Hour).Unix()))
	noMark, noMarkIV := sealed(t, key, map[string]any{"phoneNumber": "123"})
	kb, _ := base64.StdEncoding.DecodeString(key)
	notJSON, _ := wxcrypto.Encrypt(kb, []byte("not json at all"), goodIV)
	// Flip the last byte of the second-to-last block: padding of the last
	// block decrypts to garbage.
	badPad := bytes.Clone(good)
	badPad[len(badPad)-17] ^= 0x55

	tests := []struct {
		name    string
		key     string
		in      wxcrypto.Input
		maxAge  time.Duration
		wantErr bool
	}{
		{"round trip", key, input(good, goodIV, "", ""), 0, false},
		{"round trip with signature", key, input(good, goodIV, rawData, wxcrypto.Sign(rawData, key)), 0, false},
		{"upper-case signature", key, input(good, goodIV, rawData, strings.ToUpper(wxcrypto.Sign(rawData, key))), 0, false},
		{"wrong key", otherKey, input(good, goodIV, "", ""), 0, true},
		{"bad padding", key, input(badPad, goodIV, "", ""), 0, true},
		{"truncated", key, input(good[:len(good)-16], goodIV, "", ""), 0, true},
		{"wrong iv", key, input(good, make([]byte, 16), "", ""), 0, true},
		{"other appid", key, input(otherApp, otherAppIV, "", ""), 0, true},
		{"no watermark", key, input(noMark, noMarkIV, "", ""), 0, true},
		{"not JSON", key, input(notJSON, goodIV, "", ""), 0, true},
		{"signature under other key", key, input(good, goodIV, rawData, wxcrypto.Sign(rawData, otherKey)), 0, true},
		{"signature over other rawData", key, input(good, goodIV, rawData+" ", wxcrypto.Sign(rawData, key)), 0, true},
		{"watermark within max age", key, input(old, oldIV, "", ""), 3 * time.Hour, false},
		{"watermark past max age", key, input(old, oldIV, "", ""), time.Hour, true},
		{"malformed stored key", "not base64!", input(good, goodIV, "", ""), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := wxcrypto.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			data, err := wxcrypto.Open(tt.key, p, wxcrypto.Options{AppID: appID, MaxAge: tt.maxAge, Now: now})
			if tt.wantErr {
				if !errors.Is(err, wxcrypto.ErrStale) {
					t.Fatalf("got err %v, want ErrStale", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got err %v, want data", err)
			}
			var got struct {
				Watermark struct{ AppID string } `json:"watermark"`
			}
			if err := json.Unmarshal(data, &got); err != nil || got.Watermark.AppID != appID {
				t.Fatalf("got data %s, want the document with watermark %s", data, appID)
			}
		})
	}
}

func TestParse(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	block := b64(make([]byte, 32))
	iv := b64(make([]byte, 16))
	tests := []struct {
		name  string
		in    wxcrypto.Input
		field string // "" when the input is well-formed
	}{
		{"well-formed", wxcrypto.Input{EncryptedData: block, IV: iv}, ""},
		{"unpadded base64", wxcrypto.Input{EncryptedData: strings.TrimRight(block, "="), IV: strings.TrimRight(iv, "=")}, ""},
		{"missing encryptedData", wxcrypto.Input{IV: iv}, "encryptedData"},
		{"missing iv", wxcrypto.Input{EncryptedData: block}, "iv"},
		{"bad base64", wxcrypto.Input{EncryptedData: "%%%", IV: iv}, "encryptedData"},
		{"bad iv base64", wxcrypto.Input{EncryptedData: block, IV: "~~"}, "iv"},
		{"iv of 15 bytes", wxcrypto.Input{EncryptedData: block, IV: b64(make([]byte, 15))}, "iv"},
		{"iv of 17 bytes", wxcrypto.Input{EncryptedData: block, IV: b64(make([]byte, 17))}, "iv"},
		{"partial block", wxcrypto.Input{EncryptedData: b64(make([]byte, 31)), IV: iv}, "encryptedData"},
		{"empty ciphertext", wxcrypto.Input{EncryptedData: "====", IV: iv}, "encryptedData"},
		{"rawData without signature", wxcrypto.Input{EncryptedData: block, IV: iv, RawData: "{}"}, "signature"},
		{"signature without rawData", wxcrypto.Input{EncryptedData: block, IV: iv, Signature: strings.Repeat("a", 40)}, "signature"},
		{"short signature", wxcrypto.Input{EncryptedData: block, IV: iv, RawData: "{}", Signature: "abc"}, "signature"},
		{"non-hex signature", wxcrypto.Input{EncryptedData: block, IV: iv, RawData: "{}", Signature: strings.Repeat("z", 40)}, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wxcrypto.Parse(tt.in)
			var ie *wxcrypto.InputError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.field != "" && !errors.As(err, &ie):
				t.Fatalf("got %v, want an InputError on %s", err, tt.field)
			case tt.field != "" && ie.Field != tt.field:
				t.Fatalf("got an error on %s (%v), want one on %s", ie.Field, err, tt.field)
			}
		})
	}
}

func TestSignKnownVector(t *testing.T) {
	// sha1("abc" + "") is a published SHA-1 test vector.
	if got, want := wxcrypto.Sign("abc", ""), "a9993e364706816aba3e25717850c26c9cd0d89d"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// FuzzOpen feeds arbitrary decrypt input through Parse and Open: nothing may
// panic, and anything that opens must be a JSON object with our watermark.
func FuzzOpen(f *testing.F) {
	good, iv := sealed(f, key, doc(appID, now.Unix()))
	b64 := base64.StdEncoding.EncodeToString
	f.Add(b64(good), b64(iv), "", "")
	f.Add(b64(good), b64(iv), rawData, wxcrypto.Sign(rawData, key))
	f.Add(b64(good[:16]), b64(iv), "", "")
	f.Add("", "", "", "")
	f.Add("AAAA", "AAAAAAAAAAAAAAAAAAAAAA==", "{}", "00")
	f.Fuzz(func(t *testing.T, enc, iv, raw, sig string) {
		p, err := wxcrypto.Parse(wxcrypto.Input{EncryptedData: enc, IV: iv, RawData: raw, Signature: sig})
		if err != nil {
			var ie *wxcrypto.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Parse error %v is not an InputError", err)
			}
			return
		}
		data, err := wxcrypto.Open(key, p, wxcrypto.Options{AppID: appID, Now: now})
		if err != nil {
			if !errors.Is(err, wxcrypto.ErrStale) {
				t.Fatalf("Open error %v is not ErrStale", err)
			}
			return
		}
		var d struct {
			Watermark struct{ AppID string } `json:"watermark"`
		}
		if json.Unmarshal(data, &d) != nil || d.Watermark.AppID != appID {
			t.Fatalf("Open accepted %q", data)
		}
	})
}
