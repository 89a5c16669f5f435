package awslambda_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/platform/awslambda"
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

// FuzzLambdaEvent feeds arbitrary invocation payloads to the Lambda adapter in
// front of the real handlers (memory store, a WeChat that needs no network).
// Whatever the payload, Invoke must answer without a panic anywhere (an
// error-level log line means one was caught) and without an error, but for
// the "Unauthorized" a REST API authorizer answers an skey no session holds;
// with a simple authorizer response that refuses, an IAM policy that denies,
// or a proxy response whose status is never a 5xx (nothing here can fail but
// a bug) and whose body, if any, is the JSON the contract promises.
func FuzzLambdaEvent(f *testing.F) {
	for _, seed := range []string{
		`{"version":"2.0","rawPath":"/login","headers":{"content-type":"application/json"},"requestContext":{"http":{"method":"POST"}},"body":"{\"code\":\"ok-1\"}"}`,
		`{"version":"2.0","rawPath":"/validate","headers":{"authorization":"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"requestContext":{"http":{"method":"GET"},"stage":"prod"}}`,
		`{"httpMethod":"POST","path":"/decrypt","multiValueHeaders":{"x-wx-skey":["a","b"]},"body":"e30=","isBase64Encoded":true}`,
		`{"version":"2.0","type":"REQUEST","routeArn":"arn:x","headers":{"authorization":"bearer x"},"requestContext":{"http":{"method":"GET"}}}`,
		`{"type":"TOKEN","authorizationToken":"Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","methodArn":"arn:aws:execute-api:x/prod/GET/me"}`,
		`{"type":"REQUEST","methodArn":"arn:x","headers":{"X-WX-Skey":"x"},"multiValueHeaders":null,"requestContext":{"identity":null}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		logs := &bytes.Buffer{}
		log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelError}))
		svc := session.NewService(session.Settings{AppID: "wxfuzz", TTL: time.Hour, MaxAge: 2 * time.Hour}, memory.New(nil), fakeWeChat{})
		h := awslambda.NewHandler(api.All(svc, api.WithLogger(log)), awslambda.WithLogger(log))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "fuzz"})

		out, err := h.Invoke(ctx, payload)
		if errors.Is(err, awslambda.ErrUnauthorized) {
			return
		}
		if err != nil {
			t.Fatalf("Invoke(%q) returned the error %v; every event must get an answer", payload, err)
		}
		if logs.Len() > 0 {
			t.Fatalf("Invoke(%q) logged an error (a caught panic or a 5xx): %s", payload, logs)
		}
		checkLambdaAnswer(t, payload, out)
	})
}

// checkLambdaAnswer checks that out is a simple authorizer response or a
// proxy response carrying a 2xx or 4xx and a JSON body.
func checkLambdaAnswer(t *testing.T, payload, out []byte) {
	t.Helper()
	var ans struct {
		IsAuthorized    *bool             `json:"isAuthorized"`
		PolicyDocument  *json.RawMessage  `json:"policyDocument"`
		StatusCode      int               `json:"statusCode"`
		Headers         map[string]string `json:"headers"`
		Body            string            `json:"body"`
		IsBase64Encoded bool              `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(out, &ans); err != nil {
		t.Fatalf("Invoke(%q) answered %q, which is not JSON: %v", payload, out, err)
	}
	if ans.IsAuthorized != nil {
		if *ans.IsAuthorized {
			t.Fatalf("Invoke(%q) authorized a request with no session behind it: %s", payload, out)
		}
		return
	}
	if ans.PolicyDocument != nil {
		if !strings.Contains(string(*ans.PolicyDocument), `"Deny"`) {
			t.Fatalf("Invoke(%q) allowed a request with no session behind it: %s", payload, out)
		}
		return
	}
	if ans.StatusCode < 200 || ans.StatusCode >= 500 {
		t.Fatalf("Invoke(%q) answered status %d: %s", payload, ans.StatusCode, out)
	}
	body := []byte(ans.Body)
	if ans.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ans.Body); err != nil {
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
	if ans.StatusCode >= 400 && (api.StatusOf(e.Error) != ans.StatusCode || e.Message == "") {
		t.Fatalf("Invoke(%q) answered %d with %s, not the contract's error for that status", payload, ans.StatusCode, body)
	}
	if ans.StatusCode == http.StatusOK && !strings.HasPrefix(ans.Headers["Content-Type"], "application/json") {
		t.Fatalf("Invoke(%q) answered 200 with Content-Type %q", payload, ans.Headers["Content-Type"])
	}
}
