// Package apperr defines the one error type wxsession returns to its callers.
//
// Every failure a client may see carries a Code from the HTTP contract
// (invalid_code, session_expired, …) and a Message that is safe to show. Any
// other error is an internal one: its detail is logged, never sent. The
// mapping from codes to HTTP statuses lives in one place, the api package.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Code is a stable, machine-readable error code from the HTTP contract.
type Code string

// The contract's error codes.
const (
	InvalidRequest    Code = "invalid_request"
	SessionRequired   Code = "session_required"
	SessionExpired    Code = "session_expired"
	InvalidCode       Code = "invalid_code"
	CodeBlocked       Code = "code_blocked"
	InvalidPhoneCode  Code = "invalid_phone_code"
	MethodNotAllowed  Code = "method_not_allowed"
	NotFound          Code = "not_found"
	StaleSessionKey   Code = "stale_session_key"
	PayloadTooLarge   Code = "payload_too_large"
	RateLimited       Code = "rate_limited"
	WeChatUnavailable Code = "wechat_unavailable"
	StoreUnavailable  Code = "store_unavailable"
	Internal          Code = "internal"
)

// Error is an application error: a contract code, a message safe to show to
// the client, and optionally the underlying cause, which is only logged.
type Error struct {
	Code    Code
	Message string
	// RetryAfter, when positive, tells the client how long to wait (rate_limited).
	RetryAfter time.Duration
	// Err is the cause, kept for the log; it never reaches a response.
	Err error
}

// Error returns the code and message, then the cause if there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with the given code and message whose cause is err.
func Wrap(err error, code Code, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// CodeOf returns the code of the first Error in err's chain, Internal when
// there is none, and "" for a nil error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
