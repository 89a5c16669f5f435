package api

import (
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
