package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"reflect"
	"runtime/debug"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/reqlog"
)

// router dispatches to its routes and wraps every request in the same
// envelope: a request id, panic recovery (the product's one), JSON 404/405
// answers and one log line.
type router struct {
	svc    Service // the only app's, when one is served
	apps   map[string]Service
	log    *slog.Logger
	routes map[string]route
}

func newRouter(svc Service, opts []Option, routes ...route) *router {
	rt := &router{svc: svc, routes: make(map[string]route)}
	if a, ok := svc.(App); ok && a.AppID() != "" {
		rt.apps = map[string]Service{a.AppID(): svc}
	}
	for _, r := range routes {
		rt.routes[r.path] = r
	}
	for _, o := range opts {
		o(rt)
	}
	if rt.log == nil {
		rt.log = slog.Default()
	}
	return rt
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID(r)
	ctx, fields := reqlog.NewContext(r.Context())
	r = r.WithContext(ctx)
	sw := &statusWriter{ResponseWriter: w}
	sw.Header().Set("X-Request-Id", id)
	sw.Header().Set("Cache-Control", "no-store")
	sw.Header().Set("X-Content-Type-Options", "nosniff")

	name := "unmatched"
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			if sw.status == 0 {
				writeError(sw, r, err)
			} else {
				reqlog.SetError(ctx, err)
			}
		}
		rt.logRequest(r, id, name, sw.status, time.Since(start), fields)
	}()

	rte, ok := rt.match(r.URL.Path)
	switch {
	case eventError(r.Context()) != nil:
		// The runtime adapter could not turn its event into a request: the
		// handler answers it like any other bad request, so the error body,
		// the log line and panic recovery keep their one owner.
		writeError(sw, r, eventError(r.Context()))
	case !ok:
		writeError(sw, r, apperr.Errorf(apperr.NotFound, "no route %s %s", truncate(r.Method, 16), truncate(r.URL.Path, 64)))
	case r.Method != rte.method:
		name = rte.path
		sw.Header().Set("Allow", rte.method)
		writeError(sw, r, apperr.Errorf(apperr.MethodNotAllowed, "%s takes %s", rte.path, rte.method))
	default:
		name = rte.path
		svc, err := rt.pick(r)
		if err == nil {
			err = rte.handle(svc, sw, r)
		}
		if err != nil {
			writeError(sw, r, err)
		}
	}
}

// pick returns the service of the app a request is for: the one X-WX-AppID
// names; else the one in the Referer WeChat sets on every wx.request
// (https://servicewechat.com/<appid>/<version>/page-frame.html); else the
// only app served. A request that names no app when several are served, or
// names one that is not served, is invalid_request.
func (rt *router) pick(r *http.Request) (Service, error) {
	id := headerValue(r, "X-WX-AppID")
	if id == "" {
		id = refererApp(r.Header.Get("Referer"))
	}
	if id == "" {
		if rt.svc == nil {
			return nil, apperr.Errorf(apperr.InvalidRequest, "name the app: X-WX-AppID (this deployment serves several mini-programs)")
		}
		return rt.svc, nil
	}
	if rt.apps == nil {
		return rt.svc, nil // a service that does not say its app
	}
	svc, ok := rt.apps[id]
	if !ok {
		return nil, apperr.Errorf(apperr.InvalidRequest, "app %q is not served here (X-WX-AppID)", truncate(id, 32))
	}
	reqlog.Add(r.Context(), slog.String("appid", id))
	return svc, nil
}

// refererApp returns the appid in a mini-program's Referer
// (https://servicewechat.com/<appid>/<version>/page-frame.html), or "".
func refererApp(ref string) string {
	rest, ok := strings.CutPrefix(ref, "https://servicewechat.com/")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok || !strings.HasPrefix(id, "wx") || len(id) > 32 {
		return "" // the developer tools' "touristappid", say
	}
	return id
}

// match returns the route a path names. The handler of every route (the
// local server's) matches paths exactly. A function's handler, which serves
// one route, also answers it at "/" and under a prefix ("/api/login"): what a
// function receives depends on how the cloud maps a custom domain or a stage
// onto it. A prefix is clean whole segments, so "//login" and "/x/../login"
// stay 404 there as everywhere.
func (rt *router) match(p string) (route, bool) {
	if r, ok := rt.routes[p]; ok || len(rt.routes) != 1 {
		return r, ok
	}
	for _, r := range rt.routes {
		prefix, ok := strings.CutSuffix(p, r.path)
		if p == "/" || ok && prefix != "/" && strings.HasPrefix(prefix, "/") && path.Clean(prefix) == prefix {
			return r, true
		}
	}
	return route{}, false
}

// logRequest writes the request's one log line: what operators read and
// grep (request_id, method, route, status, latency_ms, the attributes layers
// below added, error and detail), then the request's metrics
// (metricAttrs).
func (rt *router) logRequest(r *http.Request, id, route string, status int, latency time.Duration, fields *reqlog.Fields) {
	if status == 0 {
		status = http.StatusOK
	}
	attrs := append([]slog.Attr{
		slog.String("request_id", id),
		slog.String("method", truncate(r.Method, 16)), // a client-chosen token: keep lines short
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("latency_ms", milliseconds(latency)),
	}, fields.Attrs()...)
	level := slog.LevelInfo
	outcome := "ok"
	if err := fields.Err(); err != nil {
		outcome = string(apperr.CodeOf(err))
		attrs = append(attrs, slog.String("error", outcome), slog.String("detail", err.Error()))
		if status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
	}
	attrs = append(attrs, metricAttrs(route, outcome, fields.Measures(), time.Now())...)
	rt.log.LogAttrs(r.Context(), level, "request", attrs...)
}

type eventErrorKey struct{}

// WithEventError marks a request a runtime adapter built as a stand-in for an
// event no HTTP request could have produced (no method, a bad path, a body
// that is not base64). The handler answers it with err, which should be an
// *apperr.Error (invalid_request), through the same error writer, log line
// and panic recovery as every other request.
func WithEventError(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, eventErrorKey{}, err)
}

func eventError(ctx context.Context) error {
	err, _ := ctx.Value(eventErrorKey{}).(error)
	return err
}

// requestID returns the id the runtime or a proxy gave the request
// (X-Request-Id), or a fresh one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 128 && strings.IndexFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) < 0 {
		return id
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxJSONDepth bounds nesting in request bodies; the contract's bodies are flat.
const maxJSONDepth = 16

// decodeBody reads a JSON object request body into dst. It refuses bodies over
// MaxBodyBytes, other content types, malformed JSON, duplicate keys, deep
// nesting, trailing data and fields of the wrong type.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	return decode(w, r, dst, false)
}

// decodeOptionalBody is decodeBody for a route whose body may be left out:
// an empty body leaves dst as it is.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, dst any) error {
	return decode(w, r, dst, true)
}

func decode(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return apperr.Errorf(apperr.InvalidRequest, "Content-Type must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return apperr.Errorf(apperr.PayloadTooLarge, "the request body is over %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return apperr.Wrap(err, apperr.InvalidRequest, "the request body could not be read")
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := checkJSONObject(body); err != nil {
		return apperr.Wrap(err, apperr.InvalidRequest, "the request body must be one JSON object: "+err.Error())
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			kind := "string"
			if te.Type.Kind() == reflect.Bool {
				kind = "boolean"
			}
			return apperr.Wrap(err, apperr.InvalidRequest, fmt.Sprintf("%s must be a %s", te.Field, kind))
		}
		return apperr.Wrap(err, apperr.InvalidRequest, "the request body does not match the API")
	}
	return nil
}

// checkJSONObject checks that b is exactly one JSON object with no duplicate
// keys at any level and no nesting deeper than maxJSONDepth. encoding/json
// would silently keep the last of two duplicate keys; a body that means two
// things is refused instead.
func checkJSONObject(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("the body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errors.New("malformed JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not an object")
	}
	if err := checkJSONValue(dec, '{', 1); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the object")
	}
	return nil
}

// checkJSONValue checks the rest of an object or array whose opening delimiter
// was just read.
func checkJSONValue(dec *json.Decoder, open json.Delim, depth int) error {
	if depth > maxJSONDepth {
		return errors.New("nested too deeply")
	}
	var seen map[string]bool
	if open == '{' {
		seen = make(map[string]bool)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("malformed JSON")
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			return nil
		}
		if open == '{' {
			key, _ := tok.(string)
			// encoding/json matches keys to fields case-insensitively (with
			// Unicode folding: "ſignature" fills Signature), so keys that fold
			// alike are duplicates too.
			folded := foldKey(key)
			if seen[folded] {
				return fmt.Errorf("duplicate key %q", truncate(key, 32))
			}
			seen[folded] = true
			if tok, err = dec.Token(); err != nil {
				return errors.New("malformed JSON")
			}
		}
		if d, ok := tok.(json.Delim); ok {
			if err := checkJSONValue(dec, d, depth+1); err != nil {
				return err
			}
		}
	}
}

// foldKey folds a JSON object key as encoding/json does when it matches keys
// to struct fields: foldKey(a) == foldKey(b) exactly when bytes.EqualFold(a, b).
func foldKey(k string) string {
	var b strings.Builder
	b.Grow(len(k))
	for _, r := range k {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		// The smallest rune of r's fold orbit stands for the whole orbit.
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		b.WriteRune(r)
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
