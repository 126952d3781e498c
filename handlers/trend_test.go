package handlers_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/handlers"
	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/projections"
	"votes/projections/projectiontest"
)

// titleRequest is GET /titles/{titleId}/<what>, as API Gateway sends it.
func titleRequest(t *testing.T, titleID, what string, params, headers map[string]string) events.APIGatewayV2HTTPRequest {
	req := apiRequest(t, "apigw-v2-request-tallies.json")
	route := "GET /titles/{titleId}/" + what
	req.RouteKey, req.RequestContext.RouteKey = route, route
	req.RawPath = "/titles/" + titleID + "/" + what
	req.RequestContext.HTTP.Path = req.RawPath
	req.PathParameters = map[string]string{"titleId": titleID}
	req.QueryStringParameters = params
	for k, v := range headers {
		req.Headers[k] = v
	}
	return req
}

// trendNow is the query function's clock in these tests.
var trendNow = time.Date(2026, 11, 29, 18, 30, 0, 0, time.UTC)

func TestTrendRefusesBadParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := functions.QueryAt(f.cfg, f.clients.DynamoDB, func() time.Time { return trendNow }, discard())
	for _, tt := range []struct {
		what   string
		params map[string]string
		field  string
	}{
		{"trend", map[string]string{"aspect": "plot"}, "aspect"},
		{"trend", map[string]string{"bucket": "week"}, "bucket"},
		{"trend", map[string]string{"from": "yesterday"}, "from"},
		{"trend", map[string]string{"to": "2026-11-29 18:00"}, "to"},
		{"trend", map[string]string{"from": "2026-11-29T18:00:00Z", "to": "2026-11-29T17:00:00Z"}, "from"},
		{"trend", map[string]string{"bucket": "minute", "from": "2026-11-01T00:00:00Z"}, "from"},
		{"tallies", map[string]string{"at": "now"}, "at"},
		{"tallies", map[string]string{"at": trendNow.Add(time.Hour).Format(time.RFC3339)}, "at"},
	} {
		resp, err := q.Handle(context.Background(), titleRequest(t, "tt1", tt.what, tt.params, nil))
		if err != nil {
			t.Fatal(err)
		}
		eb := errorOf(t, resp, http.StatusBadRequest)
		if eb.Error.Code != domain.CodeInvalidField || eb.Error.Field != tt.field {
			t.Errorf("%s %v: %+v, want invalid_field on %s", tt.what, tt.params, eb.Error, tt.field)
		}
	}
}

// TestTrendAndTalliesAtFollowTheFold: votes projected into the stores on
// DynamoDB's API come back by minute, as JSON and CSV, and as of a past
// minute, as the fold of the votes received before then.
func TestTrendAndTalliesAtFollowTheFold(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	db, tables := f.clients.DynamoDB, f.cfg.Tables
	base := trendNow.Add(-90 * time.Minute)
	at := func(d time.Duration) int64 { return base.Add(d).UnixNano() }
	events := []domain.VoteCast{
		projectiontest.Vote("u1", "tt1", "s1", "overall", "up", at(0)),
		projectiontest.Vote("u2", "tt1", "s2", "overall", "up", at(2*time.Minute)),
		projectiontest.Vote("u1", "tt1", "s3", "overall", "down", at(50*time.Minute)),
		projectiontest.Vote("u3", "tt1", "s4", "overall", "down", at(70*time.Minute)),
		projectiontest.Vote("u2", "tt1", "s5", "story", "up", at(71*time.Minute)),
	}
	titles := dynamo.NewTitleStore(db, tables.Titles, "1")
	cells := dynamo.NewCellStore(db, tables.Tallies, "1")
	p := projections.NewIndexedProjector(dynamo.NewBallotStore(db, tables.Ballots, "1"), cells, titles, cells, 2)
	// u1's later vote first: the trend still shows u1 up from 0 to 50 minutes.
	for _, batch := range [][]domain.VoteCast{events[2:], events[:2]} {
		if rep := p.Project(ctx, batch); len(rep.Failed) > 0 {
			t.Fatal(rep.Failed)
		}
	}
	q := functions.QueryAt(f.cfg, db, func() time.Time { return trendNow }, discard())

	params := map[string]string{"bucket": "minute", "from": base.Format(time.RFC3339), "to": trendNow.Format(time.RFC3339)}
	resp, err := q.Handle(ctx, titleRequest(t, "tt1", "trend", params, nil))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET trend: %v %d %s", err, resp.StatusCode, resp.Body)
	}
	var body handlers.TrendBody
	decodeBody(t, resp, &body)
	want := projections.FoldTrend(events, "tt1", "overall", projections.ByMinute, projections.MinuteOf(base.UnixNano()), projections.MinuteOf(trendNow.UnixNano()))
	if body.Aspect != "overall" || body.Bucket != "minute" || len(body.Points) != 90 || len(want) != 90 {
		t.Fatalf("trend of %s by %s: %d points, want 90", body.Aspect, body.Bucket, len(body.Points))
	}
	for i, pt := range body.Points {
		w := want[i]
		if !pt.T.Equal(time.Unix(w.Start*60, 0)) || pt.Cast["up"] != w.Cast["up"] || pt.Cast["down"] != w.Cast["down"] ||
			pt.Tally["up"] != w.Tally["up"] || pt.Tally["down"] != w.Tally["down"] {
			t.Fatalf("point %d: %+v, the fold's %+v", i, pt, w)
		}
	}
	if mid := body.Points[10].Tally; mid["up"] != 2 || mid["down"] != 0 {
		t.Errorf("10 minutes in, the tally is %v, want both voters up", mid)
	}

	resp, _ = q.Handle(ctx, titleRequest(t, "tt1", "trend", params, map[string]string{"accept": "text/csv"}))
	rows, err := csv.NewReader(strings.NewReader(resp.Body)).ReadAll()
	if err != nil || len(rows) != 91 || strings.Join(rows[0], ",") != "titleId,aspect,bucket,t,cast_up,cast_down,tally_up,tally_down" {
		t.Fatalf("CSV trend: %d rows, header %v, %v", len(rows), rows[0], err)
	}
	if last := rows[90]; last[6] != "1" || last[7] != "2" {
		t.Errorf("CSV's last row %v, want the current tally: 1 up, 2 down", last)
	}

	for _, d := range []time.Duration{time.Minute, 30 * time.Minute, 60 * time.Minute, 80 * time.Minute} {
		asOf := base.Add(d + 20*time.Second)
		resp, _ := q.Handle(ctx, titleRequest(t, "tt1", "tallies", map[string]string{"at": asOf.Format(time.RFC3339Nano)}, nil))
		var tb handlers.TallyBody
		decodeBody(t, resp, &tb)
		minute := projections.MinuteOf(asOf.UnixNano())
		if tb.At == nil || !tb.At.Equal(time.Unix(minute*60, 0)) {
			t.Fatalf("as of %s: answered for %v, want its minute", asOf, tb.At)
		}
		if want := projections.FoldAt(events, minute)["tt1"]; !projections.Counts(tb.Aspects).Equal(want) {
			t.Errorf("as of %s: %v, the fold %v", asOf, tb.Aspects, want)
		}
	}
}
