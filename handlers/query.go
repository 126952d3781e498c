package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
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

// Query handles GET /titles, GET /titles/{titleId}/tallies (now, or ?at=
// a past minute), GET /titles/{titleId}/trend, GET /healthz, and the
// dashboard: GET / and GET /assets/{proxy+}.
type Query struct {
	catalog     domain.Catalog
	versions    ActiveVersion
	talliesFor  func(version string) TallyReader
	rankingsFor func(version string) RankingReader
	trendsFor   func(version string) projections.TrendSource
	now         func() time.Time
	maxAge      string // Cache-Control of a tally
	log         *slog.Logger
}

// QueryReaders are the projections the query handler reads, per version.
type QueryReaders struct {
	Tallies  func(version string) TallyReader
	Rankings func(version string) RankingReader
	Trends   func(version string) projections.TrendSource
}

// NewQuery builds the query handler on the clock now. Tallies are
// answered with Cache-Control max-age of maxAge (whole seconds): how long
// a client or a shared cache may keep them.
func NewQuery(catalog domain.Catalog, versions ActiveVersion, readers QueryReaders, now func() time.Time, maxAge time.Duration, log *slog.Logger) *Query {
	return &Query{catalog: catalog, versions: versions, talliesFor: readers.Tallies, rankingsFor: readers.Rankings, trendsFor: readers.Trends,
		now: now, log: log, maxAge: "public, max-age=" + strconv.Itoa(int(maxAge/time.Second))}
}

// TallyBody is the tallies response. At is the minute a tally as of a
// past moment stands at (the votes received before it); absent for the
// current tallies.
type TallyBody struct {
	TitleID string                      `json:"titleId"`
	Aspects map[string]map[string]int64 `json:"aspects"`
	At      *time.Time                  `json:"at,omitempty"`
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
	if req.RouteKey == "GET /titles/{titleId}/trend" || strings.HasSuffix(req.RawPath, "/trend") {
		return q.trend(ctx, req, titleID), nil
	}
	if at, ok, derr := parseTime(req.QueryStringParameters, "at"); derr != nil {
		return errorResponse(derr), nil
	} else if ok {
		return q.talliesAt(ctx, titleID, at), nil
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
	resp := jsonResponse(http.StatusOK, TallyBody{TitleID: titleID, Aspects: q.withZeros(counts)})
	resp.Headers["cache-control"] = q.maxAge
	return resp, nil
}
