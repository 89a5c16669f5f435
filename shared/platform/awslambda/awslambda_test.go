package awslambda_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/platform/awslambda"
)

// echoed is what the test handler reports about the request it got.
type echoed struct {
	Method      string              `json:"method"`
	Path        string              `json:"path"`
	RawPath     string              `json:"raw_path"`
	Query       map[string][]string `json:"query"`
	Header      map[string][]string `json:"header"`
	Host        string              `json:"host"`
	Body        string              `json:"body"`
	RemoteAddr  string              `json:"remote_addr"`
	HasDeadline bool                `json:"has_deadline"`
}

// testHandler stands in for the api package: a few routes that exercise what
// the adapter must carry both ways.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, hasDeadline := r.Context().Deadline()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.Query(), Header: r.Header,
			Host: r.Host, Body: string(body), RemoteAddr: r.RemoteAddr, HasDeadline: hasDeadline,
		})
	})
	mux.HandleFunc("/limited", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":"rate_limited","message":"slow down"}`)
	})
	mux.HandleFunc("/binary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte{0xff, 0x00, 0xfe})
	})
	mux.HandleFunc("/cookies", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Add("Vary", "Origin")
		w.Header().Add("Vary", "Accept")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/validate", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			_, _ = io.WriteString(w, `{"openid":"o-good","unionid":"u-good","expires_in":86400}`)
		case "Bearer nounion":
			_, _ = io.WriteString(w, `{"openid":"o-nounion","expires_in":86400}`)
		case "Bearer noopenid":
			_, _ = io.WriteString(w, `{"expires_in":86400}`)
		case "Bearer broken":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"store_unavailable","message":"try later"}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"session_expired","message":"log in again"}`)
		}
	})
	return mux
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// productHandler is the product's own handler, the one error writer and panic
// recovery, in front of a service that panics at every call (a nil
// interface): what it answers without the service is what the adapter
// relies on.
func productHandler() http.Handler {
	return api.All(struct{ api.Service }{}, api.WithLogger(quietLogger()))
}

func invoke(t *testing.T, h *awslambda.Handler, payload string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "aws-req-1"})
	out, err := h.Invoke(ctx, []byte(payload))
	if err != nil {
		t.Fatalf("Invoke returned an error (%v); the adapter must answer every event", err)
	}
	return out
}

func v2Event(method, rawPath, stage string, extra map[string]any) string {
	ev := map[string]any{
		"version":        "2.0",
		"routeKey":       "$default",
		"rawPath":        rawPath,
		"rawQueryString": "",
		"headers": map[string]string{
			"host":         "abc123.execute-api.ap-northeast-1.amazonaws.com",
			"content-type": "application/json",
			"user-agent":   "Mozilla/5.0 wechatdevtools",
		},
		"requestContext": map[string]any{
			"apiId": "abc123", "domainName": "abc123.execute-api.ap-northeast-1.amazonaws.com",
			"requestId": "gw-req-v2", "stage": stage, "routeKey": "$default", "timeEpoch": 1700000000000,
			"http": map[string]any{"method": method, "path": rawPath, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "test"},
		},
		"isBase64Encoded": false,
	}
	for k, v := range extra {
		ev[k] = v
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func v1Event(method, path string, extra map[string]any) string {
	ev := map[string]any{
		"resource":   "/{proxy+}",
		"path":       path,
		"httpMethod": method,
		"headers":    map[string]string{"Host": "rest.example.com", "Content-Type": "application/json"},
		"requestContext": map[string]any{
			"accountId": "123456789012", "stage": "prod", "requestId": "gw-req-v1", "domainName": "rest.example.com",
			"httpMethod": method, "path": "/prod" + path, "identity": map[string]any{"sourceIp": "198.51.100.7"},
		},
		"isBase64Encoded": false,
	}
	for k, v := range extra {
		ev[k] = v
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func decodeV2(t *testing.T, out []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("answer is not an HTTP API response: %v: %s", err, out)
	}
	return r
}

func decodeV1(t *testing.T, out []byte) events.APIGatewayProxyResponse {
	t.Helper()
	var r events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("answer is not a REST API response: %v: %s", err, out)
	}
	return r
}

func decodeEcho(t *testing.T, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body is not the echo: %v: %s", err, body)
	}
	return e
}

func TestHTTPAPI(t *testing.T) {
	h := awslambda.NewHandler(testHandler(), awslambda.WithLogger(quietLogger()))
	tests := []struct {
		name    string
		payload string
		check   func(t *testing.T, e echoed)
	}{
		{
			name:    "method path query headers body",
			payload: v2Event("POST", "/echo/a", "$default", map[string]any{"rawQueryString": "x=1&x=2&y=%E4%BD%A0", "body": `{"code":"c"}`}),
			check: func(t *testing.T, e echoed) {
				if e.Method != "POST" || e.Path != "/echo/a" || e.Body != `{"code":"c"}` {
					t.Errorf("got %s %s body %q, want POST /echo/a body {\"code\":\"c\"}", e.Method, e.Path, e.Body)
				}
				if got := e.Query["x"]; len(got) != 2 || got[1] != "2" || e.Query["y"][0] != "你" {
					t.Errorf("got query %v, want x=[1 2] y=[你]", e.Query)
				}
				if got := e.Header["User-Agent"]; len(got) != 1 || got[0] != "Mozilla/5.0 wechatdevtools" {
					t.Errorf("got User-Agent %v", got)
				}
				if e.Host != "abc123.execute-api.ap-northeast-1.amazonaws.com" {
					t.Errorf("got host %q", e.Host)
				}
				if e.RemoteAddr != "203.0.113.9:0" {
					t.Errorf("got RemoteAddr %q, want 203.0.113.9:0", e.RemoteAddr)
				}
				if !e.HasDeadline {
					t.Error("the request context has no deadline; want the invocation's")
				}
			},
		},
		{
			name:    "gateway request id becomes X-Request-Id",
			payload: v2Event("GET", "/echo/id", "$default", nil),
			check: func(t *testing.T, e echoed) {
				if got := e.Header["X-Request-Id"]; len(got) != 1 || got[0] != "gw-req-v2" {
					t.Errorf("got X-Request-Id %v, want [gw-req-v2]", got)
				}
			},
		},
		{
			name: "client X-Request-Id wins",
			payload: v2Event("GET", "/echo/id", "$default", map[string]any{
				"headers": map[string]string{"x-request-id": "client-id"},
			}),
			check: func(t *testing.T, e echoed) {
				if got := e.Header["X-Request-Id"]; len(got) != 1 || got[0] != "client-id" {
					t.Errorf("got X-Request-Id %v, want [client-id]", got)
				}
			},
		},
		{
			name:    "named stage is stripped",
			payload: v2Event("GET", "/prod/echo/s", "prod", nil),
			check: func(t *testing.T, e echoed) {
				if e.Path != "/echo/s" {
					t.Errorf("got path %q, want /echo/s", e.Path)
				}
			},
		},
		{
			name:    "route that merely starts with the stage name is kept",
			payload: v2Event("GET", "/echo/prod", "ech", nil),
			check: func(t *testing.T, e echoed) {
				if e.Path != "/echo/prod" {
					t.Errorf("got path %q, want /echo/prod", e.Path)
				}
			},
		},
		{
			name:    "escaped path",
			payload: v2Event("GET", "/echo/a%2Fb", "$default", nil),
			check: func(t *testing.T, e echoed) {
				if e.Path != "/echo/a/b" || e.RawPath != "/echo/a%2Fb" {
					t.Errorf("got path %q raw %q, want /echo/a/b raw /echo/a%%2Fb", e.Path, e.RawPath)
				}
			},
		},
		{
			name: "base64 body",
			payload: v2Event("POST", "/echo/b", "$default", map[string]any{
				"body": base64.StdEncoding.EncodeToString([]byte(`{"code":"b64"}`)), "isBase64Encoded": true,
			}),
			check: func(t *testing.T, e echoed) {
				if e.Body != `{"code":"b64"}` {
					t.Errorf("got body %q, want the decoded body", e.Body)
				}
			},
		},
		{
			name:    "cookies become a Cookie header",
			payload: v2Event("GET", "/echo/c", "$default", map[string]any{"cookies": []string{"a=1", "b=2"}}),
			check: func(t *testing.T, e echoed) {
				if got := e.Header["Cookie"]; len(got) != 1 || got[0] != "a=1; b=2" {
					t.Errorf("got Cookie %v, want [a=1; b=2]", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := decodeV2(t, invoke(t, h, tt.payload))
			if r.StatusCode != http.StatusOK {
				t.Fatalf("got status %d, want 200: %s", r.StatusCode, r.Body)
			}
			if r.IsBase64Encoded {
				t.Fatalf("a JSON body came back base64")
			}
			tt.check(t, decodeEcho(t, r.Body))
		})
	}
}

func TestHTTPAPIResponses(t *testing.T) {
	h := awslambda.NewHandler(testHandler(), awslambda.WithLogger(quietLogger()))

	t.Run("status and Retry-After", func(t *testing.T) {
		r := decodeV2(t, invoke(t, h, v2Event("GET", "/limited", "$default", nil)))
		if r.StatusCode != http.StatusTooManyRequests || r.Headers["Retry-After"] != "7" {
			t.Errorf("got %d Retry-After %q, want 429 Retry-After 7", r.StatusCode, r.Headers["Retry-After"])
		}
		if r.Body != `{"error":"rate_limited","message":"slow down"}` {
			t.Errorf("got body %q", r.Body)
		}
	})
	t.Run("binary body is base64", func(t *testing.T) {
		r := decodeV2(t, invoke(t, h, v2Event("GET", "/binary", "$default", nil)))
		if !r.IsBase64Encoded || r.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe}) {
			t.Errorf("got body %q base64=%v, want the bytes base64-encoded", r.Body, r.IsBase64Encoded)
		}
	})
	t.Run("cookies and repeated headers", func(t *testing.T) {
		r := decodeV2(t, invoke(t, h, v2Event("GET", "/cookies", "$default", nil)))
		if r.StatusCode != http.StatusNoContent {
			t.Fatalf("got %d, want 204", r.StatusCode)
		}
		if len(r.Cookies) != 2 || r.Cookies[0] != "a=1" || r.Cookies[1] != "b=2" {
			t.Errorf("got cookies %v, want [a=1 b=2]", r.Cookies)
		}
		if _, ok := r.Headers["Set-Cookie"]; ok {
			t.Error("Set-Cookie is in headers; HTTP API wants it in cookies only")
		}
		if r.Headers["Vary"] != "Origin, Accept" {
			t.Errorf("got Vary %q, want %q", r.Headers["Vary"], "Origin, Accept")
		}
	})
	t.Run("unknown route answers what the handler says", func(t *testing.T) {
		r := decodeV2(t, invoke(t, h, v2Event("GET", "/nope", "$default", nil)))
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("got %d, want 404", r.StatusCode)
		}
	})
}

func TestRESTAPI(t *testing.T) {
	h := awslambda.NewHandler(testHandler(), awslambda.WithLogger(quietLogger()))

	t.Run("multi-value query and headers", func(t *testing.T) {
		payload := v1Event("POST", "/echo/v1", map[string]any{
			"multiValueHeaders":               map[string][]string{"Accept": {"a/b", "c/d"}, "Authorization": {"Bearer k"}},
			"multiValueQueryStringParameters": map[string][]string{"x": {"1", "2"}, "q": {"a b&c"}},
			"queryStringParameters":           map[string]string{"x": "2", "q": "a b&c"},
			"body":                            `{"k":"v"}`,
		})
		r := decodeV1(t, invoke(t, h, payload))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("got %d, want 200: %s", r.StatusCode, r.Body)
		}
		e := decodeEcho(t, r.Body)
		if e.Method != "POST" || e.Path != "/echo/v1" || e.Body != `{"k":"v"}` {
			t.Errorf("got %s %s %q", e.Method, e.Path, e.Body)
		}
		if got := e.Query["x"]; len(got) != 2 || e.Query["q"][0] != "a b&c" {
			t.Errorf("got query %v, want x=[1 2] q=[a b&c]", e.Query)
		}
		if got := e.Header["Accept"]; len(got) != 2 {
			t.Errorf("got Accept %v, want both values", got)
		}
		if got := e.Header["X-Request-Id"]; len(got) != 1 || got[0] != "gw-req-v1" {
			t.Errorf("got X-Request-Id %v, want [gw-req-v1]", got)
		}
		if e.RemoteAddr != "198.51.100.7:0" {
			t.Errorf("got RemoteAddr %q", e.RemoteAddr)
		}
	})
	t.Run("single-value fallbacks and base64 body", func(t *testing.T) {
		payload := v1Event("POST", "/echo/v1", map[string]any{
			"queryStringParameters": map[string]string{"only": "one"},
			"body":                  base64.StdEncoding.EncodeToString([]byte("hi")),
			"isBase64Encoded":       true,
		})
		e := decodeEcho(t, decodeV1(t, invoke(t, h, payload)).Body)
		if e.Query["only"][0] != "one" || e.Body != "hi" || e.Header["Content-Type"][0] != "application/json" {
			t.Errorf("got query %v body %q header %v", e.Query, e.Body, e.Header)
		}
	})
	t.Run("response headers single and multi", func(t *testing.T) {
		r := decodeV1(t, invoke(t, h, v1Event("GET", "/cookies", nil)))
		if got := r.MultiValueHeaders["Set-Cookie"]; len(got) != 2 {
			t.Errorf("got Set-Cookie %v, want both cookies in multiValueHeaders", got)
		}
		if _, ok := r.Headers["Set-Cookie"]; ok {
			t.Error("a repeated header is in headers too; it belongs in multiValueHeaders only")
		}
		r = decodeV1(t, invoke(t, h, v1Event("GET", "/limited", nil)))
		if r.StatusCode != 429 || r.Headers["Retry-After"] != "7" || r.MultiValueHeaders["Retry-After"][0] != "7" {
			t.Errorf("got %d headers %v multi %v, want 429 with Retry-After 7", r.StatusCode, r.Headers, r.MultiValueHeaders)
		}
	})
}

func authorizerEvent(headers map[string]string) string {
	ev := map[string]any{
		"version":        "2.0",
		"type":           "REQUEST",
		"routeArn":       "arn:aws:execute-api:ap-northeast-1:123456789012:abc123/$default/GET/me",
		"identitySource": []string{headers["authorization"]},
		"routeKey":       "GET /me",
		"rawPath":        "/me",
		"rawQueryString": "",
		"headers":        headers,
		"requestContext": map[string]any{
			"apiId": "abc123", "requestId": "gw-auth-1", "stage": "$default", "routeKey": "GET /me",
			"http": map[string]any{"method": "GET", "path": "/me", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
		},
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func TestAuthorizer(t *testing.T) {
	h := awslambda.NewHandler(testHandler(), awslambda.WithLogger(quietLogger()))
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"valid skey", map[string]string{"authorization": "Bearer good"}, `{"isAuthorized":true,"context":{"openid":"o-good","unionid":"u-good"}}`},
		{"no unionid", map[string]string{"authorization": "Bearer nounion"}, `{"isAuthorized":true,"context":{"openid":"o-nounion"}}`},
		{"expired skey", map[string]string{"authorization": "Bearer bad"}, `{"isAuthorized":false}`},
		{"no skey", map[string]string{}, `{"isAuthorized":false}`},
		{"200 without openid", map[string]string{"authorization": "Bearer noopenid"}, `{"isAuthorized":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(invoke(t, h, authorizerEvent(tt.headers))); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}

	t.Run("store down is an invocation error, not a denial", func(t *testing.T) {
		// API Gateway answers 500: an outage must not look like an expired
		// session, or clients would log in again for nothing.
		_, err := h.Invoke(context.Background(), []byte(authorizerEvent(map[string]string{"authorization": "Bearer broken"})))
		if err == nil {
			t.Fatal("got an answer, want an invocation error")
		}
	})

	t.Run("without requestContext.http", func(t *testing.T) {
		ev := `{"version":"2.0","type":"REQUEST","routeArn":"arn:aws:execute-api:x","headers":{"authorization":"Bearer good"},"requestContext":{"requestId":"r-3"}}`
		if got := string(invoke(t, h, ev)); got != `{"isAuthorized":true,"context":{"openid":"o-good","unionid":"u-good"}}` {
			t.Errorf("got %s, want the session's identity", got)
		}
	})

	t.Run("unreadable event denies", func(t *testing.T) {
		ev := `{"version":"2.0","type":"REQUEST","routeArn":"arn:x","headers":["Bearer good"]}`
		if got := string(invoke(t, h, ev)); got != `{"isAuthorized":false}` {
			t.Errorf("got %s, want a denial", got)
		}
	})

	t.Run("non-validate handler denies", func(t *testing.T) {
		other := awslambda.NewHandler(http.NotFoundHandler(), awslambda.WithLogger(quietLogger()))
		if got := string(invoke(t, other, authorizerEvent(map[string]string{"authorization": "Bearer good"}))); got != `{"isAuthorized":false}` {
			t.Errorf("got %s, want a denial", got)
		}
	})
}

const methodArn = "arn:aws:execute-api:ap-northeast-1:123456789012:abc123/prod/GET/me"

func tokenEvent(token string) string {
	b, _ := json.Marshal(map[string]string{"type": "TOKEN", "authorizationToken": token, "methodArn": methodArn})
	return string(b)
}

func requestAuthorizerEvent(headers map[string]string, multi map[string][]string) string {
	b, _ := json.Marshal(map[string]any{
		"type": "REQUEST", "methodArn": methodArn, "resource": "/me", "path": "/me", "httpMethod": "GET",
		"headers": headers, "multiValueHeaders": multi,
		"requestContext": map[string]any{"requestId": "gw-rest-auth", "stage": "prod", "identity": map[string]any{"sourceIp": "198.51.100.7"}},
	})
	return string(b)
}

func TestRESTAuthorizer(t *testing.T) {
	h := awslambda.NewHandler(testHandler(), awslambda.WithLogger(quietLogger()))
	allow := func(openid, unionid string) events.APIGatewayCustomAuthorizerResponse {
		ctx := map[string]any{"openid": openid}
		if unionid != "" {
			ctx["unionid"] = unionid
		}
		return events.APIGatewayCustomAuthorizerResponse{PrincipalID: openid, Context: ctx, PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17", Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{methodArn}}},
		}}
	}
	deny := events.APIGatewayCustomAuthorizerResponse{PrincipalID: "anonymous", PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
		Version: "2012-10-17", Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Deny", Resource: []string{methodArn}}},
	}}
	tests := []struct {
		name    string
		payload string
		want    *events.APIGatewayCustomAuthorizerResponse // nil: the invocation fails with wantErr
		wantErr string
	}{
		{"TOKEN with a Bearer skey", tokenEvent("Bearer good"), ptr(allow("o-good", "u-good")), ""},
		{"TOKEN without unionid", tokenEvent("Bearer nounion"), ptr(allow("o-nounion", "")), ""},
		{"TOKEN with an expired skey", tokenEvent("Bearer bad"), nil, "Unauthorized"},
		{"TOKEN with no skey", tokenEvent(""), nil, "Unauthorized"},
		{"TOKEN, 200 without openid", tokenEvent("Bearer noopenid"), ptr(deny), ""},
		{"TOKEN, store down", tokenEvent("Bearer broken"), nil, "authorizer: /validate answered 503"},
		{"REQUEST with headers", requestAuthorizerEvent(map[string]string{"Authorization": "Bearer good"}, nil), ptr(allow("o-good", "u-good")), ""},
		{"REQUEST with multiValueHeaders", requestAuthorizerEvent(map[string]string{"X-Other": "x"}, map[string][]string{"Authorization": {"Bearer nounion"}}), ptr(allow("o-nounion", "")), ""},
		{"REQUEST with an expired skey", requestAuthorizerEvent(map[string]string{"Authorization": "Bearer bad"}, nil), nil, "Unauthorized"},
		{"REQUEST with no skey", requestAuthorizerEvent(nil, nil), nil, "Unauthorized"},
		{"REQUEST, store down", requestAuthorizerEvent(map[string]string{"Authorization": "Bearer broken"}, nil), nil, "authorizer: /validate answered 503"},
		{"REQUEST unreadable", `{"type":"REQUEST","methodArn":"arn:x","headers":["x"]}`, nil, "Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := h.Invoke(context.Background(), []byte(tt.payload))
			if tt.want == nil {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got %s, error %v; want the error %q", out, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got the error %v, want a policy", err)
			}
			want, _ := json.Marshal(tt.want)
			if string(out) != string(want) {
				t.Errorf("got  %s\nwant %s", out, want)
			}
		})
	}

	t.Run("the skey reaches /validate as the client sent it", func(t *testing.T) {
		var seen http.Header
		spy := awslambda.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = r.Header.Clone()
			w.WriteHeader(http.StatusUnauthorized)
		}), awslambda.WithLogger(quietLogger()))
		for token, want := range map[string][2]string{"Bearer k1": {"Bearer k1", ""}, "k2": {"", "k2"}} {
			if _, err := spy.Invoke(context.Background(), []byte(tokenEvent(token))); !errors.Is(err, awslambda.ErrUnauthorized) {
				t.Fatalf("got %v, want ErrUnauthorized", err)
			}
			if seen.Get("Authorization") != want[0] || seen.Get("X-WX-Skey") != want[1] {
				t.Errorf("token %q: got Authorization %q X-WX-Skey %q, want %q %q", token, seen.Get("Authorization"), seen.Get("X-WX-Skey"), want[0], want[1])
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestMalformedEvents(t *testing.T) {
	h := awslambda.NewHandler(productHandler(), awslambda.WithLogger(quietLogger()))
	tests := []struct {
		name    string
		payload string
		want    string // part of the message
	}{
		{"not JSON", `{"version":`, "not an API Gateway"},
		{"JSON array", `[1,2]`, "not an API Gateway"},
		{"empty object", `{}`, "not an API Gateway"},
		{"S3 event", `{"Records":[{"eventSource":"aws:s3"}]}`, "not an API Gateway"},
		{"v2 without method", v2Event("", "/echo/x", "$default", nil), "no HTTP method"},
		{"v2 bad base64", v2Event("POST", "/echo/x", "$default", map[string]any{"body": "%%%", "isBase64Encoded": true}), "base64"},
		{"v2 headers of the wrong type", `{"version":"2.0","headers":["x"],"requestContext":{"http":{"method":"GET"}}}`, "headers has the wrong type"},
		{"v2 relative path", v2Event("GET", "echo/x", "$default", nil), "not absolute"},
		{"v2 bad escape", v2Event("GET", "/echo/%zz", "$default", nil), "escaped"},
		{"v2 method with a space", v2Event("GE T", "/echo/x", "$default", nil), "not a method"},
		{"v1 bad base64", v1Event("POST", "/echo/x", map[string]any{"body": "!!", "isBase64Encoded": true}), "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := decodeV2(t, invoke(t, h, tt.payload))
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %d, want 400", r.StatusCode)
			}
			var body struct{ Error, Message string }
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
				t.Fatalf("400 body is not the contract's JSON error: %s", r.Body)
			}
			if body.Error != "invalid_request" || !strings.Contains(body.Message, tt.want) {
				t.Errorf("got %+v, want invalid_request mentioning %q", body, tt.want)
			}
			if r.Headers["X-Request-Id"] != "aws-req-1" {
				t.Errorf("got X-Request-Id %q, want the invocation's id", r.Headers["X-Request-Id"])
			}
		})
	}

	t.Run("unsupported authorizer payload 1.0", func(t *testing.T) {
		ev := `{"version":"1.0","type":"REQUEST","methodArn":"arn:aws:execute-api:x","headers":{}}`
		if r := decodeV2(t, invoke(t, h, ev)); r.StatusCode != http.StatusBadRequest {
			t.Errorf("got %d, want 400", r.StatusCode)
		}
	})

	t.Run("REST API kind answers in its own format", func(t *testing.T) {
		r := decodeV1(t, invoke(t, h, `{"httpMethod":"GET","path":"/validate","headers":["x"]}`))
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "headers has the wrong type") || r.MultiValueHeaders["X-Request-Id"][0] != "aws-req-1" {
			t.Errorf("got %d %v %s, want a REST API 400 naming headers", r.StatusCode, r.MultiValueHeaders, r.Body)
		}
	})

	t.Run("the next event is served", func(t *testing.T) {
		h := awslambda.NewHandler(testHandler(), awslambda.WithLogger(quietLogger()))
		r := decodeV2(t, invoke(t, h, v2Event("GET", "/echo/after", "$default", nil)))
		if r.StatusCode != http.StatusOK {
			t.Errorf("got %d, want 200", r.StatusCode)
		}
	})
}

func TestHandlerPanic(t *testing.T) {
	// The product's router recovers: the adapter has no recover of its own.
	h := awslambda.NewHandler(productHandler(), awslambda.WithLogger(quietLogger()))
	r := decodeV2(t, invoke(t, h, v2Event("GET", "/validate", "$default", map[string]any{"headers": map[string]string{"authorization": "Bearer boom"}})))
	if r.StatusCode != http.StatusInternalServerError || !strings.Contains(r.Body, `"error":"internal"`) {
		t.Errorf("got %d %s, want 500 internal", r.StatusCode, r.Body)
	}
	if strings.Contains(r.Body, "nil pointer") || strings.Contains(r.Body, "boom") {
		t.Errorf("the panic's detail reached the client: %s", r.Body)
	}
	if r := decodeV2(t, invoke(t, h, v2Event("GET", "/nope", "$default", nil))); r.StatusCode != http.StatusNotFound {
		t.Errorf("after a panic got %d, want the handler's 404", r.StatusCode)
	}
	// A panic behind an authorizer is wxsession failing: an invocation error
	// (API Gateway answers 500), never a denial.
	if _, err := h.Invoke(context.Background(), []byte(authorizerEvent(map[string]string{"authorization": "Bearer boom"}))); err == nil {
		t.Error("authorizer in front of a panic: got an answer, want an invocation error")
	}
	good := awslambda.NewHandler(testHandler(), awslambda.WithLogger(quietLogger()))
	if got := string(invoke(t, good, `{"version":"2.0","type":"REQUEST","routeArn":"arn:x","headers":{"authorization":"Bearer good"},"requestContext":{"http":{"method":"GET"}}}`)); got != `{"isAuthorized":true,"context":{"openid":"o-good","unionid":"u-good"}}` {
		t.Errorf("authorizer: got %s", got)
	}
}
