package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/shared/apperr"
)

// FuzzDecodeBody feeds arbitrary bodies and content types to the request
// decoder: it must never panic, and every refusal must be a 4xx contract code.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"code":"abc"}`},
		{"application/json; charset=utf-8", `{"encryptedData":"AAAA","iv":"BBBB","rawData":"{}","signature":"00"}`},
		{"", `{"code":"a","code":"b"}`},
		{"text/plain", `{"code":"a"}`},
		{"application/json", `{"a":[[[[{"b":{}}]]]]}`},
		{"application/json", `{"code":"\u0000"}`},
		{"application/json", `{"code":1e999}`},
		{"application/json", `{} {}`},
		{"application/json", "\xff\xfe"},
		{"application/json", `{"code":"a","CODE":"b"}`},
		{"application/json", `{"signature":"a","\u017fignature":"b"}`},
	} {
		f.Add(seed.ct, seed.body)
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		var dst decryptRequest
		err := decodeBody(httptest.NewRecorder(), req, &dst)
		if err == nil {
			// encoding/json fills a field from any key that matches it
			// case-insensitively; two such keys are a body that means two
			// things, and must have been refused.
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(body), &m) == nil && len(m) <= 64 {
				for k1 := range m {
					for k2 := range m {
						if k1 != k2 && bytes.EqualFold([]byte(k1), []byte(k2)) {
							t.Fatalf("decodeBody accepted %q with the keys %q and %q, which fill one field", body, k1, k2)
						}
					}
				}
			}
			return
		}
		switch code := apperr.CodeOf(err); code {
		case apperr.InvalidRequest, apperr.PayloadTooLarge:
		default:
			t.Fatalf("decodeBody(%q, %q) = %v, want invalid_request or payload_too_large", ct, body, err)
		}
	})
}

// FuzzSkeyFrom checks that header parsing never panics and only ever returns
// a value the client sent.
func FuzzSkeyFrom(f *testing.F) {
	for _, seed := range [][2]string{
		{"Bearer abc", ""},
		{"bearer  abc ", ""},
		{"Basic abc", "xyz"},
		{"Bearer", ""},
		{"", "  skey  "},
		{"Bearer \x00", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, auth, xskey string) {
		req := httptest.NewRequest(http.MethodGet, "/validate", nil)
		req.Header["Authorization"] = []string{auth}
		req.Header["X-Wx-Skey"] = []string{xskey}
		got := skeyFrom(req)
		if got != "" && !strings.Contains(auth, got) && !strings.Contains(xskey, got) {
			t.Fatalf("skeyFrom(%q, %q) = %q, which the client did not send", auth, xskey, got)
		}
	})
}

func TestFoldKeyMatchesEncodingJSON(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"code", "CODE", true},
		{"signature", "\u017figNATURE", true}, // ſ folds to s
		{"k", "\u212a", true},                 // the Kelvin sign folds to k
		{"iv", "IV", true},
		{"code", "codes", false},
		{"a\u00e9", "A\u00c9", true},
		{"\u00df", "ss", false}, // simple folding only, as encoding/json
	} {
		if got := foldKey(tt.a) == foldKey(tt.b); got != tt.same || got != bytes.EqualFold([]byte(tt.a), []byte(tt.b)) {
			t.Errorf("foldKey(%q) == foldKey(%q) is %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}
