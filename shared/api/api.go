// Package api is wxsession's HTTP contract: one http.Handler per function
// (login, validate, decrypt, logout, phonenumber, token) and one serving
// every public route. Every runtime (Lambda, SCF, plain HTTP, the local
// server) serves these same handlers.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/wxcrypto"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 64 << 10

// Service is what the handlers need from the session core; *session.Service
// is one.
type Service interface {
	Login(ctx context.Context, code string) (session.Login, error)
	Validate(ctx context.Context, skey string) (session.Live, error)
	Decrypt(ctx context.Context, skey string, read func() (wxcrypto.Input, error)) (json.RawMessage, error)
	Logout(ctx context.Context, skey string) error
	PhoneNumber(ctx context.Context, skey string, read func() (string, error)) (session.Phone, error)
	AccessToken(ctx context.Context, refused string) (session.AccessToken, error)
	LogoutAll(ctx context.Context, skey string) error
}

var _ Service = (*session.Service)(nil)

// App is a Service that says which mini-program it serves;
// *session.Service is one.
type App interface {
	Service
	AppID() string
}

var _ App = (*session.Service)(nil)

// WithApps makes a handler serve several mini-programs, one service each: a
// request goes to the app its X-WX-AppID header names, else the one its
// WeChat Referer names, else the only app. The handler's own svc argument
// may then be nil.
func WithApps[S App](apps []S) Option {
	return func(rt *router) {
		rt.apps = make(map[string]Service, len(apps))
		for _, a := range apps {
			rt.apps[a.AppID()] = a
		}
		rt.svc = nil
		if len(apps) == 1 {
			rt.svc = apps[0]
		}
	}
}

// Option adjusts a handler.
type Option func(*router)

// WithLogger sets where the per-request log lines go (slog.Default if unset).
func WithLogger(l *slog.Logger) Option { return func(rt *router) { rt.log = l } }

// Login serves POST /login. Like every one-route handler, it answers its
// route at its own path, at "/" and under a path prefix ("/api/login"),
// however the cloud maps requests onto the function.
func Login(svc Service, opts ...Option) http.Handler { return newRouter(svc, opts, loginRoute) }

// Validate serves GET /validate.
func Validate(svc Service, opts ...Option) http.Handler {
	return newRouter(svc, opts, validateRoute)
}

// Decrypt serves POST /decrypt.
func Decrypt(svc Service, opts ...Option) http.Handler { return newRouter(svc, opts, decryptRoute) }

// Logout serves POST /logout.
func Logout(svc Service, opts ...Option) http.Handler { return newRouter(svc, opts, logoutRoute) }

// All serves every public route, as the local server does: every route but
// /token (see Token).
func All(svc Service, opts ...Option) http.Handler {
	return newRouter(svc, opts, loginRoute, validateRoute, decryptRoute, logoutRoute, phoneNumberRoute)
}

// route is one endpoint: a method on a path, and what answers it.
type route struct {
	method string
	path   string
	handle func(svc Service, w http.ResponseWriter, r *http.Request) error
}

var (
	loginRoute    = route{http.MethodPost, "/login", login}
	validateRoute = route{http.MethodGet, "/validate", validate}
	decryptRoute  = route{http.MethodPost, "/decrypt", decrypt}
	logoutRoute   = route{http.MethodPost, "/logout", logout}
)

type loginRequest struct {
	Code string `json:"code"`
}

type loginResponse struct {
	Skey      string `json:"skey"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	AppID     string `json:"appid,omitempty"`
}

func login(svc Service, w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Code == "" {
		return apperr.Errorf(apperr.InvalidRequest, "code is required: send {\"code\": <the code wx.login returned>}")
	}
	l, err := svc.Login(r.Context(), req.Code)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, loginResponse{
		Skey:      l.Skey,
		ExpiresIn: l.ExpiresIn,
		OpenID:    l.OpenID,
		UnionID:   l.UnionID,
		AppID:     l.AppID,
	})
	return nil
}

type validateResponse struct {
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	ExpiresIn int64  `json:"expires_in"`
	AppID     string `json:"appid,omitempty"`
}

func validate(svc Service, w http.ResponseWriter, r *http.Request) error {
	s, err := svc.Validate(r.Context(), skeyFrom(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, validateResponse{OpenID: s.OpenID, UnionID: s.UnionID, ExpiresIn: s.ExpiresIn, AppID: s.AppID})
	return nil
}

type decryptRequest struct {
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
}

type decryptResponse struct {
	Data json.RawMessage `json:"data"`
}

func decrypt(svc Service, w http.ResponseWriter, r *http.Request) error {
	// The body is read only once the service has the skey it requires, so a
	// missing skey is reported before a malformed body.
	data, err := svc.Decrypt(r.Context(), skeyFrom(r), func() (wxcrypto.Input, error) {
		var req decryptRequest
		err := decodeBody(w, r, &req)
		return wxcrypto.Input(req), err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, decryptResponse{Data: data})
	return nil
}

// logoutRequest is the optional body of POST /logout.
type logoutRequest struct {
	// All ends every session of the user, on every device.
	All bool `json:"all"`
}

func logout(svc Service, w http.ResponseWriter, r *http.Request) error {
	skey := skeyFrom(r)
	var req logoutRequest
	// A request without an skey is told so before its body is read.
	if skey != "" {
		if err := decodeOptionalBody(w, r, &req); err != nil {
			return err
		}
	}
	end := svc.Logout
	if req.All {
		end = svc.LogoutAll
	}
	if err := end(r.Context(), skey); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// skeyFrom returns the skey a request carries: Authorization: Bearer <skey>,
// or else X-WX-Skey. Any other Authorization scheme carries no skey.
//
// A header sent twice is read as its values joined with ", ", which is how
// HTTP API events deliver it; reading only the first value here would let a
// plain-HTTP server accept a request that Lambda refuses. Two skeys joined
// are no skey this service issued, so such a request is session_expired on
// every runtime.
func skeyFrom(r *http.Request) string {
	if scheme, token, ok := strings.Cut(headerValue(r, "Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if t := strings.TrimSpace(token); t != "" {
			return t
		}
	}
	return headerValue(r, "X-WX-Skey")
}

// headerValue returns every value of a request header joined with ", ", with
// surrounding whitespace trimmed.
func headerValue(r *http.Request, name string) string {
	return strings.TrimSpace(strings.Join(r.Header.Values(name), ", "))
}

// writeJSON writes v as the JSON response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
