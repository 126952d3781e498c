package domain

import "fmt"

// Error codes a client can branch on. They are part of the HTTP contract.
const (
	CodeInvalidJSON          = "invalid_json"
	CodeUnknownField         = "unknown_field"
	CodeMissingField         = "missing_field"
	CodeInvalidField         = "invalid_field"
	CodeDuplicateAspect      = "duplicate_aspect"
	CodeDuplicateField       = "duplicate_field"
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeNotFound             = "not_found"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "voter_mismatch"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
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
