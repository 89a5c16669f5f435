// Package scf runs an http.Handler on Tencent Cloud's SCF Go1 runtime, behind
// a function URL (函数 URL) or, where one is still configured, an API Gateway
// trigger with integrated response enabled.
//
// The Go1 runtime talks net/rpc to the function process on
// _LAMBDA_SERVER_PORT (scf-go-lib's cloudfunction package). Each invocation
// carries an HTTP event, served through the handler:
//   - a function-URL event (the API gateway event without requestContext,
//     headerParameters, pathParameters, queryStringParameters and
//     isBase64Encoded; the client's address in the x-scf-remote-addr header),
//     answered {"statusCode", "headers", "body"}, plus "isBase64Encoded" when
//     the body is base64;
//   - an API Gateway event, answered {"isBase64Encoded", "statusCode",
//     "headers", "body"}.
//
// The same binary also runs as a Tencent Web Function: there the runtime
// starts it through scf_bootstrap as a plain HTTP server on port 9000, and
// this package is not involved.
package scf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tencentyun/scf-go-lib/cloudfunction"
	"github.com/tencentyun/scf-go-lib/functioncontext"

	"github.com/wxsession/wxsession/shared/platform/internal/envelope"
)

// Start serves h to the SCF runtime on _LAMBDA_SERVER_PORT and never returns.
//
// It hands scf-go-lib a cloudfunction.Handler, which receives the raw event
// bytes, rather than a typed function to cloudfunction.Start: with a typed
// function the library decodes the event itself and turns an undecodable one
// into an invocation error, where the contract wants a 400 answer.
func Start(h http.Handler) {
	cloudfunction.StartHandler(NewHandler(h))
}

// Event is the event a function URL or an API Gateway trigger sends. (It is
// not scf-go-lib's events.APIGatewayRequest, which drops a query key sent as
// true, refuses header arrays and has no isBase64Encoded.)
type Event struct {
	HTTPMethod string `json:"httpMethod"`
	// Path is the path the client requested (the API's own path pattern is
	// in RequestContext.Path).
	Path string `json:"path"`
	// Headers arrive with lower-cased names.
	Headers Values `json:"headers"`
	// QueryString holds the query; a key sent without a value ("?debug")
	// arrives as true.
	QueryString     Values `json:"queryString"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
	// RequestContext is API Gateway's; a function-URL event has none.
	RequestContext *RequestContext `json:"requestContext"`
}

// RequestContext describes the API and the request as API Gateway saw them.
type RequestContext struct {
	ServiceID  string `json:"serviceId"`
	Path       string `json:"path"`
	HTTPMethod string `json:"httpMethod"`
	RequestID  string `json:"requestId"`
	Stage      string `json:"stage"`
	SourceIP   string `json:"sourceIp"`
}

// Values is a JSON object of strings as SCF sends headers and queries: each
// value may be a string, an array of strings, or true (a key without a value);
// numbers are kept as written, and null or false drop the key.
type Values map[string][]string

// UnmarshalJSON decodes any of the value shapes SCF sends.
func (v *Values) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*v = nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return errors.New("not a JSON object")
	}
	out := make(Values, len(raw))
	for k, r := range raw {
		vs, err := values(r)
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		if vs != nil {
			out[k] = vs
		}
	}
	*v = out
	return nil
}

// values decodes one value of a Values object.
func values(r json.RawMessage) ([]string, error) {
	var x any
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	switch x := x.(type) {
	case nil:
		return nil, nil
	case bool:
		if x {
			return []string{""}, nil
		}
		return nil, nil
	case string:
		return []string{x}, nil
	case json.Number:
		return []string{x.String()}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			switch e := e.(type) {
			case string:
				out = append(out, e)
			case json.Number:
				out = append(out, e.String())
			case bool:
				out = append(out, strconv.FormatBool(e))
			default:
				return nil, errors.New("array holds a value that is not a string")
			}
		}
		return out, nil
	}
	return nil, errors.New("value is neither a string nor an array of strings")
}

// Response is an integrated response: API Gateway answers the client with
// this status, these headers and this body.
type Response struct {
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
}

// URLResponse is the answer to a function-URL event: the function URL
// answers the client with this status, these headers and this body, marked
// base64 only when it is.
type URLResponse struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded,omitempty"`
}

// Handler adapts an http.Handler to scf-go-lib's cloudfunction.Handler.
type Handler struct {
	h http.Handler
}

var _ cloudfunction.Handler = (*Handler)(nil)

// NewHandler returns a Handler serving SCF HTTP events through h.
func NewHandler(h http.Handler) *Handler { return &Handler{h: h} }

// Invoke answers one invocation. Every failure, an unreadable event included,
// is an HTTP answer; the error is only for an answer that cannot be encoded,
// which does not happen.
func (a *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return encode(a.bad(ctx, "the SCF event is not an HTTP event: "+problem(err)), false)
	}
	if ev.HTTPMethod == "" {
		return encode(a.bad(ctx, "the SCF event is not an HTTP event: it has no httpMethod"), false)
	}
	header := http.Header{}
	for name, vs := range ev.Headers {
		for _, v := range vs {
			header.Add(name, v)
		}
	}
	// A function URL sends the API gateway event without requestContext; the
	// client's address is then in x-scf-remote-addr, which the function URL
	// sets. Through API Gateway, a client could send that header itself.
	byURL := ev.RequestContext == nil
	rc := RequestContext{}
	if byURL {
		rc.SourceIP = header.Get("X-Scf-Remote-Addr")
	} else {
		rc = *ev.RequestContext
	}
	path := ev.Path
	if path == "" {
		path = rc.Path
	}
	requestID := rc.RequestID
	if requestID == "" {
		requestID = scfRequestID(ctx)
	}
	return encode(envelope.ServeEvent(ctx, a.h, envelope.Request{
		Method:    ev.HTTPMethod,
		Path:      path, // as received: the handler answers its route at the paths a custom domain produces
		RawQuery:  url.Values(ev.QueryString).Encode(),
		Header:    header,
		Body:      ev.Body,
		IsBase64:  ev.IsBase64Encoded,
		SourceIP:  rc.SourceIP,
		RequestID: requestID,
	}, scfRequestID(ctx)), byURL)
}

// bad is the handler's answer to an event that is not a readable HTTP
// request.
func (a *Handler) bad(ctx context.Context, msg string) envelope.Response {
	return envelope.Serve(a.h, envelope.BadEvent(ctx, scfRequestID(ctx), msg))
}

// encode writes an answer as a function URL (byURL) or API Gateway wants it.
// SCF takes one value per header, so repeated headers are joined with ", ".
func encode(r envelope.Response, byURL bool) ([]byte, error) {
	body, b64 := r.EncodedBody()
	headers := r.SingleValueHeaders(false)
	if byURL {
		return json.Marshal(URLResponse{StatusCode: r.Status, Headers: headers, Body: body, IsBase64Encoded: b64})
	}
	return json.Marshal(Response{IsBase64Encoded: b64, StatusCode: r.Status, Headers: headers, Body: body})
}

// scfRequestID returns the invocation's request id, if the context has one.
func scfRequestID(ctx context.Context) string {
	if fc, ok := functioncontext.FromContext(ctx); ok {
		return fc.RequestID
	}
	return ""
}

// problem describes a decoding error without echoing the payload.
func problem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "malformed JSON"
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return te.Field + " has the wrong type"
		}
		return "not a JSON object"
	}
	return err.Error()
}
