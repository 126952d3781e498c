package handlers

import (
	"encoding/json"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
)

// statusOf maps a client error code to its HTTP status.
var statusOf = map[string]int{
	domain.CodeInvalidJSON:          http.StatusBadRequest,
	domain.CodeUnknownField:         http.StatusBadRequest,
	domain.CodeMissingField:         http.StatusBadRequest,
	domain.CodeInvalidField:         http.StatusBadRequest,
	domain.CodeDuplicateAspect:      http.StatusBadRequest,
	domain.CodeDuplicateField:       http.StatusBadRequest,
	domain.CodeBodyTooLarge:         http.StatusRequestEntityTooLarge,
	domain.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	domain.CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	domain.CodeNotFound:             http.StatusNotFound,
	domain.CodeUnauthorized:         http.StatusUnauthorized,
	domain.CodeForbidden:            http.StatusForbidden,
	domain.CodeUnavailable:          http.StatusServiceUnavailable,
	domain.CodeInternal:             http.StatusInternalServerError,
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

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
	resp := errorResponse(&domain.Error{Code: domain.CodeMethodNotAllowed, Message: "method not allowed; use " + allow})
	resp.Headers["allow"] = allow
	return resp
}
