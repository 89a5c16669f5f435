package scf_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tencentyun/scf-go-lib/functioncontext"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/platform/scf"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/memory"
)

// fakeWeChat answers jscode2session without a network: a code starting with
// "ok-" logs a user in, any other is invalid.
type fakeWeChat struct{}

func (fakeWeChat) Code2Session(_ context.Context, code string) (session.WeChatSession, error) {
	if strings.HasPrefix(code, "ok-") {
		return session.WeChatSession{OpenID: "o-" + code, SessionKey: "tiihtNczf5v6AKRyjwEUhQ=="}, nil
	}
	return session.WeChatSession{}, apperr.Errorf(apperr.InvalidCode, "unknown code")
}

// FuzzSCFEvent feeds arbitrary invocation payloads to the SCF adapter in front
// of the real handlers (memory store, a WeChat that needs no network). Every
// payload must get a response with statusCode, headers and body (and
// isBase64Encoded: only when set for a function-URL event, always for any
// other), without an
// error and without a panic anywhere (an error-level log line means one was
// caught), never a 5xx (nothing here can fail but a bug), and with the JSON
// body the contract promises.
func FuzzSCFEvent(f *testing.F) {
	for _, seed := range []string{
		`{"httpMethod":"POST","path":"/login","headers":{"content-type":"application/json"},"body":"{\"code\":\"ok-1\"}"}`,
		`{"httpMethod":"GET","path":"/validate","headers":{"authorization":["Bearer a","Bearer b"]},"queryString":{"debug":true,"n":1}}`,
		`{"httpMethod":"POST","requestContext":{"path":"/decrypt","requestId":"r"},"headers":{"x-wx-skey":"x"},"body":"e30=","isBase64Encoded":true}`,
		`{"httpMethod":"POST","path":"/login","headers":{"content-type":"application/json","x-scf-remote-addr":"203.0.113.30"},"queryString":{"a":["1","2"]},"body":"{\"code\":\"ok-2\"}"}`,
		`{"httpMethod":"GET","path":"/","headers":{"authorization":"Bearer x","x-scf-remote-addr":"not an address"},"requestContext":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		logs := &bytes.Buffer{}
		log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelError}))
		svc := session.NewService(session.Settings{AppID: "wxfuzz", TTL: time.Hour, MaxAge: 2 * time.Hour}, memory.New(nil), fakeWeChat{})
		h := scf.NewHandler(api.All(svc, api.WithLogger(log)))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = functioncontext.NewContext(ctx, &functioncontext.FunctionContext{RequestID: "fuzz"})

		out, err := h.Invoke(ctx, payload)
		if err != nil {
			t.Fatalf("Invoke(%q) returned the error %v; every event must get an answer", payload, err)
		}
		if logs.Len() > 0 {
			t.Fatalf("Invoke(%q) logged an error (a caught panic or a 5xx): %s", payload, logs)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(out, &raw); err != nil {
			t.Fatalf("Invoke(%q) answered %q, which is not JSON: %v", payload, out, err)
		}
		var r scf.Response
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("Invoke(%q) answered %s, not an integrated response: %v", payload, out, err)
		}
		keys := []string{"statusCode", "headers", "body"}
		if !byURL(payload) {
			keys = append(keys, "isBase64Encoded")
		} else if _, ok := raw["isBase64Encoded"]; ok != r.IsBase64Encoded {
			t.Fatalf("Invoke(%q) answered isBase64Encoded %s for a function URL: %s", payload, raw["isBase64Encoded"], out)
		}
		for _, k := range keys {
			if _, ok := raw[k]; !ok {
				t.Fatalf("Invoke(%q) answered without %q: %s", payload, k, out)
			}
		}
		if r.StatusCode < 200 || r.StatusCode >= 500 {
			t.Fatalf("Invoke(%q) answered status %d: %s", payload, r.StatusCode, out)
		}
		body := []byte(r.Body)
		if r.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(r.Body); err != nil {
				t.Fatalf("Invoke(%q) answered a body marked base64 that is not: %s", payload, out)
			}
		}
		if len(body) == 0 {
			return // 204, or a HEAD request
		}
		var e struct {
			Error   apperr.Code `json:"error"`
			Message string      `json:"message"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("Invoke(%q) answered a body that is not JSON: %s", payload, out)
		}
		if r.StatusCode >= 400 && (api.StatusOf(e.Error) != r.StatusCode || e.Message == "") {
			t.Fatalf("Invoke(%q) answered %d with %s, not the contract's error for that status", payload, r.StatusCode, body)
		}
		if r.StatusCode == http.StatusOK && !strings.HasPrefix(r.Headers["Content-Type"], "application/json") {
			t.Fatalf("Invoke(%q) answered 200 with Content-Type %q", payload, r.Headers["Content-Type"])
		}
	})
}

// byURL reports whether payload is a readable function-URL event, answered
// {statusCode, headers, body} (+isBase64Encoded when set); API Gateway
// events, and events that are neither, are answered with all four fields.
func byURL(payload []byte) bool {
	var ev scf.Event
	return json.Unmarshal(payload, &ev) == nil && ev.HTTPMethod != "" && ev.RequestContext == nil
}
