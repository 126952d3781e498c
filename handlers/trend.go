package handlers

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/projections"
)

// TrendPoint is one bucket of GET /titles/{titleId}/trend: the votes cast
// in it and the tally at its end, every choice of the aspect present.
type TrendPoint struct {
	T     time.Time        `json:"t"`
	Cast  map[string]int64 `json:"cast"`
	Tally map[string]int64 `json:"tally"`
}

// TrendBody is GET /titles/{titleId}/trend's body.
type TrendBody struct {
	TitleID string       `json:"titleId"`
	Aspect  string       `json:"aspect"`
	Bucket  string       `json:"bucket"`
	From    time.Time    `json:"from"`
	To      time.Time    `json:"to"`
	Points  []TrendPoint `json:"points"`
}

// MaxTrendPoints bounds the points of one trend read.
const MaxTrendPoints = 2000

// defaultSpan is how far back a trend goes when from is not given.
var defaultSpan = map[projections.Bucket]time.Duration{
	projections.ByMinute: 120 * time.Minute,
	projections.ByHour:   48 * time.Hour,
	projections.ByDay:    30 * 24 * time.Hour,
}

func invalid(field, format string, args ...any) *domain.Error {
	return &domain.Error{Code: domain.CodeInvalidField, Field: field, Message: fmt.Sprintf(format, args...)}
}

// parseTime reads an RFC3339 time parameter.
func parseTime(params map[string]string, name string) (time.Time, bool, *domain.Error) {
	s, ok := params[name]
	if !ok {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, invalid(name, "%s %q is not an RFC 3339 time, such as 2026-11-29T18:00:00Z", name, s)
	}
	return t, true, nil
}

type trendQuery struct {
	aspect   string
	bucket   projections.Bucket
	from, to int64 // Unix minutes, whole buckets
}

func (q *Query) parseTrendQuery(params map[string]string) (trendQuery, *domain.Error) {
	tq := trendQuery{aspect: q.catalog.AspectNames()[0], bucket: projections.ByHour}
	if a, ok := params["aspect"]; ok {
		if _, known := q.catalog.Aspect(a); !known {
			return tq, invalid("aspect", "aspect %q is not one of %s", a, strings.Join(q.catalog.AspectNames(), ", "))
		}
		tq.aspect = a
	}
	if b, ok := params["bucket"]; ok {
		var known bool
		if tq.bucket, known = projections.ParseBucket(b); !known {
			return tq, invalid("bucket", "bucket %q is not one of minute, hour, day", b)
		}
	}
	to, ok, err := parseTime(params, "to")
	if err != nil {
		return tq, err
	}
	if !ok {
		to = q.now()
	}
	from, ok, err := parseTime(params, "from")
	if err != nil {
		return tq, err
	}
	if !ok {
		from = to.Add(-defaultSpan[tq.bucket])
	}
	n := tq.bucket.Minutes()
	tq.from = tq.bucket.Floor(minuteOf(from))
	tq.to = tq.bucket.Floor(minuteOf(to.Add(time.Duration(n)*time.Minute - time.Nanosecond)))
	switch {
	case tq.from >= tq.to:
		return tq, invalid("from", "from must be before to")
	case (tq.to-tq.from)/n > MaxTrendPoints:
		return tq, invalid("from", "from %s to %s is %d %s buckets, more than %d: choose a larger bucket or a shorter span",
			from.Format(time.RFC3339), to.Format(time.RFC3339), (tq.to-tq.from)/n, tq.bucket, MaxTrendPoints)
	}
	return tq, nil
}

func minuteOf(t time.Time) int64 { return projections.MinuteOf(t.UnixNano()) }

func timeOf(minute int64) time.Time { return time.Unix(minute*60, 0).UTC() }

// trend answers GET /titles/{titleId}/trend.
func (q *Query) trend(ctx context.Context, req events.APIGatewayV2HTTPRequest, titleID string) events.APIGatewayV2HTTPResponse {
	tq, derr := q.parseTrendQuery(req.QueryStringParameters)
	if derr != nil {
		return errorResponse(derr)
	}
	version, err := q.versions.Active(ctx)
	var points []projections.TrendPoint
	if err == nil {
		points, err = projections.ReadTrend(ctx, q.trendsFor(version), titleID, tq.aspect, tq.bucket, tq.from, tq.to)
	}
	if err != nil {
		return q.unavailable(ctx, "read trend", titleID, err, "the trend cannot be read right now")
	}
	body := TrendBody{TitleID: titleID, Aspect: tq.aspect, Bucket: string(tq.bucket), From: timeOf(tq.from), To: timeOf(tq.to), Points: make([]TrendPoint, 0, len(points))}
	choices := q.choices(tq.aspect)
	for _, p := range points {
		tp := TrendPoint{T: timeOf(p.Start), Cast: map[string]int64{}, Tally: map[string]int64{}}
		for _, c := range choices {
			tp.Cast[c], tp.Tally[c] = p.Cast[c], p.Tally[c]
		}
		body.Points = append(body.Points, tp)
	}
	if wantsCSV(req.Headers) {
		return q.trendCSV(body, choices)
	}
	resp := jsonResponse(http.StatusOK, body)
	resp.Headers["cache-control"] = q.maxAge
	return resp
}

func (q *Query) choices(aspect string) []string {
	a, _ := q.catalog.Aspect(aspect)
	return a.Choices
}

// unavailable logs err and answers 503 with message.
func (q *Query) unavailable(ctx context.Context, what, titleID string, err error, message string) events.APIGatewayV2HTTPResponse {
	if errors.Is(err, projections.ErrCatchingUp) {
		q.log.WarnContext(ctx, what, "title", titleID, "err", err)
	} else {
		q.log.ErrorContext(ctx, what, "title", titleID, "err", err)
	}
	return errorResponse(&domain.Error{Code: CodeUnavailable, Message: message})
}

// trendCSV is a trend as CSV: a row per point, the votes cast then the
// tally per choice of the aspect, in the catalog's order.
func (q *Query) trendCSV(body TrendBody, choices []string) events.APIGatewayV2HTTPResponse {
	var b strings.Builder
	w := csv.NewWriter(&b)
	header := []string{"titleId", "aspect", "bucket", "t"}
	for _, kind := range []string{"cast_", "tally_"} {
		for _, c := range choices {
			header = append(header, kind+c)
		}
	}
	_ = w.Write(header)
	for _, p := range body.Points {
		rec := []string{body.TitleID, body.Aspect, body.Bucket, p.T.Format(time.RFC3339)}
		for _, m := range []map[string]int64{p.Cast, p.Tally} {
			for _, c := range choices {
				rec = append(rec, strconv.FormatInt(m[c], 10))
			}
		}
		_ = w.Write(rec)
	}
	w.Flush()
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: b.String(),
		Headers: map[string]string{"content-type": "text/csv; charset=utf-8", "cache-control": q.maxAge}}
}

// talliesAt answers GET /titles/{titleId}/tallies?at=: the tallies as of
// the start of at's minute.
func (q *Query) talliesAt(ctx context.Context, titleID string, at time.Time) events.APIGatewayV2HTTPResponse {
	if at.After(q.now()) {
		return errorResponse(invalid("at", "at %s is in the future", at.Format(time.RFC3339)))
	}
	minute := minuteOf(at)
	version, err := q.versions.Active(ctx)
	var counts projections.Counts
	if err == nil {
		counts, err = projections.TalliesAt(ctx, q.trendsFor(version), titleID, minute)
	}
	if err != nil {
		return q.unavailable(ctx, "read tallies at", titleID, err, "tallies cannot be read right now")
	}
	asOf := timeOf(minute)
	resp := jsonResponse(http.StatusOK, TallyBody{TitleID: titleID, Aspects: q.withZeros(counts), At: &asOf})
	resp.Headers["cache-control"] = q.maxAge
	return resp
}
