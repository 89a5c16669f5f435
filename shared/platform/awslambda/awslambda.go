// Package awslambda runs an http.Handler on AWS Lambda behind API Gateway.
//
// It answers three kinds of event, told apart by their shape:
//   - HTTP API proxy events, payload format 2.0;
//   - REST API (and HTTP API payload 1.0) proxy events;
//   - HTTP API Lambda authorizer events, payload format 2.0, answered with a
//     simple response. The event is served as GET /validate carrying the
//     event's headers, so the validate function can guard any other route of
//     the API without that route's code calling /validate itself.
//
// The adapter only translates envelopes: the handler decides every status,
// header and body. An event it cannot read is answered 400 invalid_request in
// the contract's JSON shape; it never ends the process.
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

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/platform/internal/envelope"
)

// AuthorizerPath is the route an authorizer event is served as.
const AuthorizerPath = "/validate"

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

// WithLogger sets where the adapter logs unreadable events and panics
// (slog.Default if unset).
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

// eventKind is the shape of an invocation payload.
type eventKind int

const (
	kindUnknown    eventKind = iota
	kindHTTPAPI              // HTTP API, payload 2.0
	kindRESTAPI              // REST API, or HTTP API payload 1.0
	kindAuthorizer           // HTTP API Lambda authorizer, payload 2.0
)

// probe holds just the fields that tell the event kinds apart.
type probe struct {
	Version        string `json:"version"`
	Type           string `json:"type"`
	RouteArn       string `json:"routeArn"`
	HTTPMethod     string `json:"httpMethod"`
	RequestContext struct {
		HTTP json.RawMessage `json:"http"`
	} `json:"requestContext"`
}

// kindOf tells which kind of event payload is. The authorizer is checked
// first: its payload also has version 2.0 and requestContext.http.
func kindOf(payload []byte) eventKind {
	var p probe
	if json.Unmarshal(payload, &p) != nil {
		return kindUnknown
	}
	switch {
	case p.Type == "REQUEST" && p.RouteArn != "" && p.Version == "2.0":
		return kindAuthorizer
	case p.Version == "2.0" && len(p.RequestContext.HTTP) > 0 && string(p.RequestContext.HTTP) != "null":
		return kindHTTPAPI
	case p.HTTPMethod != "" && p.Type == "":
		return kindRESTAPI
	}
	return kindUnknown
}

// Invoke answers one invocation. It returns an error only when the answer
// cannot be encoded, which does not happen; every other failure is an HTTP
// answer, so API Gateway relays it to the client as is.
func (a *Handler) Invoke(ctx context.Context, payload []byte) (out []byte, err error) {
	kind := kindOf(payload)
	defer func() {
		// The handler's panics are caught by envelope.Serve; this guards the
		// adapter's own code.
		if p := recover(); p != nil {
			a.log.ErrorContext(ctx, "lambda adapter panicked", "panic", p, "aws_request_id", awsRequestID(ctx))
			if kind == kindAuthorizer {
				out, err = json.Marshal(events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false})
				return
			}
			out, err = v2Response(envelope.Error(http.StatusInternalServerError, apperr.Internal, "internal error", awsRequestID(ctx)))
		}
	}()
	switch kind {
	case kindHTTPAPI:
		return a.serveHTTPAPI(ctx, payload)
	case kindRESTAPI:
		return a.serveRESTAPI(ctx, payload)
	case kindAuthorizer:
		return a.authorize(ctx, payload)
	}
	a.log.WarnContext(ctx, "unreadable Lambda event", "aws_request_id", awsRequestID(ctx), "bytes", len(payload))
	// Status, headers and body are read the same way by REST and HTTP APIs.
	return v2Response(badEvent(ctx, "the Lambda event is not an API Gateway proxy event (HTTP API 2.0 or REST API 1.0) or an HTTP API authorizer event"))
}

// serveHTTPAPI serves an HTTP API payload 2.0 event.
func (a *Handler) serveHTTPAPI(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return v2Response(badEvent(ctx, "the HTTP API event could not be read: "+jsonProblem(err)))
	}
	body, err := envelope.DecodeBody(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return v2Response(badEvent(ctx, err.Error()))
	}
	rc := ev.RequestContext
	req := envelope.Request{
		Method:    rc.HTTP.Method,
		Path:      stripStage(ev.RawPath, rc.Stage),
		Escaped:   true,
		RawQuery:  ev.RawQueryString,
		Header:    singleHeaders(ev.Headers, ev.Cookies),
		Body:      body,
		Host:      rc.DomainName,
		SourceIP:  rc.HTTP.SourceIP,
		RequestID: rc.RequestID,
	}
	hr, err := req.HTTPRequest(ctx)
	if err != nil {
		return v2Response(badEvent(ctx, err.Error()))
	}
	return v2Response(envelope.Serve(a.h, hr, a.log))
}

// serveRESTAPI serves a REST API (payload 1.0) event.
func (a *Handler) serveRESTAPI(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return v1Response(badEvent(ctx, "the REST API event could not be read: "+jsonProblem(err)))
	}
	body, err := envelope.DecodeBody(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return v1Response(badEvent(ctx, err.Error()))
	}
	header := http.Header{}
	if len(ev.MultiValueHeaders) > 0 {
		for name, vs := range ev.MultiValueHeaders {
			for _, v := range vs {
				header.Add(name, v)
			}
		}
	} else {
		for name, v := range ev.Headers {
			header.Set(name, v)
		}
	}
	query := ev.MultiValueQueryStringParameters
	if len(query) == 0 && len(ev.QueryStringParameters) > 0 {
		query = make(map[string][]string, len(ev.QueryStringParameters))
		for k, v := range ev.QueryStringParameters {
			query[k] = []string{v}
		}
	}
	rc := ev.RequestContext
	req := envelope.Request{
		Method:    ev.HTTPMethod,
		Path:      ev.Path,
		RawQuery:  encodeQuery(query),
		Header:    header,
		Body:      body,
		Host:      rc.DomainName,
		SourceIP:  rc.Identity.SourceIP,
		RequestID: rc.RequestID,
	}
	hr, err := req.HTTPRequest(ctx)
	if err != nil {
		return v1Response(badEvent(ctx, err.Error()))
	}
	return v1Response(envelope.Serve(a.h, hr, a.log))
}

// authorizerIdentity is what a 200 from GET /validate says.
type authorizerIdentity struct {
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid"`
}

// authorize answers an HTTP API Lambda authorizer event (payload 2.0, simple
// response). The event is served as GET /validate with the event's headers,
// through the same handler as every other request; a 200 with an openid
// authorizes the request and hands the openid (and unionid) to the protected
// route as $context.authorizer.openid / .unionid. A refused skey denies it:
// API Gateway then answers the client 403 without invoking the route. A
// failure of wxsession itself (a 5xx: the store is down, say) is returned as
// an invocation error instead, so the gateway answers 500: the client must not
// take an outage for an expired session and log in again.
func (a *Handler) authorize(ctx context.Context, payload []byte) ([]byte, error) {
	deny := func() ([]byte, error) {
		return json.Marshal(events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false})
	}
	var ev events.APIGatewayV2CustomAuthorizerV2Request
	if err := json.Unmarshal(payload, &ev); err != nil {
		a.log.WarnContext(ctx, "unreadable authorizer event", "aws_request_id", awsRequestID(ctx), "err", jsonProblem(err))
		return deny()
	}
	rc := ev.RequestContext
	req := envelope.Request{
		Method:    http.MethodGet,
		Path:      AuthorizerPath,
		Header:    singleHeaders(ev.Headers, ev.Cookies),
		Host:      rc.DomainName,
		SourceIP:  rc.HTTP.SourceIP,
		RequestID: rc.RequestID,
	}
	hr, err := req.HTTPRequest(ctx)
	if err != nil {
		return deny()
	}
	resp := envelope.Serve(a.h, hr, a.log)
	if resp.Status >= http.StatusInternalServerError {
		return nil, fmt.Errorf("authorizer: /validate answered %d", resp.Status)
	}
	if resp.Status != http.StatusOK {
		return deny()
	}
	var id authorizerIdentity
	if err := json.Unmarshal(resp.Body, &id); err != nil || id.OpenID == "" {
		a.log.WarnContext(ctx, "authorizer: /validate answered 200 without an openid", "aws_request_id", awsRequestID(ctx))
		return deny()
	}
	authCtx := map[string]any{"openid": id.OpenID}
	if id.UnionID != "" {
		authCtx["unionid"] = id.UnionID
	}
	return json.Marshal(events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: authCtx})
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

// encodeQuery encodes REST API query parameters, which arrive decoded.
func encodeQuery(q map[string][]string) string {
	if len(q) == 0 {
		return ""
	}
	return url.Values(q).Encode()
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
	single := make(map[string]string)
	for name, vs := range r.Header {
		if len(vs) == 1 {
			single[name] = vs[0]
		}
	}
	return json.Marshal(events.APIGatewayProxyResponse{
		StatusCode:        r.Status,
		Headers:           single,
		MultiValueHeaders: r.MultiValueHeaders(),
		Body:              body,
		IsBase64Encoded:   b64,
	})
}

// badEvent is the 400 answer to an event that is not a readable HTTP request.
func badEvent(ctx context.Context, msg string) envelope.Response {
	return envelope.Error(http.StatusBadRequest, apperr.InvalidRequest, msg, awsRequestID(ctx))
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
