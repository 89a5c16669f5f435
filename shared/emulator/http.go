package emulator

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// ServeHTTP serves WeChat's API and the emulator's own routes (see the
// package documentation).
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/sns/jscode2session":
		e.jscode2session(w, r)
	case "/cgi-bin/stable_token":
		e.stableToken(w, r)
	case "/wxa/business/getuserphonenumber":
		e.getUserPhoneNumber(w, r)
	case "/wx.login":
		if !allow(w, r, http.MethodPost, http.MethodGet) {
			return
		}
		if appID, ok := e.appOf(w, r); ok {
			writeJSON(w, http.StatusOK, map[string]string{"code": e.CodeIn(appID, r.URL.Query().Get("user"))})
		}
	case "/getPhoneNumber":
		if !allow(w, r, http.MethodPost) {
			return
		}
		if appID, ok := e.appOf(w, r); ok {
			writeJSON(w, http.StatusOK, map[string]string{"code": e.PhoneCodeIn(appID, r.URL.Query().Get("user"))})
		}
	case "/encrypt":
		if allow(w, r, http.MethodPost) {
			e.serveEncrypt(w, r)
		}
	case "/fault":
		e.serveFault(w, r)
	case "/stats":
		writeJSON(w, http.StatusOK, e.Stats())
	default:
		writeJSON(w, http.StatusNotFound, errorBody("not_found",
			"the emulator serves /sns/jscode2session, /cgi-bin/stable_token, /wxa/business/getuserphonenumber, /wx.login, /getPhoneNumber, /encrypt, /fault and /stats"))
	}
}

// appOf reads the ?appid a route names (the first app when none), answering
// 404 for an app the emulator does not play.
func (e *Emulator) appOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	appID := r.URL.Query().Get("appid")
	if appID == "" {
		return e.defaultApp, true
	}
	e.mu.Lock()
	_, ok := e.apps[appID]
	e.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody("not_found", "the emulator plays no app "+appID))
		return "", false
	}
	return appID, true
}

func (e *Emulator) serveEncrypt(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OpenID string         `json:"openid"`
		Data   map[string]any `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.OpenID == "" {
		writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", `send {"openid": "<the openid /login returned>", "data": {…}?}`))
		return
	}
	enc, err := e.Encrypt(req.OpenID, req.Data)
	if errors.Is(err, ErrNoSession) {
		writeJSON(w, http.StatusNotFound, errorBody("not_found", err.Error()))
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, enc)
}

func (e *Emulator) serveFault(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodDelete:
		e.SetFault(nil)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		var req struct {
			Fault
			Delay string `json:"delay"` // a Go duration, e.g. "2s"
			AppID string `json:"appid"` // for revoke_token
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "send a fault as JSON"))
			return
		}
		f := req.Fault
		if f.Mode == modeRevokeToken {
			e.RevokeToken(req.AppID)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		switch f.API {
		case "", APICode2Session, APIStableToken, APIPhoneNumber:
		default:
			writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "api must be jscode2session, stable_token or getuserphonenumber"))
			return
		}
		if req.Delay != "" {
			d, err := time.ParseDuration(req.Delay)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "delay must be a Go duration such as 2s"))
				return
			}
			f.Delay = d
		}
		switch f.Mode {
		case FaultHang, FaultSlow, FaultHTTPError, FaultGarbage, FaultErrCode, FaultReset:
		default:
			writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "mode must be hang, slow, http_error, garbage, errcode, reset or revoke_token"))
			return
		}
		e.SetFault(&f)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "POST, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "POST a fault or DELETE it"))
	}
}

// modeRevokeToken is the /fault mode that revokes the app's access tokens at
// once, rather than a fault waiting for the next calls.
const modeRevokeToken = "revoke_token"

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", methods[0])
	writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "use "+methods[0]))
	return false
}

func errorBody(code, msg string) map[string]string {
	return map[string]string{"error": code, "message": msg}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
