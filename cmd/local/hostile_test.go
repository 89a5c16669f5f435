package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/wxsession/wxsession/internal/openapitest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/tencentyun/scf-go-lib/functioncontext"

	"github.com/wxsession/wxsession/internal/syncbuf"
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/platform"
	"github.com/wxsession/wxsession/shared/platform/awslambda"
	"github.com/wxsession/wxsession/shared/platform/scf"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

// hostileRequest is one request a client should not send.
type hostileRequest struct {
	name   string
	method string
	// target is the request target as sent on the wire: path, optionally
	// percent-encoded, and optionally ?query.
	target string
	header http.Header
	body   string
	// The contract's answer, the same on every runtime.
	wantStatus int
	wantCode   string
}

// unknownSkey is well formed but names no session.
var unknownSkey = session.NewSkey()

// liveSkey in a header value stands for an skey of a live session on the
// runtime the request is sent to.
const liveSkey = "{{live-skey}}"

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var jsonCT = hdr("Content-Type", "application/json")

func withSkey(h http.Header) http.Header {
	if h = h.Clone(); h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", "Bearer "+unknownSkey)
	return h
}

// hostileRequests is the table of malformed requests and what each must get.
// Decisions that are not obvious:
//   - a path is matched exactly, case and all: /login/, //login,
//     /login/../login, /LOGIN and /%2Flogin are all 404 not_found, never a
//     redirect (a client following one would turn the POST into a GET);
//   - the query string is ignored: POST /login?x answers as POST /login;
//   - HEAD and OPTIONS are methods like any other: 405 with Allow (HEAD gets
//     the headers only);
//   - the Authorization scheme is case-insensitive and the token may be
//     padded with spaces (RFC 9110), so "bearer  <skey>" is read as an skey;
//     a tab is not the scheme's separator, so "Bearer<TAB><skey>" carries no
//     skey (session_required); a header sent twice is read as its values
//     joined with ", " (as HTTP API events deliver it), which is no skey this
//     service issued (session_expired), on every runtime alike;
//   - decrypt and logout check for an skey before reading the body, so an
//     anonymous request with a bad body is session_required; GET /validate
//     ignores a body.
func hostileRequests() []hostileRequest {
	big := strings.Repeat("A", 70<<10)
	deepArrays := `{"code":"abc","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	deepObjects := strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000)
	goodCT := jsonCT
	iv := "AAAAAAAAAAAAAAAAAAAAAA=="
	return []hostileRequest{
		// Wrong JSON types.
		{"code is a number", "POST", "/login", goodCT, `{"code":123}`, 400, "invalid_request"},
		{"code is null", "POST", "/login", goodCT, `{"code":null}`, 400, "invalid_request"},
		{"code is an array", "POST", "/login", goodCT, `{"code":["abc"]}`, 400, "invalid_request"},
		{"code is an object", "POST", "/login", goodCT, `{"code":{"v":"abc"}}`, 400, "invalid_request"},
		{"code is a boolean", "POST", "/login", goodCT, `{"code":true}`, 400, "invalid_request"},
		{"body is an array", "POST", "/login", goodCT, `["code","abc"]`, 400, "invalid_request"},
		{"body is a string", "POST", "/login", goodCT, `"abc"`, 400, "invalid_request"},
		{"body is null", "POST", "/login", goodCT, `null`, 400, "invalid_request"},
		{"iv is a number", "POST", "/decrypt", withSkey(goodCT), `{"encryptedData":"` + iv + `","iv":16}`, 400, "invalid_request"},
		{"signature is an array", "POST", "/decrypt", withSkey(goodCT), `{"encryptedData":"` + iv + `","iv":"` + iv + `","rawData":"{}","signature":["00"]}`, 400, "invalid_request"},
		// Duplicate keys.
		{"duplicate code", "POST", "/login", goodCT, `{"code":"abc","code":"def"}`, 400, "invalid_request"},
		{"duplicate code, other case", "POST", "/login", goodCT, `{"code":"abc","CODE":"def"}`, 400, "invalid_request"},
		{"duplicate signature, long s", "POST", "/decrypt", withSkey(goodCT), `{"encryptedData":"` + iv + `","iv":"` + iv + `","rawData":"{}","signature":"` + strings.Repeat("0", 40) + `","ſignature":"x"}`, 400, "invalid_request"},
		{"duplicate iv", "POST", "/decrypt", withSkey(goodCT), `{"encryptedData":"` + iv + `","iv":"` + iv + `","iv":"AAAA"}`, 400, "invalid_request"},
		// Nesting.
		{"deep arrays", "POST", "/login", goodCT, deepArrays, 400, "invalid_request"},
		{"5000 nested objects", "POST", "/login", goodCT, deepObjects, 400, "invalid_request"},
		// NUL bytes.
		{"escaped NUL in code", "POST", "/login", goodCT, `{"code":"abc\u0000def"}`, 400, "invalid_request"},
		{"raw NUL in a string", "POST", "/login", goodCT, "{\"code\":\"abc\x00\"}", 400, "invalid_request"},
		{"NUL before the body", "POST", "/login", goodCT, "\x00{\"code\":\"abc\"}", 400, "invalid_request"},
		// Oversized.
		{"code of 1000 characters", "POST", "/login", goodCT, `{"code":"` + strings.Repeat("c", 1000) + `"}`, 400, "invalid_request"},
		{"body over 64 KiB", "POST", "/login", goodCT, `{"code":"` + big + `"}`, 413, "payload_too_large"},
		{"decrypt body over 64 KiB", "POST", "/decrypt", withSkey(goodCT), `{"encryptedData":"` + big + `","iv":"` + iv + `"}`, 413, "payload_too_large"},
		{"encryptedData of 60 KiB, bad iv", "POST", "/decrypt", withSkey(goodCT), `{"encryptedData":"` + big[:60<<10] + `","iv":"AAAA"}`, 400, "invalid_request"},
		// Invalid UTF-8.
		{"invalid UTF-8 in code", "POST", "/login", goodCT, "{\"code\":\"\xff\xfe\"}", 400, "invalid_request"},
		{"invalid UTF-8 in a key", "POST", "/login", goodCT, "{\"\xffcode\":\"abc\"}", 400, "invalid_request"},
		{"UTF-16 body", "POST", "/login", goodCT, "\xff\xfe{\x00\"\x00c\x00\"\x00}\x00", 400, "invalid_request"},
		// Content types.
		{"text/plain", "POST", "/login", hdr("Content-Type", "text/plain"), `{"code":"abc"}`, 400, "invalid_request"},
		{"form encoded", "POST", "/login", hdr("Content-Type", "application/x-www-form-urlencoded"), `code=abc`, 400, "invalid_request"},
		{"multipart", "POST", "/login", hdr("Content-Type", "multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\nabc\r\n--x--\r\n", 400, "invalid_request"},
		{"malformed content type", "POST", "/login", hdr("Content-Type", "application/json;;;="), `{"code":"abc"}`, 400, "invalid_request"},
		{"application/jsonp", "POST", "/login", hdr("Content-Type", "application/jsonp"), `{"code":"abc"}`, 400, "invalid_request"},
		// Authorization forms.
		{"lowercase bearer", "GET", "/validate", hdr("Authorization", "bearer "+unknownSkey), "", 401, "session_expired"},
		{"double space", "GET", "/validate", hdr("Authorization", "Bearer  "+unknownSkey), "", 401, "session_expired"},
		{"tab after Bearer", "GET", "/validate", hdr("Authorization", "Bearer\t"+unknownSkey), "", 401, "session_required"},
		{"Bearer with no token", "GET", "/validate", hdr("Authorization", "Bearer"), "", 401, "session_required"},
		{"Basic credentials", "GET", "/validate", hdr("Authorization", "Basic dXNlcjpwYXNz"), "", 401, "session_required"},
		{"two Authorization headers, the first live", "GET", "/validate", hdr("Authorization", "Bearer "+liveSkey, "Authorization", "Bearer "+unknownSkey), "", 401, "session_expired"},
		{"two X-WX-Skey headers, both live", "GET", "/validate", hdr("X-WX-Skey", liveSkey, "X-WX-Skey", liveSkey), "", 401, "session_expired"},
		{"live skey, Bearer and a tab", "GET", "/validate", hdr("Authorization", "Bearer\t"+liveSkey), "", 401, "session_required"},
		{"huge Authorization", "GET", "/validate", hdr("Authorization", "Bearer "+strings.Repeat("k", 16<<10)), "", 401, "session_expired"},
		{"skey with a dot", "GET", "/validate", hdr("Authorization", "Bearer "+unknownSkey[:40]+".x"), "", 401, "session_expired"},
		{"anonymous decrypt, bad body", "POST", "/decrypt", goodCT, `{"iv":`, 401, "session_required"},
		{"anonymous logout", "POST", "/logout", nil, "", 401, "session_required"},
		// Path tricks.
		{"trailing slash", "POST", "/login/", goodCT, `{"code":"abc"}`, 404, "not_found"},
		{"double slash", "POST", "//login", goodCT, `{"code":"abc"}`, 404, "not_found"},
		{"dot segments", "POST", "/login/../login", goodCT, `{"code":"abc"}`, 404, "not_found"},
		{"upper case", "POST", "/LOGIN", goodCT, `{"code":"abc"}`, 404, "not_found"},
		{"encoded slash", "POST", "/%2Flogin", goodCT, `{"code":"abc"}`, 404, "not_found"},
		{"encoded NUL", "POST", "/login%00", goodCT, `{"code":"abc"}`, 404, "not_found"},
		{"semicolon", "GET", "/validate;x=1", nil, "", 404, "not_found"},
		{"query is ignored", "POST", "/login?x", goodCT, `{}`, 400, "invalid_request"},
		{"unknown route", "GET", "/admin", nil, "", 404, "not_found"},
		// Methods.
		{"GET /login", "GET", "/login", nil, "", 405, "method_not_allowed"},
		{"PUT /validate", "PUT", "/validate", goodCT, `{}`, 405, "method_not_allowed"},
		{"DELETE /logout", "DELETE", "/logout", withSkey(nil), "", 405, "method_not_allowed"},
		{"PATCH /decrypt", "PATCH", "/decrypt", goodCT, `{}`, 405, "method_not_allowed"},
		{"lowercase post", "post", "/login", goodCT, `{"code":"abc"}`, 405, "method_not_allowed"},
		{"made-up method", "BREW", "/login", nil, "", 405, "method_not_allowed"},
		{"method of 1000 letters", strings.Repeat("M", 1000), "/nowhere", nil, "", 404, "not_found"},
		{"HEAD /validate", "HEAD", "/validate", nil, "", 405, "method_not_allowed"},
		{"OPTIONS /login", "OPTIONS", "/login", hdr("Origin", "https://example.com", "Access-Control-Request-Method", "POST"), "", 405, "method_not_allowed"},
		// Bodies.
		{"empty body", "POST", "/login", nil, "", 400, "invalid_request"},
		{"whitespace body", "POST", "/login", goodCT, " \r\n\t ", 400, "invalid_request"},
		{"trailing garbage", "POST", "/login", goodCT, `{"code":"abc"}x`, 400, "invalid_request"},
		{"two objects", "POST", "/login", goodCT, `{"code":"abc"}{"code":"def"}`, 400, "invalid_request"},
		{"empty decrypt body", "POST", "/decrypt", withSkey(nil), "", 400, "invalid_request"},
		{"body on GET /validate", "GET", "/validate", withSkey(goodCT), `{"skey":"x"}`, 401, "session_expired"},
	}
}

// answer is what a runtime answered, whatever its envelope.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// entry sends a request through one runtime's way in.
type entry struct {
	name string
	do   func(t *testing.T, r hostileRequest) answer
	// skey is a live session's skey on this entry, for liveSkey.
	skey string
}

// send sends r through e with liveSkey filled in.
func (e entry) send(t *testing.T, r hostileRequest) answer {
	t.Helper()
	if r.header != nil {
		h := http.Header{}
		for k, vs := range r.header {
			for _, v := range vs {
				h.Add(k, strings.ReplaceAll(v, liveSkey, e.skey))
			}
		}
		r.header = h
	}
	return e.do(t, r)
}

// liveSession logs a user in through an entry and returns the skey.
func liveSession(t *testing.T, do func(*testing.T, hostileRequest) answer, code string) string {
	t.Helper()
	a := do(t, hostileRequest{name: "login", method: "POST", target: "/login", header: jsonCT, body: `{"code":"` + code + `"}`})
	var l struct {
		Skey string `json:"skey"`
	}
	if err := json.Unmarshal(a.body, &l); a.status != http.StatusOK || err != nil || l.Skey == "" {
		t.Fatalf("login: got %d %s", a.status, a.body)
	}
	if v := do(t, hostileRequest{name: "validate", method: "GET", target: "/validate", header: hdr("Authorization", "Bearer "+l.Skey)}); v.status != http.StatusOK {
		t.Fatalf("validate with a fresh skey: got %d %s", v.status, v.body)
	}
	return l.Skey
}

// TestHostileRequests sends every request of hostileRequests through every
// runtime's entry: plain HTTP (platform.ListenAndServe on a real socket), the
// local server's handler (on a real socket), the Lambda adapter (as an HTTP
// API 2.0 and as a REST API 1.0 event) and the SCF adapter (API gateway
// event). Each must get its 4xx and contract code, the same on every runtime,
// as JSON; nothing may panic or log an error.
func TestHostileRequests(t *testing.T) {
	cases := hostileRequests()
	if len(cases) < 30 {
		t.Fatalf("only %d hostile requests", len(cases))
	}
	errLog := &syncbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(errLog, &slog.HandlerOptions{Level: slog.LevelError}))
	h, emu := productHandler(t, log)
	local, localBase := localEntry(t, log)

	entries := []entry{
		{name: "http", do: plainHTTPEntry(t, h)},
		{name: "local", do: local},
		{name: "lambda-v2", do: lambdaEntry(h, log, httpAPIEvent, decodeHTTPAPI)},
		{name: "lambda-v1", do: lambdaEntry(h, log, restAPIEvent, decodeRESTAPI)},
		{name: "scf", do: scfEntry(h, log)},
	}
	for i := range entries {
		code := emu.Code("hostile")
		if entries[i].name == "local" {
			code = emulatorCode(t, localBase, "hostile")
		}
		entries[i].skey = liveSession(t, entries[i].do, code)
	}
	authorizer := authorizerEntry(h, log, entries[2].skey) // the Lambda entries' live session
	if !authorizer(t, hostileRequest{header: hdr("Authorization", "Bearer "+liveSkey)}) {
		t.Fatal("lambda authorizer: denied a live session")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, e := range entries {
				a := e.send(t, c)
				if msg := checkHostileAnswer(c, a); msg != "" {
					t.Errorf("%s: %s %s: %s", e.name, c.method, c.target, msg)
				}
			}
			// The validate function as an authorizer sees the same headers:
			// whatever /validate refuses, it denies.
			if c.method == "GET" && c.target == "/validate" && authorizer(t, c) {
				t.Errorf("lambda authorizer: allowed a request /validate refuses")
			}
		})
	}
	if errLog.String() != "" {
		t.Errorf("error-level log lines (a panic or a 5xx):\n%s", errLog.String())
	}
	t.Logf("%d hostile requests × %d runtime entries", len(cases), len(entries))
}

// checkHostileAnswer says what is wrong with a runtime's answer to c, or "".
func checkHostileAnswer(c hostileRequest, a answer) string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	head := c.method == http.MethodHead
	if head {
		if len(a.body) != 0 {
			return "HEAD answered with a body"
		}
	} else if err := json.Unmarshal(a.body, &e); err != nil {
		return fmt.Sprintf("got %d with a body that is not JSON: %s", a.status, truncateForLog(a.body))
	}
	switch {
	case a.status >= 500:
		return fmt.Sprintf("got %d: %s", a.status, truncateForLog(a.body))
	case a.status != c.wantStatus || (!head && e.Error != c.wantCode):
		return fmt.Sprintf("got %d %s, want %d %s (%s)", a.status, e.Error, c.wantStatus, c.wantCode, truncateForLog(a.body))
	case !head && e.Message == "":
		return "error without a message"
	case !strings.HasPrefix(a.header.Get("Content-Type"), "application/json"):
		return fmt.Sprintf("Content-Type %q, want application/json", a.header.Get("Content-Type"))
	case a.status == http.StatusMethodNotAllowed && a.header.Get("Allow") == "":
		return "405 without Allow"
	case len(e.Message) > 200:
		return fmt.Sprintf("an error message of %d bytes echoes the request", len(e.Message))
	}
	return ""
}

func truncateForLog(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// productHandler is every route over the memory store, talking to an emulator.
func productHandler(t *testing.T, log *slog.Logger) (http.Handler, *emulator.Emulator) {
	t.Helper()
	const app, secret = "wx00000000000000ee", "hostile-secret"
	emu := emulator.New(app, secret)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	cfg := config.Config{AppID: app, Secret: secret, TTL: time.Hour, MaxAge: 2 * time.Hour}
	svc, err := boot.NewService(cfg, memory.New(nil), wechat.NewClient(srv.URL, app, secret, nil))
	if err != nil {
		t.Fatal(err)
	}
	return api.All(svc, api.WithLogger(log)), emu
}

// emulatorCode asks the local server's emulator for a login code.
func emulatorCode(t *testing.T, base, user string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/emulator/wx.login?user="+url.QueryEscape(user), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var c struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || c.Code == "" {
		t.Fatalf("emulator wx.login: %v", err)
	}
	return c.Code
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// plainHTTPEntry serves h with platform.ListenAndServe, as a function binary
// does in plain-HTTP mode, and sends requests over a real socket.
func plainHTTPEntry(t *testing.T, h http.Handler) func(*testing.T, hostileRequest) answer {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- platform.ListenAndServe(ctx, addr, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	})
	base := "http://" + addr
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("ListenAndServe never listened on %s", addr)
		}
	}
	return socketEntry(base)
}

// localEntry serves the local server's handler (emulator, memory store).
func localEntry(t *testing.T, log *slog.Logger) (func(*testing.T, hostileRequest) answer, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	h, _, err := newServer(context.Background(), config.Config{Store: "memory", TTL: time.Hour, MaxAge: 2 * time.Hour}, base, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return socketEntry(base), base
}

func socketEntry(base string) func(*testing.T, hostileRequest) answer {
	return func(t *testing.T, r hostileRequest) answer {
		t.Helper()
		// Hostile requests too get answers docs/openapi.yaml describes.
		client := &http.Client{
			Timeout:       10 * time.Second,
			Transport:     openapitest.Transport(t, nil),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		u, err := url.Parse(base + r.target)
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		req, err := http.NewRequestWithContext(context.Background(), r.method, base, body)
		if err != nil {
			t.Fatal(err)
		}
		req.URL = u
		for k, vs := range r.header {
			req.Header[k] = vs
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.target, err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return answer{status: resp.StatusCode, header: resp.Header, body: b}
	}
}

// split returns the request target's path as sent (escaped), decoded, and
// its raw query.
func split(t *testing.T, target string) (escaped, decoded, rawQuery string) {
	t.Helper()
	escaped, rawQuery, _ = strings.Cut(target, "?")
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		t.Fatal(err)
	}
	return escaped, decoded, rawQuery
}

// eventBody is a body as a gateway puts it in an event: text as is, anything
// else (invalid UTF-8) base64.
func eventBody(b string) (string, bool) {
	if utf8.ValidString(b) {
		return b, false
	}
	return base64.StdEncoding.EncodeToString([]byte(b)), true
}

// httpAPIEvent wraps a request as API Gateway HTTP API (payload 2.0) does:
// header names lower-cased, repeated headers joined with ",".
func httpAPIEvent(t *testing.T, r hostileRequest) []byte {
	escaped, decoded, rawQuery := split(t, r.target)
	headers := map[string]string{"host": "api.example.com"}
	for k, vs := range r.header {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	body, b64 := eventBody(r.body)
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: escaped, RawQueryString: rawQuery,
		Headers: headers, Body: body, IsBase64Encoded: b64,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: "$default", Stage: "$default", RequestID: "v2-" + r.name, DomainName: "api.example.com",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.method, Path: decoded, Protocol: "HTTP/1.1", SourceIP: "203.0.113.9"},
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// restAPIEvent wraps a request as API Gateway REST API (payload 1.0) does:
// the path and query decoded, headers single- and multi-valued.
func restAPIEvent(t *testing.T, r hostileRequest) []byte {
	_, decoded, rawQuery := split(t, r.target)
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	single := map[string]string{"Host": "rest.example.com"}
	multi := map[string][]string{"Host": {"rest.example.com"}}
	for k, vs := range r.header {
		single[k] = vs[len(vs)-1]
		multi[k] = vs
	}
	sq := map[string]string{}
	for k, vs := range q {
		sq[k] = vs[len(vs)-1]
	}
	body, b64 := eventBody(r.body)
	ev := events.APIGatewayProxyRequest{
		Resource: "/{proxy+}", Path: decoded, HTTPMethod: r.method, Headers: single, MultiValueHeaders: multi,
		QueryStringParameters: sq, MultiValueQueryStringParameters: q, Body: body, IsBase64Encoded: b64,
		RequestContext: events.APIGatewayProxyRequestContext{
			Stage: "prod", RequestID: "v1-" + r.name, DomainName: "rest.example.com", HTTPMethod: r.method, Path: "/prod" + decoded,
			Identity: events.APIGatewayRequestIdentity{SourceIP: "198.51.100.7"},
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lambdaEntry(h http.Handler, log *slog.Logger, wrap func(*testing.T, hostileRequest) []byte, decode func(*testing.T, []byte) answer) func(*testing.T, hostileRequest) answer {
	a := awslambda.NewHandler(h, awslambda.WithLogger(log))
	return func(t *testing.T, r hostileRequest) answer {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "aws-" + r.name})
		out, err := a.Invoke(ctx, wrap(t, r))
		if err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		return decode(t, out)
	}
}

// authorizerEntry returns a function that sends a request's headers as an
// HTTP API authorizer event and reports whether it was allowed.
func authorizerEntry(h http.Handler, log *slog.Logger, skey string) func(*testing.T, hostileRequest) bool {
	a := awslambda.NewHandler(h, awslambda.WithLogger(log))
	return func(t *testing.T, r hostileRequest) bool {
		t.Helper()
		headers := map[string]string{}
		for k, vs := range r.header {
			headers[strings.ToLower(k)] = strings.ReplaceAll(strings.Join(vs, ","), liveSkey, skey)
		}
		ev := events.APIGatewayV2CustomAuthorizerV2Request{
			Version: "2.0", Type: "REQUEST", RouteArn: "arn:aws:execute-api:ap-east-1:123456789012:abc/$default/GET/me",
			Headers: headers, RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET"}},
		}
		payload, _ := json.Marshal(ev)
		out, err := a.Invoke(context.Background(), payload)
		if err != nil {
			t.Fatalf("authorizer: invocation error %v", err)
		}
		var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("authorizer: %s is not a simple response", out)
		}
		return resp.IsAuthorized
	}
}

func decodeHTTPAPI(t *testing.T, out []byte) answer {
	t.Helper()
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("not an HTTP API response: %s", out)
	}
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	return answer{status: r.StatusCode, header: h, body: gatewayBody(t, r.Body, r.IsBase64Encoded)}
}

func decodeRESTAPI(t *testing.T, out []byte) answer {
	t.Helper()
	var r events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("not a REST API response: %s", out)
	}
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	for k, vs := range r.MultiValueHeaders {
		h[http.CanonicalHeaderKey(k)] = vs
	}
	return answer{status: r.StatusCode, header: h, body: gatewayBody(t, r.Body, r.IsBase64Encoded)}
}

func gatewayBody(t *testing.T, body string, b64 bool) []byte {
	t.Helper()
	if !b64 {
		return []byte(body)
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatalf("body marked base64 is not: %q", body)
	}
	return b
}

// scfEvent wraps a request as Tencent API Gateway does for SCF: header names
// lower-cased (a repeated one as an array), query values as strings, or true
// for a key without a value.
func scfEvent(t *testing.T, r hostileRequest) []byte {
	_, decoded, rawQuery := split(t, r.target)
	headers := map[string]any{"host": "service-x.gz.apigw.tencentcs.com"}
	for k, vs := range r.header {
		if len(vs) == 1 {
			headers[strings.ToLower(k)] = vs[0]
		} else {
			headers[strings.ToLower(k)] = vs
		}
	}
	query := map[string]any{}
	for _, kv := range strings.Split(rawQuery, "&") {
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		if hasValue {
			query[k] = v
		} else {
			query[k] = true
		}
	}
	body, b64 := eventBody(r.body)
	ev := map[string]any{
		"httpMethod": r.method, "path": decoded, "headers": headers, "queryString": query,
		"body": body, "isBase64Encoded": b64,
		"requestContext": map[string]any{"serviceId": "service-x", "path": decoded, "httpMethod": r.method, "requestId": "scf-" + r.name, "stage": "release", "sourceIp": "203.0.113.20"},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func scfEntry(h http.Handler, log *slog.Logger) func(*testing.T, hostileRequest) answer {
	a := scf.NewHandler(h)
	return func(t *testing.T, r hostileRequest) answer {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = functioncontext.NewContext(ctx, &functioncontext.FunctionContext{RequestID: "scf-" + r.name})
		out, err := a.Invoke(ctx, scfEvent(t, r))
		if err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		var resp scf.Response
		if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode == 0 {
			t.Fatalf("not an integrated response: %s", out)
		}
		hd := http.Header{}
		for k, v := range resp.Headers {
			hd.Set(k, v)
		}
		return answer{status: resp.StatusCode, header: hd, body: gatewayBody(t, resp.Body, resp.IsBase64Encoded)}
	}
}
