package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/projections"
)

// TallyReader reads a title's tally from the active projection.
type TallyReader interface {
	Tally(ctx context.Context, titleID string) (projections.Counts, error)
}

// ActiveVersion says which projection version queries read.
type ActiveVersion interface {
	Active(ctx context.Context) (string, error)
}

// Query handles GET /titles, GET /titles/{titleId}/tallies, GET /healthz,
// and the dashboard: GET / and GET /assets/{proxy+}.
type Query struct {
	catalog     domain.Catalog
	versions    ActiveVersion
	talliesFor  func(version string) TallyReader
	rankingsFor func(version string) RankingReader
	maxAge      string // Cache-Control of a tally
	log         *slog.Logger
}

// NewQuery builds the query handler. Tallies are answered with
// Cache-Control max-age of maxAge (whole seconds): how long a client or a
// shared cache may keep them.
func NewQuery(catalog domain.Catalog, versions ActiveVersion, talliesFor func(version string) TallyReader, rankingsFor func(version string) RankingReader, maxAge time.Duration, log *slog.Logger) *Query {
	return &Query{catalog: catalog, versions: versions, talliesFor: talliesFor, rankingsFor: rankingsFor, log: log,
		maxAge: "public, max-age=" + strconv.Itoa(int(maxAge/time.Second))}
}

// TallyBody is the tallies response.
type TallyBody struct {
	TitleID string                      `json:"titleId"`
	Aspects map[string]map[string]int64 `json:"aspects"`
}

// Handle is the Lambda handler for the query routes.
func (q *Query) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if req.RequestContext.HTTP.Method != http.MethodGet {
		return methodNotAllowed(http.MethodGet), nil
	}
	if req.RawPath == "/healthz" || req.RouteKey == "GET /healthz" {
		return jsonResponse(http.StatusOK, map[string]string{"status": "ok"}), nil
	}
	if resp, ok := q.dashboard(req); ok {
		return resp, nil
	}
	if req.RawPath == "/titles" || req.RouteKey == "GET /titles" {
		return q.listTitles(ctx, req), nil
	}
	titleID, err := domain.ValidTitleID(req.PathParameters["titleId"])
	if err != nil {
		return errorResponse(clientError(err)), nil
	}
	version, err := q.versions.Active(ctx)
	var counts projections.Counts
	if err == nil {
		counts, err = q.talliesFor(version).Tally(ctx, titleID)
	}
	if errors.Is(err, ErrReadBudget) {
		// A flood of reads of titles nobody read lately: refused by design,
		// so not an error worth a line each.
		q.log.DebugContext(ctx, "read tally over budget", "title", titleID)
		return errorResponse(&domain.Error{Code: CodeUnavailable, Message: "tallies cannot be read right now"}), nil
	}
	if err != nil {
		q.log.ErrorContext(ctx, "read tally", "title", titleID, "err", err)
		return errorResponse(&domain.Error{Code: CodeUnavailable, Message: "tallies cannot be read right now"}), nil
	}
	body := TallyBody{TitleID: titleID, Aspects: map[string]map[string]int64{}}
	for aspect, m := range counts.Compact() {
		// Every choice of a counted aspect is shown, zeros included.
		for _, a := range q.catalog.Aspects() {
			if a.Name == aspect {
				for _, c := range a.Choices {
					m[c] += 0
				}
			}
		}
		body.Aspects[aspect] = m
	}
	resp := jsonResponse(http.StatusOK, body)
	resp.Headers["cache-control"] = q.maxAge
	return resp, nil
}
