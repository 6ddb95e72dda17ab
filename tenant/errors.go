// Package tenant holds wabot's domain: users, tenants and their approval,
// session and worker rows, bot configuration and the message log, with
// their validation and SQL. It knows nothing of HTTP or WhatsApp.
package tenant

import (
	"errors"
	"fmt"
)

// Code classifies a domain error; the portal maps each to an HTTP status
// in one place.
type Code string

const (
	CodeInvalid      Code = "invalid"      // 422: the input breaks a rule
	CodeBadRequest   Code = "bad_request"  // 400: the input cannot be read
	CodeNotFound     Code = "not_found"    // 404
	CodeConflict     Code = "conflict"     // 409
	CodeUnauthorized Code = "unauthorized" // 401
	CodeForbidden    Code = "forbidden"    // 403
	CodeUnavailable  Code = "unavailable"  // 503: try again later
	CodeTooMany      Code = "too_many"     // 429: slow down
	// CodeNotConnected: the call needs the tenant's WhatsApp session online.
	CodeNotConnected Code = "session_not_connected"
)

// Error is an error whose message is safe to show to the user who caused
// it. Fields maps an input field (such as "rules[2].pattern") to what is
// wrong with it.
type Error struct {
	Code   Code
	Msg    string
	Fields map[string]string
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error with a formatted, user-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ErrNotFound is returned by lookups that find nothing; it is never
// (nil, nil).
var ErrNotFound = &Error{Code: CodeNotFound, Msg: "not found"}

// ErrorCode returns the code of err if it is (or wraps) an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
