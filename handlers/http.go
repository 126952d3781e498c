package handlers

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
)

// Error codes of the HTTP layer, beside the domain's.
const (
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeNotFound             = "not_found"   // a path no function serves
	CodeUnavailable          = "unavailable" // a store or queue cannot be reached: retry
	CodeInternal             = "internal"    // anything else; its cause is logged, never shown
)

// statusOf maps a client error code to its HTTP status.
var statusOf = map[string]int{
	domain.CodeInvalidJSON:     http.StatusBadRequest,
	domain.CodeUnknownField:    http.StatusBadRequest,
	domain.CodeMissingField:    http.StatusBadRequest,
	domain.CodeInvalidField:    http.StatusBadRequest,
	domain.CodeDuplicateAspect: http.StatusBadRequest,
	domain.CodeDuplicateField:  http.StatusBadRequest,
	domain.CodeBodyTooLarge:    http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType:   http.StatusUnsupportedMediaType,
	CodeMethodNotAllowed:       http.StatusMethodNotAllowed,
	CodeNotFound:               http.StatusNotFound,
	domain.CodeUnauthorized:    http.StatusUnauthorized,
	domain.CodeVoterMismatch:   http.StatusForbidden,
	CodeUnavailable:            http.StatusServiceUnavailable,
	CodeInternal:               http.StatusInternalServerError,
}

// clientError is what a client is told of err: the *domain.Error in its
// chain, or internal for anything else (nil included), whose text may hold
// what a client must not see.
func clientError(err error) *domain.Error {
	if de, ok := errors.AsType[*domain.Error](err); ok && de != nil {
		return de
	}
	return &domain.Error{Code: CodeInternal, Message: "internal error"}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// errorResponse is e as the HTTP API answers it. A code without a status
// is a 500.
func errorResponse(e *domain.Error) events.APIGatewayV2HTTPResponse {
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return jsonResponse(status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field}})
}

func jsonResponse(status int, v any) events.APIGatewayV2HTTPResponse {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"content-type": "application/json"},
		Body:       string(body),
	}
}

func methodNotAllowed(allow string) events.APIGatewayV2HTTPResponse {
	resp := errorResponse(&domain.Error{Code: CodeMethodNotAllowed, Message: "method not allowed; use " + allow})
	resp.Headers["allow"] = allow
	return resp
}
