// Package openapitest checks HTTP exchanges against docs/openapi.yaml, so the
// document and the code cannot drift: a test hands it each response it
// receives (Check), or swaps its http.Client's transport for one that checks
// every response on its way (Transport).
//
// A response must have a status the document lists for its route, the
// headers that status requires (X-Request-Id, Cache-Control, Retry-After,
// Allow) with valid values, and a body of the documented media type that
// matches the documented schema (or no body where none is documented). A
// path the document does not list must answer the document's NotFound
// response, and a listed path with an unlisted method its MethodNotAllowed
// response, with an Allow header naming the documented methods. When the
// answer is a success, the request must match the document too: a request
// the document calls invalid must not succeed.
//
// The document is parsed, checked against the OpenAPI 3.1 schema and built
// once per process, with github.com/pb33f/libopenapi and
// github.com/pb33f/libopenapi-validator.
package openapitest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/responses"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"

	"github.com/wxsession/wxsession/docs"
)

// NotDescribed lists the path prefixes Transport passes through unchecked:
// the local server's WeChat emulator and the document itself, which are not
// part of the API the document describes.
var NotDescribed = []string{"/emulator/", "/openapi.yaml"}

// Validator checks HTTP exchanges against one OpenAPI document.
type Validator struct {
	model   *v3.Document
	mu      sync.Mutex // libopenapi-validator's caches are not documented as safe for concurrent use
	v       validator.Validator
	schemas schema_validation.SchemaValidator
}

var (
	loadOnce sync.Once
	loaded   *Validator
	errLoad  error
)

// New returns the Validator for docs/openapi.yaml, loaded once per process.
// It fails the test when the document does not parse, build or validate
// against the OpenAPI specification with zero errors.
func New(t testing.TB) *Validator {
	t.Helper()
	loadOnce.Do(func() { loaded, errLoad = Load(docs.OpenAPI) })
	if errLoad != nil {
		t.Fatalf("docs/openapi.yaml: %v", errLoad)
	}
	return loaded
}

// Load parses spec, validates it against the OpenAPI specification and
// returns a Validator for it. Every problem found is in the error.
func Load(spec []byte) (*Validator, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("openapi version %q, want 3.1.x", v)
	}
	if ok, errs := schema_validation.ValidateOpenAPIDocument(doc); !ok {
		return nil, fmt.Errorf("the document is not valid OpenAPI:\n%s", describe(errs))
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if m == nil || m.Model.Paths == nil || m.Model.Paths.PathItems.Len() == 0 {
		return nil, errors.New("the document has no paths")
	}
	for _, name := range []string{"NotFound", "MethodNotAllowed"} {
		if _, ok := m.Model.Components.Responses.Get(name); !ok {
			return nil, fmt.Errorf("the document has no components.responses.%s", name)
		}
	}
	return &Validator{
		model:   &m.Model,
		v:       validator.NewValidatorFromV3Model(&m.Model),
		schemas: schema_validation.NewSchemaValidator(),
	}, nil
}

// Check fails t (without stopping it) when resp, received for req with the
// given body, does not match the document.
func (v *Validator) Check(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if err := v.Validate(req, resp, body); err != nil {
		t.Errorf("%v", err)
	}
}

// Validate returns an error describing every way resp (with body), received
// for req, does not match the document; nil when it matches. When resp is a
// success, req must match the document too; its body is read through
// req.GetBody when req has one (http.NewRequest sets it for in-memory bodies).
func (v *Validator) Validate(req *http.Request, resp *http.Response, body []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := *resp
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.Request = req

	var problems []string
	item, ok := v.model.Paths.PathItems.Get(req.URL.Path)
	switch {
	case !ok:
		problems = v.checkComponent(req, &r, body, "NotFound", http.StatusNotFound)
	case operation(item, req.Method) == nil:
		problems = v.checkComponent(req, &r, body, "MethodNotAllowed", http.StatusMethodNotAllowed)
		if allow, want := r.Header.Values("Allow"), methodsOf(item); !slices.Equal(allow, []string{want}) {
			problems = append(problems, fmt.Sprintf("Allow is %q, want %q (the methods the document lists)", allow, want))
		}
	default:
		problems = v.checkOperation(req, &r, body, item)
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s → %d %s\ndoes not match docs/openapi.yaml:\n  - %s",
		req.Method, req.URL.Path, resp.StatusCode, truncate(body, 300), strings.Join(problems, "\n  - "))
}

// checkOperation checks a response of a documented operation.
func (v *Validator) checkOperation(req *http.Request, resp *http.Response, body []byte, item *v3.PathItem) []string {
	var problems []string
	if _, errs := v.v.ValidateHttpResponse(req, resp); len(errs) > 0 {
		problems = append(problems, lines(errs)...)
	}
	op := operation(item, req.Method)
	if documented := op.Responses.FindResponseByCode(resp.StatusCode); documented != nil && orderedmap.Len(documented.Content) == 0 && len(body) > 0 {
		problems = append(problems, fmt.Sprintf("status %d has no documented body, got %d bytes", resp.StatusCode, len(body)))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		problems = append(problems, v.checkRequest(req)...)
	}
	return problems
}

// checkRequest checks a request that succeeded against the document.
func (v *Validator) checkRequest(req *http.Request) []string {
	r := req.Clone(req.Context())
	r.Body = http.NoBody
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return []string{"the request body could not be read again: " + err.Error()}
		}
		r.Body = b
	}
	if _, errs := v.v.ValidateHttpRequestSync(r); len(errs) > 0 {
		return prefix("the request succeeded but does not match the document: ", lines(errs))
	}
	return nil
}

// checkComponent checks a response against one of components.responses, the
// answer to a request outside the document's operations.
func (v *Validator) checkComponent(req *http.Request, resp *http.Response, body []byte, name string, status int) []string {
	var problems []string
	if resp.StatusCode != status {
		problems = append(problems, fmt.Sprintf("status %d, want %d (components.responses.%s): no documented operation is %s %s",
			resp.StatusCode, status, name, req.Method, req.URL.Path))
	}
	doc := v.model.Components.Responses.GetOrZero(name)
	if _, errs := responses.ValidateResponseHeaders(req, resp, doc.Headers, req.URL.Path, fmt.Sprint(status)); len(errs) > 0 {
		problems = append(problems, lines(errs)...)
	}
	ct := resp.Header.Get("Content-Type")
	media, ok := findMediaType(doc, ct)
	if !ok {
		return append(problems, fmt.Sprintf("Content-Type %q is not documented for components.responses.%s", ct, name))
	}
	if _, errs := v.schemas.ValidateSchemaBytesWithVersion(media.Schema.Schema(), body, 3.1); len(errs) > 0 {
		problems = append(problems, lines(errs)...)
	}
	return problems
}

// findMediaType returns the documented media type of resp matching a
// Content-Type header (parameters such as charset aside).
func findMediaType(resp *v3.Response, contentType string) (*v3.MediaType, bool) {
	mt, _, _ := strings.Cut(contentType, ";")
	return resp.Content.Get(strings.TrimSpace(strings.ToLower(mt)))
}

// operation returns the operation a path item documents for method, or nil.
// HTTP methods are case-sensitive: "post" is not POST, and the product
// answers it 405.
func operation(item *v3.PathItem, method string) *v3.Operation {
	if method != strings.ToUpper(method) {
		return nil
	}
	return item.GetOperations().GetOrZero(strings.ToLower(method))
}

// methodsOf returns the methods a path item documents, as an Allow value.
func methodsOf(item *v3.PathItem) string {
	var ms []string
	for m := range item.GetOperations().KeysFromOldest() {
		ms = append(ms, strings.ToUpper(m))
	}
	slices.Sort(ms)
	return strings.Join(ms, ", ")
}

// lines turns validation errors into one line each, with every schema
// failure they carry.
func lines(errs []*liberrors.ValidationError) []string {
	var out []string
	for _, e := range errs {
		s := e.Message
		if e.Reason != "" && e.Reason != e.Message {
			s += ": " + e.Reason
		}
		for _, f := range e.SchemaValidationErrors {
			loc := f.FieldPath
			if loc == "" {
				loc = f.KeywordLocation
			}
			s += fmt.Sprintf(" [%s: %s]", loc, f.Reason)
		}
		out = append(out, s)
	}
	return out
}

func describe(errs []*liberrors.ValidationError) string {
	return "  - " + strings.Join(lines(errs), "\n  - ")
}

func prefix(p string, ss []string) []string {
	for i := range ss {
		ss[i] = p + ss[i]
	}
	return ss
}

func truncate(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Transport returns a RoundTripper that sends requests through base
// (http.DefaultTransport when nil) and checks every response against the
// document (with Check), except for paths under NotDescribed. The response
// body is read in full and handed on unchanged. A test opts in by setting
// its http.Client's Transport:
//
//	client := &http.Client{Transport: openapitest.Transport(t, nil)}
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{t: t, v: New(t), base: base}
}

type transport struct {
	t    testing.TB
	v    *Validator
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	for _, p := range NotDescribed {
		if strings.HasPrefix(req.URL.Path, p) {
			return tr.base.RoundTrip(req)
		}
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// Keep a copy of the body, to check the request after it is sent.
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	tr.v.Check(tr.t, req, resp, body)
	return resp, nil
}
