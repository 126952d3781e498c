package domain

import "fmt"

// Error codes a client can branch on, of the rules the domain checks.
// They are part of the HTTP contract, with the codes of the HTTP layer
// itself (a wrong method or media type, a server that cannot answer),
// which the handlers declare.
const (
	CodeInvalidJSON     = "invalid_json"
	CodeUnknownField    = "unknown_field"
	CodeMissingField    = "missing_field"
	CodeInvalidField    = "invalid_field"
	CodeDuplicateAspect = "duplicate_aspect"
	CodeDuplicateField  = "duplicate_field"
	CodeBodyTooLarge    = "body_too_large"
	CodeUnauthorized    = "unauthorized"
	CodeVoterMismatch   = "voter_mismatch" // the body's voterId is not the authenticated voter's
)

// Error is a failure a client can act on: a stable code, a message that is
// safe to show, and the request field at fault when there is one.
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func fieldError(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}
