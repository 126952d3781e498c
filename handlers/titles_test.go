package handlers_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/handlers"
	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/projections"
)

// listRequest is GET /titles with query parameters, as API Gateway sends it.
func listRequest(t *testing.T, params map[string]string, headers map[string]string) events.APIGatewayV2HTTPRequest {
	req := apiRequest(t, "apigw-v2-request-tallies.json")
	req.RouteKey, req.RequestContext.RouteKey = "GET /titles", "GET /titles"
	req.RawPath, req.RequestContext.HTTP.Path = "/titles", "/titles"
	req.PathParameters = nil
	req.QueryStringParameters = params
	for k, v := range headers {
		req.Headers[k] = v
	}
	return req
}

// rankedGeneration is when seedRankings' refresh ran.
var rankedGeneration = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixNano()

// seedRankings writes the rankings of n titles, tt000 with 0 up-votes to
// tt(n-1) with n-1, each with one down-vote, for the active version.
func seedRankings(t *testing.T, f fixture, n int) {
	t.Helper()
	ctx := context.Background()
	store := dynamo.NewTitleStore(f.clients.DynamoDB, f.cfg.Tables.Titles, "1")
	var sums []projections.TitleSummary
	for i := range n {
		c := projections.Counts{}
		c.Add("overall", "up", int64(i))
		c.Add("overall", "down", 1)
		sums = append(sums, projections.TitleSummary{TitleID: fmt.Sprintf("tt%03d", i), Counts: c, LastVoteAt: int64(1_700_000_000_000_000_000 + i)})
	}
	for _, key := range projections.RankingKeys(f.cfg.Catalog.AspectNames()) {
		if err := store.PutPages(ctx, projections.Pages(sums, key, rankedGeneration)); err != nil {
			t.Fatal(err)
		}
	}
}

func list(t *testing.T, q *handlers.Query, params map[string]string) handlers.TitleList {
	t.Helper()
	resp, err := q.Handle(context.Background(), listRequest(t, params, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /titles %v: status %d: %s", params, resp.StatusCode, resp.Body)
	}
	var body handlers.TitleList
	decodeBody(t, resp, &body)
	return body
}

func TestListTitlesPagesThroughEveryTitleInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedRankings(t, f, 230)
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())

	first := list(t, q, map[string]string{"sort": "votes"})
	if len(first.Titles) != handlers.DefaultTitleLimit || first.Titles[0].TitleID != "tt229" || first.Next == nil {
		t.Fatalf("first page: %d titles from %v, next %v", len(first.Titles), first.Titles[0], first.Next)
	}
	if first.RankedAt != time.Unix(0, rankedGeneration).UTC().Format(time.RFC3339Nano) {
		t.Errorf("rankedAt %q, want the time of the refresh that wrote the pages", first.RankedAt)
	}
	if r := first.Titles[0]; r.Votes != 230 || r.Aspects["overall"]["up"] != 229 || r.Aspects["overall"]["down"] != 1 || r.LastVoteAt == "" {
		t.Errorf("first row %+v", r)
	}
	// Limits that cross the 100-title pages, to the end.
	seen := map[string]bool{}
	var order []string
	params := map[string]string{"sort": "votes", "limit": "70"}
	for pages := 0; ; pages++ {
		body := list(t, q, params)
		for _, r := range body.Titles {
			if seen[r.TitleID] {
				t.Fatalf("title %s listed twice", r.TitleID)
			}
			seen[r.TitleID] = true
			order = append(order, r.TitleID)
		}
		if body.Next == nil {
			break
		}
		params["cursor"] = *body.Next
		if pages > 10 {
			t.Fatal("no end to the listing")
		}
	}
	if len(order) != 230 || order[0] != "tt229" || order[229] != "tt000" {
		t.Fatalf("listed %d titles, from %s to %s; want 230 from tt229 to tt000", len(order), order[0], order[len(order)-1])
	}

	// Approval defaults to overall; a title with 0 up of 1 comes last.
	appr := list(t, q, map[string]string{"sort": "approval", "limit": "100"})
	if appr.Aspect != "overall" || appr.Titles[0].TitleID != "tt229" || appr.Titles[0].Approval <= appr.Titles[99].Approval {
		t.Errorf("approval listing: aspect %q, first %+v", appr.Aspect, appr.Titles[0])
	}
	recent := list(t, q, map[string]string{"sort": "recent", "aspect": "story"})
	if recent.Titles[0].TitleID != "tt229" {
		t.Errorf("recent: first %s, want tt229 (latest vote)", recent.Titles[0].TitleID)
	}
}

func TestListTitlesRefusesBadParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedRankings(t, f, 3)
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	other := list(t, q, map[string]string{"sort": "votes", "limit": "1"}).Next
	for _, tc := range []struct {
		params map[string]string
		field  string
	}{
		{map[string]string{"sort": "best"}, "sort"},
		{map[string]string{"aspect": "plot"}, "aspect"},
		{map[string]string{"limit": "0"}, "limit"},
		{map[string]string{"limit": "101"}, "limit"},
		{map[string]string{"limit": "ten"}, "limit"},
		{map[string]string{"cursor": "%%%"}, "cursor"},
		{map[string]string{"sort": "approval", "cursor": *other}, "cursor"},
	} {
		resp, err := q.Handle(context.Background(), listRequest(t, tc.params, nil))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		decodeBody(t, resp, &body)
		if resp.StatusCode != http.StatusBadRequest || body.Error.Code != "invalid_field" || body.Error.Field != tc.field || body.Error.Message == "" {
			t.Errorf("%v: %d %+v, want 400 invalid_field on %s", tc.params, resp.StatusCode, body.Error, tc.field)
		}
	}
}

func TestListTitlesAsCSV(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedRankings(t, f, 3)
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	resp, err := q.Handle(context.Background(), listRequest(t, map[string]string{"limit": "2"}, map[string]string{"accept": "text/csv"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Headers["content-type"], "text/csv") {
		t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Headers["content-type"])
	}
	rows, err := csv.NewReader(strings.NewReader(resp.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "titleId" || rows[0][4] != "overall_up" || rows[1][0] != "tt002" || rows[1][1] != "3" || rows[1][4] != "2" || rows[1][5] != "1" {
		t.Fatalf("csv %q", rows)
	}
	if !strings.Contains(resp.Headers["link"], `rel="next"`) {
		t.Errorf("no link to the next page: %v", resp.Headers)
	}
}

func TestListTitlesBeforeAnyRanking(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	if body := list(t, q, nil); len(body.Titles) != 0 || body.Next != nil {
		t.Fatalf("listing with no titles: %+v", body)
	}
}
