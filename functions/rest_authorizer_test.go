package functions_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// restAuthorizerAnswer is what the validate binary answered a REST API
// authorizer event: an IAM policy, or the invocation error it failed with.
type restAuthorizerAnswer struct {
	policy   events.APIGatewayCustomAuthorizerResponse
	errorMsg string // "" when it answered a policy
}

func decodeRESTAuthorizer(t *testing.T, res lambdaResult) restAuthorizerAnswer {
	t.Helper()
	var a restAuthorizerAnswer
	if res.isError {
		var e struct {
			ErrorMessage string `json:"errorMessage"`
		}
		if err := json.Unmarshal(res.body, &e); err != nil || e.ErrorMessage == "" {
			t.Fatalf("the invocation error is not the Runtime API's {errorMessage, errorType}: %s", res.body)
		}
		a.errorMsg = e.ErrorMessage
		return a
	}
	if err := json.Unmarshal(res.body, &a.policy); err != nil || len(a.policy.PolicyDocument.Statement) != 1 {
		t.Fatalf("the answer is not an authorizer policy: %s", res.body)
	}
	return a
}

// unauthorized checks that the authorizer failed with "Unauthorized", which
// API Gateway answers the client 401 (a Deny policy would be a 403).
func (a restAuthorizerAnswer) unauthorized(t *testing.T, what string) {
	t.Helper()
	if a.errorMsg != "Unauthorized" {
		t.Errorf("%s: got error %q policy %+v, want the error Unauthorized", what, a.errorMsg, a.policy)
	}
}

// TestLambdaRESTAuthorizer runs the built login and validate binaries under
// the Runtime API, sharing redis-server, and sends validate the REST API
// authorizer sample events (TOKEN and REQUEST): an IAM policy allowing the
// methodArn for a live session, "Unauthorized" for an unknown or ended one,
// and a store outage failing the invocation some other way (API Gateway
// answers 500), never a Deny or an Unauthorized that would log users out.
func TestLambdaRESTAuthorizer(t *testing.T) {
	redisURL := storetest.ServerURL(t, "WXSESSION_REDIS_URL")
	emu, wxBase := newEmulator(t)
	env := func(redisURL string) map[string]string {
		return map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "redis", "REDIS_URL": redisURL}
	}
	login := startLambda(t, "login", env(redisURL))
	validate := startLambda(t, "validate", env(redisURL))
	openID := emu.OpenID(user)
	skey := map[string]string{"SKEY": login.http(t, readEvent(t, "lambda/login-rest.json", map[string]string{"CODE": emu.Code(user)})).loginSkey(t, openID)}

	for _, ev := range []string{"lambda/authorizer-token.json", "lambda/authorizer-request.json"} {
		payload := readEvent(t, ev, skey)
		var methodArn struct{ MethodArn string }
		_ = json.Unmarshal(payload, &methodArn)
		p := decodeRESTAuthorizer(t, validate.call(t, payload)).policy
		st := p.PolicyDocument.Statement[0]
		if st.Effect != "Allow" || len(st.Resource) != 1 || st.Resource[0] != methodArn.MethodArn || p.PrincipalID != openID ||
			p.Context["openid"] != openID || p.Context["unionid"] == nil {
			t.Errorf("%s with a live session: got %+v, want Allow on %s for %s with openid and unionid in the context", ev, p, methodArn.MethodArn, openID)
		}
		decodeRESTAuthorizer(t, validate.call(t, readEvent(t, ev, map[string]string{"SKEY": session.NewSkey()}))).unauthorized(t, ev+" with an unknown skey")
		decodeRESTAuthorizer(t, validate.call(t, readEvent(t, ev, map[string]string{"SKEY": ""}))).unauthorized(t, ev+" without an skey")
	}

	logout := startLambda(t, "logout", env(redisURL))
	logout.http(t, readEvent(t, "lambda/logout-rest.json", skey)).want(t, http.StatusNoContent, "")
	decodeRESTAuthorizer(t, validate.call(t, readEvent(t, "lambda/authorizer-token.json", skey))).unauthorized(t, "after logout")

	t.Run("store outage", func(t *testing.T) {
		down := startLambda(t, "validate", env("redis://127.0.0.1:"+freePort(t)+"/0"))
		for _, ev := range []string{"lambda/authorizer-token.json", "lambda/authorizer-request.json"} {
			a := decodeRESTAuthorizer(t, down.call(t, readEvent(t, ev, map[string]string{"SKEY": session.NewSkey()})))
			if a.errorMsg == "" || a.errorMsg == "Unauthorized" {
				t.Errorf("%s with the store down: got error %q policy %+v, want an invocation error other than Unauthorized", ev, a.errorMsg, a.policy)
			}
		}
		down.proc.alive(t)
	})
}
