package envelope

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/shared/api"
)

func TestServeRecordsLikeNetHTTP(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		method     string
		wantStatus int
		wantType   string
		wantBody   string
		wantHeader map[string]string
	}{
		{
			name:       "implicit 200 with sniffed type",
			handler:    func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html></html>") },
			wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: "<html></html>",
		},
		{
			name:       "no body, no write",
			handler:    func(w http.ResponseWriter, r *http.Request) {},
			wantStatus: 200,
		},
		{
			name: "headers set after WriteHeader are not sent",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("A", "1")
				w.WriteHeader(201)
				w.Header().Set("B", "2")
			},
			wantStatus: 201, wantHeader: map[string]string{"A": "1", "B": ""},
		},
		{
			name: "second WriteHeader ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(418)
				w.WriteHeader(500)
			},
			wantStatus: 418,
		},
		{
			name: "204 drops a body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(204)
				_, _ = io.WriteString(w, "x")
			},
			wantStatus: 204,
		},
		{
			name:       "HEAD drops a body",
			method:     http.MethodHead,
			handler:    func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "x") },
			wantStatus: 200, wantType: "text/plain; charset=utf-8",
		},
		{
			name: "1xx is not final",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(103)
				w.WriteHeader(202)
			},
			wantStatus: 202,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := Request{Method: method, Path: "/"}.HTTPRequest(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			resp := Serve(tt.handler, req)
			if resp.Status != tt.wantStatus || string(resp.Body) != tt.wantBody || resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("got %d %q type %q, want %d %q type %q", resp.Status, resp.Body, resp.Header.Get("Content-Type"), tt.wantStatus, tt.wantBody, tt.wantType)
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("got header %s=%q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHTTPRequest(t *testing.T) {
	h := http.Header{}
	h.Set("Host", "h.example")
	r, err := Request{Method: "GET", Path: "//evil/x", RawQuery: "a=1", Header: h, SourceIP: "2001:db8::1", RequestID: "gw"}.HTTPRequest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.URL.Path != "//evil/x" || r.URL.Host != "" || r.Host != "h.example" || r.RequestURI != "//evil/x?a=1" {
		t.Errorf("got path %q urlhost %q host %q uri %q", r.URL.Path, r.URL.Host, r.Host, r.RequestURI)
	}
	if r.RemoteAddr != "[2001:db8::1]:0" || r.Header.Get("X-Request-Id") != "gw" || r.Header.Get("Host") != "" {
		t.Errorf("got remote %q id %q Host header %q", r.RemoteAddr, r.Header.Get("X-Request-Id"), r.Header.Get("Host"))
	}
	if r.ContentLength != 0 || r.Body != http.NoBody {
		t.Errorf("an empty body is not http.NoBody")
	}
	r, err = Request{Method: "POST", Path: "/p", Body: "abc", Host: "fallback"}.HTTPRequest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentLength != 3 || r.Host != "fallback" || r.RemoteAddr != "" {
		t.Errorf("got length %d host %q remote %q", r.ContentLength, r.Host, r.RemoteAddr)
	}
	r, err = Request{Method: "POST", Path: "/p", Body: "YWJjZA==", IsBase64: true}.HTTPRequest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != "abcd" || r.ContentLength != 4 {
		t.Errorf("got body %q length %d, want the decoded abcd", b, r.ContentLength)
	}
	if _, err := (Request{Method: "POST", Path: "/p", Body: "***", IsBase64: true}).HTTPRequest(context.Background()); err == nil {
		t.Error("a body marked base64 that is not was accepted")
	}
}

// TestBadEvent checks that an event no HTTP request could have produced is
// answered by the product's handler, in the contract's shape, under the
// invocation's id.
func TestBadEvent(t *testing.T) {
	h := api.All(struct{ api.Service }{}, api.WithLogger(slog.New(slog.DiscardHandler)))
	resp := ServeEvent(context.Background(), h, Request{Method: "GET", Path: "relative", RequestID: "gw-1"}, "inv-1")
	if resp.Status != http.StatusBadRequest || resp.Header.Get("X-Request-Id") != "inv-1" ||
		!strings.Contains(string(resp.Body), `"error":"invalid_request"`) || !strings.Contains(string(resp.Body), "not absolute") {
		t.Errorf("got %d %v %s, want 400 invalid_request naming the path, under inv-1", resp.Status, resp.Header, resp.Body)
	}
}

func TestEncodedBody(t *testing.T) {
	tests := []struct {
		ctype string
		body  []byte
		b64   bool
	}{
		{"application/json; charset=utf-8", []byte(`{"a":"你"}`), false},
		{"", []byte("plain"), false},
		{"application/problem+json", []byte(`{}`), false},
		{"application/octet-stream", []byte("ascii but binary type"), true},
		{"text/plain", []byte{0xff, 0xfe}, true},
		{"not a media type;;", []byte("x"), true},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.ctype != "" {
			h.Set("Content-Type", tt.ctype)
		}
		if _, b64 := (Response{Header: h, Body: tt.body}).EncodedBody(); b64 != tt.b64 {
			t.Errorf("%q %q: got base64=%v, want %v", tt.ctype, tt.body, b64, tt.b64)
		}
	}
}
