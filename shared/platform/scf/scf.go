// Package scf runs an http.Handler on Tencent Cloud's SCF Go1 runtime, behind
// an API Gateway trigger with integrated response enabled.
//
// The Go1 runtime talks net/rpc to the function process on
// _LAMBDA_SERVER_PORT (scf-go-lib's cloudfunction package); each invocation
// carries an API Gateway event, which is served through the handler and
// answered as {"isBase64Encoded", "statusCode", "headers", "body"}.
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
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/tencentyun/scf-go-lib/cloudfunction"
	"github.com/tencentyun/scf-go-lib/functioncontext"

	"github.com/wxsession/wxsession/shared/apperr"
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

// Event is the event an SCF API Gateway trigger sends.
type Event struct {
	HTTPMethod string `json:"httpMethod"`
	// Path is the path the client requested (the API's own path pattern is
	// in RequestContext.Path).
	Path string `json:"path"`
	// Headers arrive with lower-cased names.
	Headers Values `json:"headers"`
	// QueryString holds the query; a key sent without a value ("?debug")
	// arrives as true.
	QueryString     Values         `json:"queryString"`
	Body            string         `json:"body"`
	IsBase64Encoded bool           `json:"isBase64Encoded"`
	RequestContext  RequestContext `json:"requestContext"`
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

// Handler adapts an http.Handler to scf-go-lib's cloudfunction.Handler.
type Handler struct {
	h   http.Handler
	log *slog.Logger
}

var _ cloudfunction.Handler = (*Handler)(nil)

// Option adjusts a Handler.
type Option func(*Handler)

// WithLogger sets where the adapter logs unreadable events and panics
// (slog.Default if unset).
func WithLogger(l *slog.Logger) Option { return func(a *Handler) { a.log = l } }

// NewHandler returns a Handler serving SCF API Gateway events through h.
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

// Invoke answers one invocation. Every failure, an unreadable event included,
// is an HTTP answer; the error is only for an answer that cannot be encoded,
// which does not happen.
func (a *Handler) Invoke(ctx context.Context, payload []byte) (out []byte, err error) {
	defer func() {
		// The handler's panics are caught by envelope.Serve; this guards the
		// adapter's own code.
		if p := recover(); p != nil {
			a.log.ErrorContext(ctx, "scf adapter panicked", "panic", p, "scf_request_id", scfRequestID(ctx))
			out, err = encode(envelope.Error(http.StatusInternalServerError, apperr.Internal, "internal error", scfRequestID(ctx)))
		}
	}()
	var ev Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		a.log.WarnContext(ctx, "unreadable SCF event", "scf_request_id", scfRequestID(ctx), "bytes", len(payload))
		return encode(a.bad(ctx, "the SCF event is not an API Gateway event: "+problem(err)))
	}
	if ev.HTTPMethod == "" {
		return encode(a.bad(ctx, "the SCF event is not an API Gateway event: it has no httpMethod"))
	}
	body, err := envelope.DecodeBody(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return encode(a.bad(ctx, err.Error()))
	}
	header := http.Header{}
	for name, vs := range ev.Headers {
		for _, v := range vs {
			header.Add(name, v)
		}
	}
	path := ev.Path
	if path == "" {
		path = ev.RequestContext.Path
	}
	requestID := ev.RequestContext.RequestID
	if requestID == "" {
		requestID = scfRequestID(ctx)
	}
	req := envelope.Request{
		Method:    ev.HTTPMethod,
		Path:      path,
		RawQuery:  encodeQuery(ev.QueryString),
		Header:    header,
		Body:      body,
		SourceIP:  ev.RequestContext.SourceIP,
		RequestID: requestID,
	}
	hr, err := req.HTTPRequest(ctx)
	if err != nil {
		return encode(a.bad(ctx, err.Error()))
	}
	return encode(envelope.Serve(a.h, hr, a.log))
}

func (a *Handler) bad(ctx context.Context, msg string) envelope.Response {
	return envelope.Error(http.StatusBadRequest, apperr.InvalidRequest, msg, scfRequestID(ctx))
}

// encode writes an answer as an integrated response. SCF takes one value per
// header, so repeated headers are joined with ", ".
func encode(r envelope.Response) ([]byte, error) {
	body, b64 := r.EncodedBody()
	return json.Marshal(Response{
		IsBase64Encoded: b64,
		StatusCode:      r.Status,
		Headers:         r.SingleValueHeaders(false),
		Body:            body,
	})
}

// encodeQuery encodes the query (url.Values sorts it by key).
func encodeQuery(q Values) string {
	if len(q) == 0 {
		return ""
	}
	return url.Values(q).Encode()
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
