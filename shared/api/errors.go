package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/reqlog"
)

// statusOf is the one table mapping contract error codes to HTTP statuses.
var statusOf = map[apperr.Code]int{
	apperr.InvalidRequest:    http.StatusBadRequest,
	apperr.SessionRequired:   http.StatusUnauthorized,
	apperr.SessionExpired:    http.StatusUnauthorized,
	apperr.InvalidCode:       http.StatusUnauthorized,
	apperr.CodeBlocked:       http.StatusForbidden,
	apperr.InvalidPhoneCode:  http.StatusBadRequest,
	apperr.NotFound:          http.StatusNotFound,
	apperr.MethodNotAllowed:  http.StatusMethodNotAllowed,
	apperr.StaleSessionKey:   http.StatusConflict,
	apperr.PayloadTooLarge:   http.StatusRequestEntityTooLarge,
	apperr.RateLimited:       http.StatusTooManyRequests,
	apperr.Internal:          http.StatusInternalServerError,
	apperr.WeChatUnavailable: http.StatusBadGateway,
	apperr.StoreUnavailable:  http.StatusServiceUnavailable,
}

// StatusOf returns the HTTP status for an error code (500 for an unknown one).
func StatusOf(code apperr.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error   apperr.Code `json:"error"`
	Message string      `json:"message"`
}

// writeError answers with err's code and message. Anything that is not an
// application error, and every 500, is answered as a bare internal error: the
// detail goes only to the request's log line (see reqlog).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *apperr.Error
	if !errors.As(err, &e) || StatusOf(e.Code) == http.StatusInternalServerError {
		e = &apperr.Error{Code: apperr.Internal, Message: "internal error"}
	}
	reqlog.SetError(r.Context(), err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	writeJSON(w, StatusOf(e.Code), errorBody{Error: e.Code, Message: e.Message})
}
