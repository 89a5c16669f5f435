package functions_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/dynamo"
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
// the Runtime API, sharing DynamoDB Local, and sends validate the REST API
// authorizer sample events (TOKEN and REQUEST): an IAM policy allowing the
// methodArn for a live session, "Unauthorized" for an unknown or ended one,
// and a store outage failing the invocation some other way (API Gateway
// answers 500), never a Deny or an Unauthorized that would log users out.
func TestLambdaRESTAuthorizer(t *testing.T) {
	endpoint := storetest.ServerURL(t, "WXSESSION_DYNAMODB_URL")
	table := "wxsession-restauth-" + strings.ToLower(session.NewSkey()[:10])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := dynamo.NewClient(dynamo.ClientOptions{Region: "us-east-1", Endpoint: endpoint, Credentials: aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}})
	if err := dynamo.EnsureTable(ctx, client, table); err != nil {
		t.Fatalf("create table %s: %v", table, err)
	}
	emu, wxBase := newEmulator(t)
	env := func(endpoint string) map[string]string {
		return map[string]string{
			"WX_API_BASE": wxBase, "SESSION_STORE": "dynamodb", "SESSION_TABLE": table,
			"AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_REGION": "us-east-1",
			"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
		}
	}
	login := startLambdaIn(t, lambdaRelease, "login", env(endpoint))
	validate := startLambdaIn(t, lambdaRelease, "validate", env(endpoint))
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

	logout := startLambdaIn(t, lambdaRelease, "logout", env(endpoint))
	logout.http(t, readEvent(t, "lambda/logout-rest.json", skey)).want(t, http.StatusNoContent, "")
	decodeRESTAuthorizer(t, validate.call(t, readEvent(t, "lambda/authorizer-token.json", skey))).unauthorized(t, "after logout")

	t.Run("store outage", func(t *testing.T) {
		down := startLambdaIn(t, lambdaRelease, "validate", env("http://127.0.0.1:"+freePort(t)))
		for _, ev := range []string{"lambda/authorizer-token.json", "lambda/authorizer-request.json"} {
			a := decodeRESTAuthorizer(t, down.call(t, readEvent(t, ev, map[string]string{"SKEY": session.NewSkey()})))
			if a.errorMsg == "" || a.errorMsg == "Unauthorized" {
				t.Errorf("%s with the store down: got error %q policy %+v, want an invocation error other than Unauthorized", ev, a.errorMsg, a.policy)
			}
		}
		down.proc.alive(t)
	})
}
