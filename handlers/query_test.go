package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/handlers"
	"votes/infra/functions"
)

func TestQueryHealthz(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	req := apiRequest(t, "apigw-v2-request-tallies.json")
	req.RouteKey, req.RequestContext.RouteKey = "GET /healthz", "GET /healthz"
	req.RawPath, req.RequestContext.HTTP.Path = "/healthz", "/healthz"
	req.PathParameters = nil

	resp, err := q.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, resp.Body)
	}
	var body struct {
		Status string `json:"status"`
	}
	decodeBody(t, resp, &body)
	if body.Status != "ok" {
		t.Errorf("status %q, want ok", body.Status)
	}
}

func TestQueryTitleWithoutVotes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	if got := tallies(t, q, "tt9999999"); got == nil || len(got) != 0 {
		t.Errorf("tallies of a title nobody voted on: %v, want {}", got)
	}
}

func TestQueryRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	title := func(id string) func(*events.APIGatewayV2HTTPRequest) {
		return func(r *events.APIGatewayV2HTTPRequest) { r.PathParameters["titleId"] = id }
	}
	tests := []struct {
		name   string
		change func(*events.APIGatewayV2HTTPRequest)
		status int
		code   string
		field  string
	}{
		{"empty titleId", title(""), 400, domain.CodeInvalidField, "titleId"},
		{"no titleId", func(r *events.APIGatewayV2HTTPRequest) { r.PathParameters = nil }, 400, domain.CodeInvalidField, "titleId"},
		{"titleId with a hash", title("tt1#00"), 400, domain.CodeInvalidField, "titleId"},
		{"titleId with a space", title("tt 1"), 400, domain.CodeInvalidField, "titleId"},
		{"titleId 65 long", title(strings.Repeat("t", 65)), 400, domain.CodeInvalidField, "titleId"},
		{"POST", func(r *events.APIGatewayV2HTTPRequest) { r.RequestContext.HTTP.Method = "POST" }, 405, handlers.CodeMethodNotAllowed, ""},
		{"DELETE healthz", func(r *events.APIGatewayV2HTTPRequest) {
			r.RequestContext.HTTP.Method, r.RawPath, r.RouteKey = "DELETE", "/healthz", "DELETE /healthz"
		}, 405, handlers.CodeMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := apiRequest(t, "apigw-v2-request-tallies.json")
			tt.change(&req)
			resp, err := q.Handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			eb := errorOf(t, resp, tt.status)
			if eb.Error.Code != tt.code || eb.Error.Field != tt.field {
				t.Errorf("error %+v, want code %q field %q", eb.Error, tt.code, tt.field)
			}
			if tt.status == 405 && resp.Headers["allow"] != "GET" {
				t.Errorf("405 without allow: GET (headers %v)", resp.Headers)
			}
		})
	}
}

func TestQueryUnavailableTallies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.cfg
	cfg.Tables.Tallies = cfg.Tables.Tallies + "-missing"
	q := functions.Query(cfg, f.clients.DynamoDB, discard())

	resp, err := q.Handle(context.Background(), apiRequest(t, "apigw-v2-request-tallies.json"))
	if err != nil {
		t.Fatal(err)
	}
	eb := errorOf(t, resp, http.StatusServiceUnavailable)
	if eb.Error.Code != handlers.CodeUnavailable {
		t.Errorf("code %q, want %q", eb.Error.Code, handlers.CodeUnavailable)
	}
	if strings.Contains(resp.Body, cfg.Tables.Tallies) || strings.Contains(strings.ToLower(resp.Body), "dynamodb") {
		t.Errorf("response %s leaks the internal error", resp.Body)
	}
}
