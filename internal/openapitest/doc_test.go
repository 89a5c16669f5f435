package openapitest_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/docs"
	"github.com/wxsession/wxsession/internal/openapitest"
)

func TestDocumentValidates(t *testing.T) {
	v := openapitest.New(t)
	if v != openapitest.New(t) {
		t.Fatal("the document was loaded twice")
	}
	if !bytes.HasPrefix(docs.OpenAPI, []byte("openapi: 3.1.")) {
		t.Fatalf("docs.OpenAPI does not start with an OpenAPI 3.1 version: %.40q", docs.OpenAPI)
	}
}

func TestLoadRefusesAnInvalidDocument(t *testing.T) {
	for name, spec := range map[string]string{
		"not OpenAPI 3.1": strings.Replace(string(docs.OpenAPI), "openapi: 3.1.0", "openapi: 3.0.3", 1),
		// A response without its required description breaks the OpenAPI schema.
		"schema violation": strings.Replace(string(docs.OpenAPI), "          description: The session is live.\n", "", 1),
		"not YAML":         "openapi: 3.1.0\ninfo: [",
	} {
		if spec == string(docs.OpenAPI) {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if _, err := openapitest.Load([]byte(spec)); err == nil {
			t.Errorf("%s: Load accepted it", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

const skey = "3q2-7wEAAAB0ZXN0LXNrZXktZm9yLWRvY3MtMDEyMzQ1Njc4OQ"

// ex is a request and the response a server gave to it.
type ex struct {
	req  *http.Request
	resp *http.Response
	body []byte
}

// exchange builds a request and the response a server might give to it.
func exchange(method, path, reqBody string, status int, header http.Header, body string) ex {
	var rd io.Reader
	if reqBody != "" {
		rd = strings.NewReader(reqBody)
	}
	req, _ := http.NewRequest(method, "http://127.0.0.1:8080"+path, rd)
	if reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+skey)
	h := http.Header{"X-Request-Id": {"4f1c2a9be07d3a65"}, "Cache-Control": {"no-store"}}
	if body != "" {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, vs := range header {
		if vs == nil {
			delete(h, k)
		} else {
			h[k] = vs
		}
	}
	return ex{req, &http.Response{StatusCode: status, Header: h, Request: req}, []byte(body)}
}

// TestValidateCatchesDrift shows that responses (and successful requests)
// the document does not describe are refused, next to the same exchange made
// right, which passes: each case could fail either way.
func TestValidateCatchesDrift(t *testing.T) {
	v := openapitest.New(t)
	validate := `{"openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","expires_in":86400}`
	rateLimited := `{"error":"rate_limited","message":"retry later"}`
	for _, c := range []struct {
		name         string
		method, path string
		reqBody      string
		status       int
		header       http.Header
		body         string
		wrongHeader  http.Header // the same exchange, broken in its headers…
		wrongBody    string      // …or in its body…
		wrongStatus  int         // …or in its status…
		wrongReqBody string      // …or a request that should not have succeeded
	}{
		{name: "validate 200", method: "GET", path: "/validate", status: 200, body: validate,
			wrongBody: `{"expires_in":86400}`, wrongHeader: http.Header{"X-Request-Id": nil}},
		{name: "validate 200 with an undocumented field", method: "GET", path: "/validate", status: 200, body: validate,
			wrongBody: `{"openid":"o1","expires_in":86400,"session_key":"c2VjcmV0"}`},
		{name: "validate expires_in is an integer", method: "GET", path: "/validate", status: 200, body: validate,
			wrongBody: `{"openid":"o1","expires_in":"86400"}`},
		{name: "login 200", method: "POST", path: "/login", reqBody: `{"code":"c"}`, status: 200,
			body:      `{"skey":"` + skey + `","expires_in":86400,"openid":"o1","unionid":"u1"}`,
			wrongBody: `{"skey":"short","expires_in":86400,"openid":"o1"}`, wrongReqBody: `{"cod":"c"}`,
			wrongHeader: http.Header{"Cache-Control": {"max-age=60"}}},
		{name: "error code unknown", method: "POST", path: "/login", reqBody: `{"code":"c"}`, status: 400,
			body: `{"error":"invalid_request","message":"code is required"}`, wrongBody: `{"error":"teapot","message":"short and stout"}`},
		{name: "error code of another status", method: "GET", path: "/validate", status: 401,
			body: `{"error":"session_expired","message":"log in again"}`, wrongBody: `{"error":"invalid_code","message":"call wx.login again"}`},
		{name: "error without message", method: "GET", path: "/validate", status: 401,
			body: `{"error":"session_required","message":"send the skey"}`, wrongBody: `{"error":"session_required"}`},
		{name: "429 needs Retry-After", method: "POST", path: "/login", reqBody: `{"code":"c"}`, status: 429,
			header: http.Header{"Retry-After": {"60"}}, body: rateLimited,
			wrongHeader: http.Header{"Retry-After": nil}},
		{name: "Retry-After is seconds", method: "POST", path: "/login", reqBody: `{"code":"c"}`, status: 429,
			header: http.Header{"Retry-After": {"60"}}, body: rateLimited,
			wrongHeader: http.Header{"Retry-After": {"soon"}}},
		{name: "undocumented status", method: "POST", path: "/login", reqBody: `{"code":"c"}`, status: 401,
			body: `{"error":"invalid_code","message":"call wx.login again"}`, wrongStatus: 418},
		{name: "a route's statuses only", method: "GET", path: "/validate", status: 503,
			body: `{"error":"store_unavailable","message":"retry shortly"}`, wrongStatus: 502},
		{name: "500 carries no details", method: "GET", path: "/validate", status: 500,
			body: `{"error":"internal","message":"internal error"}`, wrongBody: `{"error":"internal","message":"dial tcp 10.0.0.1:6379: refused"}`},
		{name: "logout 204 has no body", method: "POST", path: "/logout", status: 204,
			wrongBody: `{"ok":true}`},
		{name: "decrypt data carries a watermark", method: "POST", path: "/decrypt", reqBody: `{"encryptedData":"AAAA","iv":"AAAA"}`, status: 200,
			body:      `{"data":{"step":1,"watermark":{"appid":"wx0123456789abcdef","timestamp":1764558000}}}`,
			wrongBody: `{"data":{"step":1}}`, wrongReqBody: `{"iv":"AAAA"}`},
		{name: "not found", method: "GET", path: "/nope", status: 404,
			body: `{"error":"not_found","message":"no route GET /nope"}`, wrongStatus: 200,
			wrongHeader: http.Header{"X-Request-Id": nil}},
		{name: "not found code", method: "GET", path: "/nope", status: 404,
			body: `{"error":"not_found","message":"no route GET /nope"}`, wrongBody: `{"error":"method_not_allowed","message":"no"}`},
		{name: "method not allowed", method: "GET", path: "/login", status: 405, header: http.Header{"Allow": {"POST"}},
			body:        `{"error":"method_not_allowed","message":"/login takes POST"}`,
			wrongHeader: http.Header{"Allow": nil}, wrongStatus: 404},
		{name: "Allow names the documented method", method: "GET", path: "/login", status: 405, header: http.Header{"Allow": {"POST"}},
			body:        `{"error":"method_not_allowed","message":"/login takes POST"}`,
			wrongHeader: http.Header{"Allow": {"GET"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			right := exchange(c.method, c.path, c.reqBody, c.status, c.header, c.body)
			if err := v.Validate(right.req, right.resp, right.body); err != nil {
				t.Fatalf("the right exchange was refused: %v", err)
			}
			refused := func(what string, e ex) {
				t.Helper()
				err := v.Validate(e.req, e.resp, e.body)
				if err == nil {
					t.Errorf("%s: accepted", what)
					return
				}
				t.Logf("%s: %v", what, err)
			}
			if c.wrongHeader != nil {
				h := http.Header{}
				for k, vs := range c.header {
					h[k] = vs
				}
				for k, vs := range c.wrongHeader {
					h[k] = vs
				}
				refused("wrong header", exchange(c.method, c.path, c.reqBody, c.status, h, c.body))
			}
			if c.wrongBody != "" {
				refused("wrong body", exchange(c.method, c.path, c.reqBody, c.status, c.header, c.wrongBody))
			}
			if c.wrongStatus != 0 {
				refused("wrong status", exchange(c.method, c.path, c.reqBody, c.wrongStatus, c.header, c.body))
			}
			if c.wrongReqBody != "" {
				refused("invalid request succeeded", exchange(c.method, c.path, c.wrongReqBody, c.status, c.header, c.body))
			}
		})
	}
}

// TestCheckFailsTheTest shows Check reports through the test it is given.
func TestCheckFailsTheTest(t *testing.T) {
	v := openapitest.New(t)
	rec := &recorder{TB: t}
	e := exchange("GET", "/validate", "", 200, nil, `{"expires_in":1}`)
	v.Check(rec, e.req, e.resp, e.body)
	if !rec.failed {
		t.Fatal("Check did not fail the test for a body without openid")
	}
	rec = &recorder{TB: t}
	e = exchange("GET", "/validate", "", 200, nil, `{"openid":"o1","expires_in":1}`)
	v.Check(rec, e.req, e.resp, e.body)
	if rec.failed {
		t.Fatal("Check failed a right response")
	}
}

// recorder is a testing.TB that notes failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(format string, args ...any) { r.failed = true; r.Logf(format, args...) }
func (r *recorder) Helper()                           {}

// TestTransportChecksResponses shows the RoundTripper checks what passes
// through it, hands the body on unchanged, and lets the emulator's paths by.
func TestTransportChecksResponses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "r1")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("ok") != "" {
			_, _ = io.WriteString(w, `{"openid":"o1","expires_in":5}`)
			return
		}
		_, _ = io.WriteString(w, `{"expires_in":5}`) // no openid, on /validate and /emulator/stats alike
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		path     string
		wantFail bool
	}{{"/validate?ok=1", false}, {"/validate", true}, {"/emulator/stats", false}} {
		rec := &recorder{TB: t}
		client := &http.Client{Transport: openapitest.Transport(rec, nil)}
		req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+skey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !strings.Contains(string(body), `"expires_in":5`) {
			t.Errorf("%s: the body was not handed on: %q", c.path, body)
		}
		if rec.failed != c.wantFail {
			t.Errorf("%s: failed %v, want %v", c.path, rec.failed, c.wantFail)
		}
	}
}
