package scf_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tencentyun/scf-go-lib/functioncontext"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/platform/scf"
)

type echoed struct {
	Method      string              `json:"method"`
	Path        string              `json:"path"`
	Query       map[string][]string `json:"query"`
	Header      map[string][]string `json:"header"`
	Body        string              `json:"body"`
	RemoteAddr  string              `json:"remote_addr"`
	HasDeadline bool                `json:"has_deadline"`
}

func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, hasDeadline := r.Context().Deadline()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header,
			Body: string(body), RemoteAddr: r.RemoteAddr, HasDeadline: hasDeadline,
		})
	})
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":"rate_limited","message":"slow down"}`)
	})
	mux.HandleFunc("/binary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write([]byte{0x89, 'P', 'N', 'G', 0xff})
	})
	return mux
}

func invoke(t *testing.T, h *scf.Handler, payload string) scf.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = functioncontext.NewContext(ctx, &functioncontext.FunctionContext{RequestID: "scf-req-1"})
	out, err := h.Invoke(ctx, []byte(payload))
	if err != nil {
		t.Fatalf("Invoke returned an error (%v); the adapter must answer every event", err)
	}
	var r scf.Response
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("answer is not an integrated response: %v: %s", err, out)
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(out, &raw)
	keys := []string{"statusCode", "headers", "body"}
	if !byURL([]byte(payload)) {
		keys = append(keys, "isBase64Encoded") // API Gateway's integrated response has all four
	} else if _, ok := raw["isBase64Encoded"]; ok != r.IsBase64Encoded {
		t.Errorf("function-URL answer with isBase64Encoded %s, want the field only for a base64 body: %s", raw["isBase64Encoded"], out)
	}
	for _, k := range keys {
		if _, ok := raw[k]; !ok {
			t.Errorf("response lacks %q: %s", k, out)
		}
	}
	return r
}

// urlEvent is a function-URL event: the API gateway event without
// requestContext, headerParameters, pathParameters, queryStringParameters and
// isBase64Encoded, the client's address in x-scf-remote-addr.
func urlEvent(method, path string, extra map[string]any) string {
	var ev map[string]any
	_ = json.Unmarshal([]byte(event(method, path, nil)), &ev)
	for _, k := range []string{"requestContext", "headerParameters", "pathParameters", "queryStringParameters", "isBase64Encoded"} {
		delete(ev, k)
	}
	ev["headers"] = map[string]any{
		"host": "1250000000-abcd1234.ap-guangzhou.tencentscf.com", "content-type": "application/json",
		"user-agent": "Mozilla/5.0 MicroMessenger", "x-scf-remote-addr": "203.0.113.30",
	}
	for k, v := range extra {
		ev[k] = v
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

// productHandler is the product's own handler, the one error writer and panic
// recovery, in front of a service that panics at every call (a nil
// interface).
func productHandler() http.Handler {
	return api.All(struct{ api.Service }{}, api.WithLogger(slog.New(slog.DiscardHandler)))
}

func event(method, path string, extra map[string]any) string {
	ev := map[string]any{
		"httpMethod": method,
		"path":       path,
		"headers": map[string]any{
			"host": "service-abc.gz.apigw.tencentcs.com", "content-type": "application/json",
			"user-agent": "Mozilla/5.0 MicroMessenger", "x-anonymous-consumer": "true",
		},
		"queryString":           map[string]any{},
		"queryStringParameters": map[string]any{},
		"headerParameters":      map[string]any{},
		"pathParameters":        map[string]any{},
		"body":                  "",
		"isBase64Encoded":       false,
		"requestContext": map[string]any{
			"serviceId": "service-abc", "path": path, "httpMethod": method, "requestId": "scf-gw-req",
			"stage": "release", "sourceIp": "203.0.113.20", "identity": map[string]any{},
		},
	}
	for k, v := range extra {
		ev[k] = v
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func echo(t *testing.T, r scf.Response) echoed {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want 200: %s", r.StatusCode, r.Body)
	}
	var e echoed
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil {
		t.Fatalf("body is not the echo: %s", r.Body)
	}
	return e
}

func TestRequest(t *testing.T) {
	h := scf.NewHandler(testHandler())
	tests := []struct {
		name    string
		payload string
		check   func(t *testing.T, e echoed)
	}{
		{
			name:    "method path body headers",
			payload: event("POST", "/echo", map[string]any{"body": `{"code":"c"}`}),
			check: func(t *testing.T, e echoed) {
				if e.Method != "POST" || e.Path != "/echo" || e.Body != `{"code":"c"}` {
					t.Errorf("got %s %s %q", e.Method, e.Path, e.Body)
				}
				if e.Header["User-Agent"][0] != "Mozilla/5.0 MicroMessenger" {
					t.Errorf("lower-cased header not readable canonically: %v", e.Header)
				}
				if e.Header["X-Request-Id"][0] != "scf-gw-req" {
					t.Errorf("got X-Request-Id %v, want the gateway's id", e.Header["X-Request-Id"])
				}
				if e.RemoteAddr != "203.0.113.20:0" || !e.HasDeadline {
					t.Errorf("got RemoteAddr %q deadline %v", e.RemoteAddr, e.HasDeadline)
				}
			},
		},
		{
			name: "query values: string, array, true",
			payload: event("GET", "/echo", map[string]any{
				"queryString": map[string]any{"a": "1", "b": []string{"2", "3"}, "flag": true, "off": false, "n": 5},
			}),
			check: func(t *testing.T, e echoed) {
				q := e.Query
				if q["a"][0] != "1" || len(q["b"]) != 2 || q["b"][1] != "3" || len(q["flag"]) != 1 || q["flag"][0] != "" || q["n"][0] != "5" {
					t.Errorf("got query %v", q)
				}
				if _, ok := q["off"]; ok {
					t.Errorf("a false query value was kept: %v", q)
				}
			},
		},
		{
			name:    "base64 body",
			payload: event("POST", "/echo", map[string]any{"body": base64.StdEncoding.EncodeToString([]byte("{}")), "isBase64Encoded": true}),
			check: func(t *testing.T, e echoed) {
				if e.Body != "{}" {
					t.Errorf("got body %q, want {}", e.Body)
				}
			},
		},
		{
			name: "function request id when the gateway sends none",
			payload: event("GET", "/echo", map[string]any{
				"requestContext": map[string]any{"requestId": "", "sourceIp": "203.0.113.20"},
			}),
			check: func(t *testing.T, e echoed) {
				if e.Header["X-Request-Id"][0] != "scf-req-1" {
					t.Errorf("got X-Request-Id %v, want the invocation's id", e.Header["X-Request-Id"])
				}
			},
		},
		{
			name:    "path falls back to requestContext.path",
			payload: `{"httpMethod":"GET","headers":{},"requestContext":{"path":"/echo","requestId":"r"}}`,
			check: func(t *testing.T, e echoed) {
				if e.Path != "/echo" {
					t.Errorf("got path %q", e.Path)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, echo(t, invoke(t, h, tt.payload))) })
	}
}

func TestResponse(t *testing.T) {
	h := scf.NewHandler(testHandler())
	for name, ev := range map[string]func(method, path string, extra map[string]any) string{"API Gateway": event, "function URL": urlEvent} {
		t.Run(name, func(t *testing.T) {
			r := invoke(t, h, ev("GET", "/limited", nil))
			if r.StatusCode != 429 || r.Headers["Retry-After"] != "7" || r.IsBase64Encoded {
				t.Errorf("got %d %v base64=%v, want 429 with Retry-After 7", r.StatusCode, r.Headers, r.IsBase64Encoded)
			}
			r = invoke(t, h, ev("GET", "/binary", nil))
			if !r.IsBase64Encoded || r.Body != base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G', 0xff}) {
				t.Errorf("got %q base64=%v, want the PNG bytes base64-encoded", r.Body, r.IsBase64Encoded)
			}
			r = invoke(t, h, ev("DELETE", "/nowhere", nil))
			if r.StatusCode != 404 {
				t.Errorf("got %d, want the handler's 404", r.StatusCode)
			}
		})
	}
}

func TestMalformedEvents(t *testing.T) {
	h := scf.NewHandler(productHandler())
	tests := []struct {
		name, payload, want string
	}{
		{"not JSON", `{"httpMethod":`, "malformed JSON"},
		{"array", `[]`, "not a JSON object"},
		{"timer event", `{"Type":"Timer","TriggerName":"t","Time":"2024-01-01T00:00:00Z","Message":""}`, "no httpMethod"},
		{"headers not an object", `{"httpMethod":"GET","path":"/echo","headers":"x"}`, "not a JSON object"},
		{"query with an object value", `{"httpMethod":"GET","path":"/echo","queryString":{"a":{"b":1}}}`, "neither a string"},
		{"bad base64", event("POST", "/echo", map[string]any{"body": "***", "isBase64Encoded": true}), "base64"},
		{"relative path", event("GET", "echo", nil), "not absolute"},
		{"function URL, bad base64", urlEvent("POST", "/echo", map[string]any{"body": "***", "isBase64Encoded": true}), "base64"},
		{"function URL, method not a token", urlEvent("GE T", "/echo", nil), "not a method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invoke(t, h, tt.payload)
			var body struct{ Error, Message string }
			_ = json.Unmarshal([]byte(r.Body), &body)
			if r.StatusCode != 400 || body.Error != "invalid_request" || !strings.Contains(body.Message, tt.want) {
				t.Errorf("got %d %s, want 400 invalid_request mentioning %q", r.StatusCode, r.Body, tt.want)
			}
			if r.Headers["X-Request-Id"] != "scf-req-1" {
				t.Errorf("got X-Request-Id %q, want the invocation's id", r.Headers["X-Request-Id"])
			}
		})
	}
	if r := invoke(t, scf.NewHandler(testHandler()), event("GET", "/echo", nil)); r.StatusCode != 200 {
		t.Errorf("after malformed events got %d, want 200", r.StatusCode)
	}
}

func TestHandlerPanic(t *testing.T) {
	// The product's router recovers: the adapter has no recover of its own.
	h := scf.NewHandler(productHandler())
	for _, ev := range []string{
		event("GET", "/validate", map[string]any{"headers": map[string]any{"authorization": "Bearer boom"}}),
		urlEvent("GET", "/validate", map[string]any{"headers": map[string]any{"authorization": "Bearer boom"}}),
	} {
		r := invoke(t, h, ev)
		if r.StatusCode != 500 || !strings.Contains(r.Body, `"internal"`) || strings.Contains(r.Body, "nil pointer") {
			t.Errorf("got %d %s, want 500 internal without detail", r.StatusCode, r.Body)
		}
	}
	if r := invoke(t, h, event("GET", "/nope", nil)); r.StatusCode != 404 {
		t.Errorf("after a panic got %d, want the handler's 404", r.StatusCode)
	}
}

func TestFunctionURL(t *testing.T) {
	h := scf.NewHandler(testHandler())

	t.Run("request", func(t *testing.T) {
		e := echo(t, invoke(t, h, urlEvent("POST", "/echo", map[string]any{
			"body":        `{"code":"c"}`,
			"queryString": map[string]any{"a": "1", "b": []string{"2", "3"}, "flag": true},
		})))
		if e.Method != "POST" || e.Path != "/echo" || e.Body != `{"code":"c"}` || !e.HasDeadline {
			t.Errorf("got %s %s %q deadline %v", e.Method, e.Path, e.Body, e.HasDeadline)
		}
		if e.RemoteAddr != "203.0.113.30:0" {
			t.Errorf("got RemoteAddr %q, want x-scf-remote-addr's 203.0.113.30:0", e.RemoteAddr)
		}
		if q := e.Query; q["a"][0] != "1" || len(q["b"]) != 2 || len(q["flag"]) != 1 {
			t.Errorf("got query %v, want a=1 b=[2 3] flag", q)
		}
		if got := e.Header["X-Request-Id"]; len(got) != 1 || got[0] != "scf-req-1" {
			t.Errorf("got X-Request-Id %v, want the invocation's id", got)
		}
	})
	t.Run("base64 body", func(t *testing.T) {
		e := echo(t, invoke(t, h, urlEvent("POST", "/echo", map[string]any{"body": base64.StdEncoding.EncodeToString([]byte("{}")), "isBase64Encoded": true})))
		if e.Body != "{}" {
			t.Errorf("got body %q, want {}", e.Body)
		}
	})
	t.Run("through API Gateway the client address is the gateway's", func(t *testing.T) {
		e := echo(t, invoke(t, h, event("GET", "/echo", map[string]any{"headers": map[string]any{"x-scf-remote-addr": "192.0.2.66"}})))
		if e.RemoteAddr != "203.0.113.20:0" {
			t.Errorf("got RemoteAddr %q, want requestContext.sourceIp's 203.0.113.20:0", e.RemoteAddr)
		}
	})
	// A custom domain maps a path to a function as /login, / or
	// /prefix/login: the adapter hands the handler the path it got.
	for _, path := range []string{"/login", "/", "/prefix/login", "/wx%20session"} {
		t.Run("path "+path, func(t *testing.T) {
			var got string
			ph := scf.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.URL.Path }))
			invoke(t, ph, urlEvent("POST", path, nil))
			if got != path {
				t.Errorf("the handler got path %q, want %q", got, path)
			}
		})
	}
}
