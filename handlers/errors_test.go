package handlers_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/handlers"
)

// TestClientError: a client sees the domain error in an error's chain, and
// for anything else a 500 "internal" that shows nothing of the error.
func TestClientError(t *testing.T) {
	invalid := &domain.Error{Code: domain.CodeInvalidField, Message: "bad title", Field: "titleId"}
	var nilDomain *domain.Error
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		field  string
	}{
		{"a domain error", invalid, http.StatusBadRequest, domain.CodeInvalidField, "titleId"},
		{"a wrapped domain error", fmt.Errorf("decode: %w", invalid), http.StatusBadRequest, domain.CodeInvalidField, "titleId"},
		{"a domain error joined with another", errors.Join(errors.New("dynamodb: secret-table"), invalid), http.StatusBadRequest, domain.CodeInvalidField, "titleId"},
		{"any other error", errors.New("dynamodb: read secret-table: throttled"), http.StatusInternalServerError, handlers.CodeInternal, ""},
		{"no error", nil, http.StatusInternalServerError, handlers.CodeInternal, ""},
		{"a nil *domain.Error", nilDomain, http.StatusInternalServerError, handlers.CodeInternal, ""},
		{"an unknown code", &domain.Error{Code: "new_code", Message: "m"}, http.StatusInternalServerError, "new_code", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp events.APIGatewayV2HTTPResponse
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panicked: %v", p)
					}
				}()
				resp = handlers.ClientResponse(tt.err)
			}()
			var eb errorBody
			decodeBody(t, resp, &eb)
			if resp.StatusCode != tt.status || eb.Error.Code != tt.code || eb.Error.Field != tt.field {
				t.Fatalf("%d %+v, want %d %s field %q", resp.StatusCode, eb.Error, tt.status, tt.code, tt.field)
			}
			if strings.Contains(resp.Body, "secret-table") {
				t.Errorf("response %s shows the internal error", resp.Body)
			}
		})
	}
}
