// Package awslambda runs an http.Handler on AWS Lambda behind API Gateway.
//
// It answers these kinds of event, told apart by a few of their fields and
// then read as aws-lambda-go's events types:
//   - HTTP API proxy events, payload format 2.0 (also Lambda function URLs);
//   - REST API (and HTTP API payload 1.0) proxy events;
//   - HTTP API Lambda authorizer events, payload format 2.0, answered with a
//     simple response;
//   - REST API Lambda authorizer events, TOKEN and REQUEST, answered with an
//     IAM policy for the methodArn.
//
// An authorizer event is served as GET /validate carrying the event's
// headers (or token), so the validate function can guard any other route of
// the API without that route's code calling /validate itself.
//
// The adapter only translates envelopes: the handler decides every status,
// header and body. An event it cannot read is served as a stand-in request
// the handler answers 400 invalid_request; it never ends the process.
package awslambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/wxsession/wxsession/shared/platform/internal/envelope"
)

// AuthorizerPath is the route an authorizer event is served as.
const AuthorizerPath = "/validate"

// ErrUnauthorized is what a REST API authorizer returns for a request without
// a live session: API Gateway answers the client 401 Unauthorized when the
// function fails with exactly this message (a Deny policy would be a 403).
var ErrUnauthorized = errors.New("Unauthorized")

// Start serves h on the Lambda Runtime API named by AWS_LAMBDA_RUNTIME_API and
// never returns. On SIGTERM (Lambda sends it before shutting an idle
// environment down) the process logs and exits cleanly.
func Start(h http.Handler) {
	lambda.StartWithOptions(NewHandler(h), lambda.WithEnableSIGTERM(func() {
		slog.Info("SIGTERM: Lambda is shutting this environment down")
		os.Exit(0)
	}))
}

// Handler adapts an http.Handler to lambda.Handler.
type Handler struct {
	h   http.Handler
	log *slog.Logger
}

var _ lambda.Handler = (*Handler)(nil)

// Option adjusts a Handler.
type Option func(*Handler)

// WithLogger sets where the adapter logs unreadable authorizer events
// (slog.Default if unset); everything else is the handler's to log.
func WithLogger(l *slog.Logger) Option { return func(a *Handler) { a.log = l } }

// NewHandler returns a Handler serving API Gateway events through h.
func NewHandler(h http.Handler, opts ...Option) *Handler {
	a := &Handler{h: h}
	for _, o := range opts {
		o(a)
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	return a
}

// probe holds the few fields that tell the kinds of event apart.
type probe struct {
	Version        string `json:"version"`
	Type           string `json:"type"`      // authorizers: TOKEN or REQUEST
	RouteArn       string `json:"routeArn"`  // HTTP API authorizer
	MethodArn      string `json:"methodArn"` // REST API authorizer
	HTTPMethod     string `json:"httpMethod"`
	RequestContext struct {
		// HTTP is set, even to {}, in HTTP API 2.0 and authorizer events.
		HTTP json.RawMessage `json:"http"`
	} `json:"requestContext"`
}

// Invoke answers one invocation. Every failure of an HTTP event, an unreadable
// one included, is an HTTP answer, so API Gateway relays it to the client as
// is. Only authorizers return errors: ErrUnauthorized for a REST API request
// without a live session, and any other error when wxsession itself failed
// (the store is down, say), which API Gateway answers 500.
func (a *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var p probe
	if json.Unmarshal(payload, &p) != nil {
		p = probe{} // not a JSON object: no kind
	}
	switch {
	case p.Version == "" && p.MethodArn != "" && (p.Type == "TOKEN" || p.Type == "REQUEST"):
		return a.authorizeREST(ctx, payload, p.Type == "TOKEN")
	case p.Version == "2.0" && p.Type == "REQUEST" && p.RouteArn != "":
		return a.authorizeHTTPAPI(ctx, payload)
	case p.Version == "2.0" && len(p.RequestContext.HTTP) > 0 && string(p.RequestContext.HTTP) != "null":
		return a.serveHTTPAPI(ctx, payload)
	case p.HTTPMethod != "" && p.Type == "":
		return a.serveRESTAPI(ctx, payload)
	}
	// Status, headers and body are read the same way by REST and HTTP APIs.
	return v2Response(a.bad(ctx, "the Lambda event is not an API Gateway proxy event (HTTP API 2.0 or REST API 1.0) or a Lambda authorizer event"))
}

// serveHTTPAPI serves an HTTP API payload 2.0 event.
func (a *Handler) serveHTTPAPI(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return v2Response(a.bad(ctx, "the HTTP API event could not be read: "+jsonProblem(err)))
	}
	rc := ev.RequestContext
	return v2Response(envelope.ServeEvent(ctx, a.h, envelope.Request{
		Method:    rc.HTTP.Method,
		Path:      stripStage(ev.RawPath, rc.Stage),
		Escaped:   true,
		RawQuery:  ev.RawQueryString,
		Header:    singleHeaders(ev.Headers, ev.Cookies),
		Body:      ev.Body,
		IsBase64:  ev.IsBase64Encoded,
		Host:      rc.DomainName,
		SourceIP:  rc.HTTP.SourceIP,
		RequestID: rc.RequestID,
	}, awsRequestID(ctx)))
}

// serveRESTAPI serves a REST API (payload 1.0) event.
func (a *Handler) serveRESTAPI(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return v1Response(a.bad(ctx, "the REST API event could not be read: "+jsonProblem(err)))
	}
	query := ev.MultiValueQueryStringParameters
	if len(query) == 0 && len(ev.QueryStringParameters) > 0 {
		query = make(map[string][]string, len(ev.QueryStringParameters))
		for k, v := range ev.QueryStringParameters {
			query[k] = []string{v}
		}
	}
	rc := ev.RequestContext
	return v1Response(envelope.ServeEvent(ctx, a.h, envelope.Request{
		Method:    ev.HTTPMethod,
		Path:      ev.Path,
		RawQuery:  url.Values(query).Encode(), // REST API query parameters arrive decoded
		Header:    multiHeaders(ev.MultiValueHeaders, ev.Headers),
		Body:      ev.Body,
		IsBase64:  ev.IsBase64Encoded,
		Host:      rc.DomainName,
		SourceIP:  rc.Identity.SourceIP,
		RequestID: rc.RequestID,
	}, awsRequestID(ctx)))
}

// identity is what a 200 from GET /validate says, as the authorizer context
// hands it to the protected route ($context.authorizer.openid / .unionid).
type identity map[string]any

// validate serves an authorizer event as GET /validate with the event's
// headers, through the same handler as every other request. It returns the
// caller's identity for a live session; for none, nil and the status
// /validate answered (0 when the event describes no request).
func (a *Handler) validate(ctx context.Context, r envelope.Request) (identity, int) {
	r.Method, r.Path = http.MethodGet, AuthorizerPath
	req, err := r.HTTPRequest(ctx)
	if err != nil {
		return nil, 0
	}
	resp := envelope.Serve(a.h, req)
	if resp.Status != http.StatusOK {
		return nil, resp.Status
	}
	var id struct {
		OpenID  string `json:"openid"`
		UnionID string `json:"unionid"`
		AppID   string `json:"appid"`
	}
	if err := json.Unmarshal(resp.Body, &id); err != nil || id.OpenID == "" {
		a.log.WarnContext(ctx, "authorizer: /validate answered 200 without an openid", "aws_request_id", awsRequestID(ctx))
		return nil, resp.Status
	}
	out := identity{"openid": id.OpenID}
	if id.UnionID != "" {
		out["unionid"] = id.UnionID
	}
	if id.AppID != "" {
		out["appid"] = id.AppID
	}
	return out, resp.Status
}

// authorizeHTTPAPI answers an HTTP API Lambda authorizer event (payload 2.0,
// simple response). A refused skey denies the request: API Gateway then
// answers the client 403 without invoking the route. A failure of wxsession
// itself (a 5xx: the store is down, say) is returned as an invocation error
// instead, so the gateway answers 500: the client must not take an outage for
// an expired session and log in again.
func (a *Handler) authorizeHTTPAPI(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2CustomAuthorizerV2Request
	if err := json.Unmarshal(payload, &ev); err != nil {
		a.log.WarnContext(ctx, "unreadable authorizer event", "aws_request_id", awsRequestID(ctx), "err", jsonProblem(err))
		return json.Marshal(events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false})
	}
	rc := ev.RequestContext
	id, status := a.validate(ctx, envelope.Request{
		Header:    singleHeaders(ev.Headers, ev.Cookies),
		Host:      rc.DomainName,
		SourceIP:  rc.HTTP.SourceIP,
		RequestID: rc.RequestID,
	})
	if status >= http.StatusInternalServerError {
		return nil, fmt.Errorf("authorizer: /validate answered %d", status)
	}
	return json.Marshal(events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: id != nil, Context: id})
}

// authorizeREST answers a REST API Lambda authorizer event, TOKEN or REQUEST:
// an IAM policy allowing the methodArn, with the openid as principalId and
// the identity as context, for a live session; ErrUnauthorized (API Gateway
// answers 401) for a missing, unknown or expired skey; an invocation error
// (500) when wxsession itself failed, so an outage never logs a user out.
// Anything else /validate refuses gets a Deny policy (403).
//
// A TOKEN authorizer's token is the value of its token source header: as
// "Bearer <skey>" it is read as an Authorization header, as a bare skey (a
// token source of X-WX-Skey) as that header.
func (a *Handler) authorizeREST(ctx context.Context, payload []byte, token bool) ([]byte, error) {
	var methodArn string
	var r envelope.Request
	if token {
		var ev events.APIGatewayCustomAuthorizerRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			a.log.WarnContext(ctx, "unreadable authorizer event", "aws_request_id", awsRequestID(ctx), "err", jsonProblem(err))
			return nil, ErrUnauthorized
		}
		methodArn, r.Header = ev.MethodArn, http.Header{}
		if strings.Contains(strings.TrimSpace(ev.AuthorizationToken), " ") {
			r.Header.Set("Authorization", ev.AuthorizationToken)
		} else {
			r.Header.Set("X-WX-Skey", ev.AuthorizationToken)
		}
	} else {
		var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			a.log.WarnContext(ctx, "unreadable authorizer event", "aws_request_id", awsRequestID(ctx), "err", jsonProblem(err))
			return nil, ErrUnauthorized
		}
		methodArn = ev.MethodArn
		r = envelope.Request{
			Header:    multiHeaders(ev.MultiValueHeaders, ev.Headers),
			SourceIP:  ev.RequestContext.Identity.SourceIP,
			RequestID: ev.RequestContext.RequestID,
		}
	}
	id, status := a.validate(ctx, r)
	switch {
	case status >= http.StatusInternalServerError:
		return nil, fmt.Errorf("authorizer: /validate answered %d", status)
	case status == http.StatusUnauthorized:
		return nil, ErrUnauthorized
	}
	resp := events.APIGatewayCustomAuthorizerResponse{PrincipalID: "anonymous", PolicyDocument: policy("Deny", methodArn)}
	if id != nil {
		resp = events.APIGatewayCustomAuthorizerResponse{PrincipalID: id["openid"].(string), PolicyDocument: policy("Allow", methodArn), Context: id}
	}
	return json.Marshal(resp)
}

// policy is the IAM policy that allows or denies invoking methodArn.
func policy(effect, methodArn string) events.APIGatewayCustomAuthorizerPolicy {
	return events.APIGatewayCustomAuthorizerPolicy{
		Version:   "2012-10-17",
		Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{methodArn}}},
	}
}

// bad is the handler's answer to an event that is not a readable HTTP
// request.
func (a *Handler) bad(ctx context.Context, msg string) envelope.Response {
	return envelope.Serve(a.h, envelope.BadEvent(ctx, awsRequestID(ctx), msg))
}

// stripStage removes a named stage from an HTTP API rawPath: on a stage other
// than $default, API Gateway includes "/<stage>" in rawPath, but the routes
// the handler serves do not.
func stripStage(rawPath, stage string) string {
	if stage == "" || stage == "$default" {
		return rawPath
	}
	prefix := "/" + stage
	switch {
	case rawPath == prefix:
		return "/"
	case strings.HasPrefix(rawPath, prefix+"/"):
		return rawPath[len(prefix):]
	}
	return rawPath
}

// singleHeaders turns HTTP API headers (one comma-joined value per lower-cased
// name) and its separate cookies list into an http.Header.
func singleHeaders(in map[string]string, cookies []string) http.Header {
	h := make(http.Header, len(in)+1)
	for name, v := range in {
		h.Set(name, v)
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
	return h
}

// multiHeaders turns REST API headers into an http.Header: every value of
// multiValueHeaders when the event has them, else headers.
func multiHeaders(multi map[string][]string, single map[string]string) http.Header {
	h := make(http.Header, len(single))
	if len(multi) > 0 {
		for name, vs := range multi {
			for _, v := range vs {
				h.Add(name, v)
			}
		}
		return h
	}
	for name, v := range single {
		h.Set(name, v)
	}
	return h
}

// v2Response encodes an answer as an HTTP API payload 2.0 response.
func v2Response(r envelope.Response) ([]byte, error) {
	body, b64 := r.EncodedBody()
	return json.Marshal(events.APIGatewayV2HTTPResponse{
		StatusCode:      r.Status,
		Headers:         r.SingleValueHeaders(true),
		Cookies:         r.Header.Values("Set-Cookie"),
		Body:            body,
		IsBase64Encoded: b64,
	})
}

// v1Response encodes an answer as a REST API proxy response. Headers with one
// value go in headers, every header in multiValueHeaders (API Gateway merges
// the two, preferring multiValueHeaders).
func v1Response(r envelope.Response) ([]byte, error) {
	body, b64 := r.EncodedBody()
	single := make(map[string]string, len(r.Header))
	multi := make(map[string][]string, len(r.Header))
	for name, vs := range r.Header {
		if len(vs) == 1 {
			single[name] = vs[0]
		}
		if len(vs) > 0 {
			multi[name] = vs
		}
	}
	return json.Marshal(events.APIGatewayProxyResponse{
		StatusCode:        r.Status,
		Headers:           single,
		MultiValueHeaders: multi,
		Body:              body,
		IsBase64Encoded:   b64,
	})
}

// awsRequestID returns the invocation's request id, if the context has one.
func awsRequestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}

// jsonProblem describes a JSON decoding error without echoing the payload.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field + " has the wrong type"
	}
	return "malformed JSON"
}
