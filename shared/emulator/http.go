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
	case "/wx.login":
		if !allow(w, r, http.MethodPost, http.MethodGet) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"code": e.Code(r.URL.Query().Get("user"))})
	case "/encrypt":
		if allow(w, r, http.MethodPost) {
			e.serveEncrypt(w, r)
		}
	case "/fault":
		e.serveFault(w, r)
	case "/stats":
		writeJSON(w, http.StatusOK, map[string]int{"jscode2session_calls": e.Calls()})
	default:
		writeJSON(w, http.StatusNotFound, errorBody("not_found", "the emulator serves /sns/jscode2session, /wx.login, /encrypt, /fault and /stats"))
	}
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
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "send a fault as JSON"))
			return
		}
		f := req.Fault
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
			writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "mode must be hang, slow, http_error, garbage, errcode or reset"))
			return
		}
		e.SetFault(&f)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "POST, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "POST a fault or DELETE it"))
	}
}

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
