// Package envelope is what the runtime adapters (awslambda, scf) share: it
// turns the request a gateway event describes into an *http.Request, serves it
// through the product's http.Handler into a buffer, and gives the buffered
// answer back in the shapes gateways want (single- or multi-value headers,
// body as text or base64).
//
// The adapters translate envelopes only; everything the client sees comes from
// the handler, so every runtime answers with the same statuses, headers and
// bodies. That holds for an event no HTTP request could have produced too: it
// is served as a stand-in request (BadEvent) the handler answers 400
// invalid_request, through its one error writer, log line and panic recovery.
package envelope

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/apperr"
)

// Request is the HTTP request a gateway event carries, already unwrapped from
// the event's own field names.
type Request struct {
	Method string
	// Path is the request path, percent-encoded or not (see Escaped).
	Path string
	// Escaped says Path is percent-encoded, as HTTP API's rawPath is; REST
	// API's and SCF's path fields are decoded.
	Escaped bool
	// RawQuery is the query string without the '?', already encoded.
	RawQuery string
	Header   http.Header
	// Body is the event's body, base64 when IsBase64 is set.
	Body     string
	IsBase64 bool
	// Host is used when the headers name none.
	Host string
	// SourceIP is the client's address as the gateway saw it.
	SourceIP string
	// RequestID is the gateway's id for the request. It becomes the
	// X-Request-Id header unless the client sent one, so a request's log line
	// can be found from the gateway's access log.
	RequestID string
}

// HTTPRequest returns r as an *http.Request bound to ctx (the invocation's
// context, carrying its deadline). It fails on an event no HTTP request could
// have produced: no method, a method that is not a token, a path that is not
// absolute or badly escaped, a body marked base64 that is not.
func (r Request) HTTPRequest(ctx context.Context) (*http.Request, error) {
	if r.Method == "" {
		return nil, fmt.Errorf("the event has no HTTP method")
	}
	if strings.IndexFunc(r.Method, notTokenRune) >= 0 {
		return nil, fmt.Errorf("the event's HTTP method %q is not a method", truncate(r.Method, 16))
	}
	u, err := requestURL(r.Path, r.Escaped)
	if err != nil {
		return nil, err
	}
	u.RawQuery = r.RawQuery
	body := []byte(r.Body)
	if r.IsBase64 {
		if body, err = base64.StdEncoding.DecodeString(r.Body); err != nil {
			return nil, fmt.Errorf("the event's body is marked base64 but is not valid base64")
		}
	}
	// The URL is set after NewRequest, which would otherwise re-parse it (and
	// read a path starting with "//" as a host).
	var req *http.Request
	if len(body) > 0 {
		req, err = http.NewRequestWithContext(ctx, r.Method, "/", bytes.NewReader(body))
	} else {
		req, err = http.NewRequestWithContext(ctx, r.Method, "/", http.NoBody)
	}
	if err != nil {
		return nil, fmt.Errorf("the event does not describe an HTTP request: %w", err)
	}
	req.URL = u
	req.RequestURI = req.URL.RequestURI()
	if r.Header != nil {
		req.Header = r.Header
	}
	// The body is what the event carries; a stale Content-Length from the
	// client (or an edited sample event) must not contradict it.
	if req.Header.Get("Content-Length") != "" {
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	req.Host = req.Header.Get("Host")
	if req.Host == "" {
		req.Host = r.Host
	}
	req.Header.Del("Host") // net/http keeps the host in req.Host only
	if ip := net.ParseIP(r.SourceIP); ip != nil {
		req.RemoteAddr = net.JoinHostPort(ip.String(), "0")
	}
	if req.Header.Get("X-Request-Id") == "" && r.RequestID != "" {
		req.Header.Set("X-Request-Id", r.RequestID)
	}
	return req, nil
}

// BadEvent returns the stand-in request for an event no HTTP request could
// have produced: the product's handler answers it 400 invalid_request with
// message (which must not echo the event), under the invocation's id.
func BadEvent(ctx context.Context, invocationID, message string) *http.Request {
	ctx = api.WithEventError(ctx, apperr.Errorf(apperr.InvalidRequest, "%s", message))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/", http.NoBody) // a constant, valid request
	if invocationID != "" {
		req.Header.Set("X-Request-Id", invocationID)
	}
	return req
}

// ServeEvent serves the request r describes through h, or, when r describes
// none, the BadEvent stand-in naming the problem.
func ServeEvent(ctx context.Context, h http.Handler, r Request, invocationID string) Response {
	req, err := r.HTTPRequest(ctx)
	if err != nil {
		req = BadEvent(ctx, invocationID, err.Error())
	}
	return Serve(h, req)
}

// requestURL checks and splits a request path.
func requestURL(p string, escaped bool) (*url.URL, error) {
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("the event's path %q is not absolute", truncate(p, 64))
	}
	if !escaped {
		return &url.URL{Path: p}, nil
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return nil, fmt.Errorf("the event's path is not validly escaped: %w", err)
	}
	u := &url.URL{Path: dec}
	if u.EscapedPath() != p {
		u.RawPath = p
	}
	return u, nil
}

// Response is what the handler answered, buffered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Serve serves req through h and returns the answer. Panics are the
// handler's to recover (the product's router does, answering 500 internal).
func Serve(h http.Handler, req *http.Request) Response {
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	resp := rec.result()
	if req.Method == http.MethodHead {
		resp.Body = nil
	}
	return resp
}

// SingleValueHeaders returns the headers as one value per name, joining
// repeated values with ", " as RFC 9110 allows for every header but
// Set-Cookie, which is left out when skipCookies is set (HTTP API carries
// cookies in a field of their own).
func (r Response) SingleValueHeaders(skipCookies bool) map[string]string {
	out := make(map[string]string, len(r.Header))
	for name, vs := range r.Header {
		if len(vs) == 0 || (skipCookies && name == "Set-Cookie") {
			continue
		}
		out[name] = strings.Join(vs, ", ")
	}
	return out
}

// EncodedBody returns the body as gateway proxy responses carry it: as is
// when it is UTF-8 text, base64 (and isBase64 true) otherwise, so binary
// bodies survive the JSON envelope byte for byte.
func (r Response) EncodedBody() (body string, isBase64 bool) {
	if len(r.Body) == 0 {
		return "", false
	}
	if utf8.Valid(r.Body) && textual(r.Header.Get("Content-Type")) {
		return string(r.Body), false
	}
	return base64.StdEncoding.EncodeToString(r.Body), true
}

// textual reports whether a Content-Type names text.
func textual(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		mt == "application/json", mt == "application/xml",
		mt == "application/javascript", mt == "application/x-www-form-urlencoded":
		return true
	}
	return false
}

// recorder is the http.ResponseWriter handlers write into. Like net/http's
// server, it fixes the headers at WriteHeader and sniffs a Content-Type when
// the handler set none, so a handler behaves the same here as in plain-HTTP
// mode.
type recorder struct {
	header http.Header
	sent   http.Header // headers as of WriteHeader
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	if status < 100 || status > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", status))
	}
	if status < 200 { // informational answers are not final; gateways cannot relay them
		return
	}
	w.status = status
	w.sent = w.header.Clone()
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		if w.header.Get("Content-Type") == "" && w.header.Get("Transfer-Encoding") == "" && len(b) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(b))
		}
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	return w.body.Write(b)
}

// Flush does nothing: gateways take the whole answer at once.
func (w *recorder) Flush() {}

func (w *recorder) result() Response {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return Response{Status: w.status, Header: w.sent, Body: w.body.Bytes()}
}

// bodyAllowed reports whether a status may carry a body (RFC 9110).
func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && status >= 200
}

func notTokenRune(r rune) bool {
	return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
