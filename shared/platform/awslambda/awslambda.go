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
	"runtime"
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
//
// Unless GOMAXPROCS is set, it runs Go on one P: Lambda hands an environment
// one invocation at a time, so a second P never runs request work in
// parallel; it only adds hand-offs between threads and spinning while the
// store call is in flight. One P cut validate's warm duration by about a
// fifth and its cold start's CPU time by about a millisecond (make bench).
// Lambda shows a function at least two vCPUs whatever its memory setting
// (which throttles them instead), and Go's default follows what it sees.
func Start(h http.Handler) {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
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

// event holds every field the adapter reads from any of the three event
// kinds, so that an invocation is decoded in one pass: the kind is told from
// the same struct the request is then built from. (Decoding a probe first and
// then the kind's full aws-lambda-go type read each event twice, and the
// JSON decoding was most of the adapter's cost.)
type event struct {
	Version  string `json:"version"`
	Type     string `json:"type"`     // the authorizer's "REQUEST"
	RouteArn string `json:"routeArn"` // the authorizer's

	// HTTP API 2.0 and the authorizer
	RawPath        string            `json:"rawPath"`
	RawQueryString string            `json:"rawQueryString"`
	Cookies        []string          `json:"cookies"`
	Headers        map[string]string `json:"headers"` // REST API 1.0 too

	// REST API 1.0
	HTTPMethod                      string              `json:"httpMethod"`
	Path                            string              `json:"path"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`

	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`

	RequestContext struct {
		DomainName string `json:"domainName"`
		RequestID  string `json:"requestId"`
		Stage      string `json:"stage"`
		// HTTP is set, even to {}, in HTTP API 2.0 and authorizer events.
		HTTP *struct {
			Method   string `json:"method"`
			SourceIP string `json:"sourceIp"`
		} `json:"http"`
		Identity struct {
			SourceIP string `json:"sourceIp"` // REST API 1.0
		} `json:"identity"`
	} `json:"requestContext"`
}

// kind tells which kind of event ev is. The authorizer is checked first: its
// payload also has version 2.0 and requestContext.http.
func (ev *event) kind() eventKind {
	switch {
	case ev.Type == "REQUEST" && ev.RouteArn != "" && ev.Version == "2.0":
		return kindAuthorizer
	case ev.Version == "2.0" && ev.RequestContext.HTTP != nil:
		return kindHTTPAPI
	case ev.HTTPMethod != "" && ev.Type == "":
		return kindRESTAPI
	}
	return kindUnknown
}

// decode reads an invocation payload. One pass into event serves every
// well-formed event. A payload that does not fit it (a field of an
// unexpected type) is told apart by its kind fields alone and read as that
// kind's aws-lambda-go type, so the error, if any, names the field.
func decode(payload []byte) (event, eventKind, error) {
	var ev event
	if json.Unmarshal(payload, &ev) == nil {
		return ev, ev.kind(), nil
	}
	ev = event{}
	var p struct {
		Version        string `json:"version"`
		Type           string `json:"type"`
		RouteArn       string `json:"routeArn"`
		HTTPMethod     string `json:"httpMethod"`
		RequestContext struct {
			HTTP json.RawMessage `json:"http"`
		} `json:"requestContext"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return ev, kindUnknown, nil
	}
	var err error
	switch {
	case p.Type == "REQUEST" && p.RouteArn != "" && p.Version == "2.0":
		var au events.APIGatewayV2CustomAuthorizerV2Request
		if err = json.Unmarshal(payload, &au); err == nil {
			ev.Headers, ev.Cookies = au.Headers, au.Cookies
			ev.setContext(au.RequestContext.DomainName, au.RequestContext.RequestID, au.RequestContext.Stage)
			ev.setHTTP(au.RequestContext.HTTP.Method, au.RequestContext.HTTP.SourceIP)
		}
		return ev, kindAuthorizer, err
	case p.Version == "2.0" && len(p.RequestContext.HTTP) > 0 && string(p.RequestContext.HTTP) != "null":
		var v2 events.APIGatewayV2HTTPRequest
		if err = json.Unmarshal(payload, &v2); err == nil {
			ev.RawPath, ev.RawQueryString, ev.Headers, ev.Cookies = v2.RawPath, v2.RawQueryString, v2.Headers, v2.Cookies
			ev.Body, ev.IsBase64Encoded = v2.Body, v2.IsBase64Encoded
			ev.setContext(v2.RequestContext.DomainName, v2.RequestContext.RequestID, v2.RequestContext.Stage)
			ev.setHTTP(v2.RequestContext.HTTP.Method, v2.RequestContext.HTTP.SourceIP)
		}
		return ev, kindHTTPAPI, err
	case p.HTTPMethod != "" && p.Type == "":
		var v1 events.APIGatewayProxyRequest
		if err = json.Unmarshal(payload, &v1); err == nil {
			ev.HTTPMethod, ev.Path, ev.Headers, ev.MultiValueHeaders = v1.HTTPMethod, v1.Path, v1.Headers, v1.MultiValueHeaders
			ev.QueryStringParameters, ev.MultiValueQueryStringParameters = v1.QueryStringParameters, v1.MultiValueQueryStringParameters
			ev.Body, ev.IsBase64Encoded = v1.Body, v1.IsBase64Encoded
			ev.setContext(v1.RequestContext.DomainName, v1.RequestContext.RequestID, v1.RequestContext.Stage)
			ev.RequestContext.Identity.SourceIP = v1.RequestContext.Identity.SourceIP
		}
		return ev, kindRESTAPI, err
	}
	return ev, kindUnknown, nil
}

// sourceIP is the client address an HTTP API or authorizer event carries; an
// authorizer event may come without requestContext.http.
func (ev *event) sourceIP() string {
	if ev.RequestContext.HTTP == nil {
		return ""
	}
	return ev.RequestContext.HTTP.SourceIP
}

func (ev *event) setContext(domainName, requestID, stage string) {
	ev.RequestContext.DomainName, ev.RequestContext.RequestID, ev.RequestContext.Stage = domainName, requestID, stage
}

func (ev *event) setHTTP(method, sourceIP string) {
	ev.RequestContext.HTTP = &struct {
		Method   string `json:"method"`
		SourceIP string `json:"sourceIp"`
	}{method, sourceIP}
}

// Invoke answers one invocation. It returns an error only when the answer
// cannot be encoded, which does not happen; every other failure is an HTTP
// answer, so API Gateway relays it to the client as is.
func (a *Handler) Invoke(ctx context.Context, payload []byte) (out []byte, err error) {
	kind := kindUnknown
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
	ev, kind, decodeErr := decode(payload)
	switch kind {
	case kindHTTPAPI:
		if decodeErr != nil {
			return v2Response(badEvent(ctx, "the HTTP API event could not be read: "+jsonProblem(decodeErr)))
		}
		return a.serveHTTPAPI(ctx, &ev)
	case kindRESTAPI:
		if decodeErr != nil {
			return v1Response(badEvent(ctx, "the REST API event could not be read: "+jsonProblem(decodeErr)))
		}
		return a.serveRESTAPI(ctx, &ev)
	case kindAuthorizer:
		if decodeErr != nil {
			a.log.WarnContext(ctx, "unreadable authorizer event", "aws_request_id", awsRequestID(ctx), "err", jsonProblem(decodeErr))
			return denied()
		}
		return a.authorize(ctx, &ev)
	}
	a.log.WarnContext(ctx, "unreadable Lambda event", "aws_request_id", awsRequestID(ctx), "bytes", len(payload))
	// Status, headers and body are read the same way by REST and HTTP APIs.
	return v2Response(badEvent(ctx, "the Lambda event is not an API Gateway proxy event (HTTP API 2.0 or REST API 1.0) or an HTTP API authorizer event"))
}

// serveHTTPAPI serves an HTTP API payload 2.0 event.
func (a *Handler) serveHTTPAPI(ctx context.Context, ev *event) ([]byte, error) {
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
		SourceIP:  ev.sourceIP(),
		RequestID: rc.RequestID,
	}
	hr, err := req.HTTPRequest(ctx)
	if err != nil {
		return v2Response(badEvent(ctx, err.Error()))
	}
	return v2Response(envelope.Serve(a.h, hr, a.log))
}

// serveRESTAPI serves a REST API (payload 1.0) event.
func (a *Handler) serveRESTAPI(ctx context.Context, ev *event) ([]byte, error) {
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
func (a *Handler) authorize(ctx context.Context, ev *event) ([]byte, error) {
	deny := denied
	rc := ev.RequestContext
	req := envelope.Request{
		Method:    http.MethodGet,
		Path:      AuthorizerPath,
		Header:    singleHeaders(ev.Headers, ev.Cookies),
		Host:      rc.DomainName,
		SourceIP:  ev.sourceIP(), // an authorizer event is told by its type, not by requestContext.http
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

// denied is the simple authorizer response that refuses the request.
func denied() ([]byte, error) {
	return json.Marshal(events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false})
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
