package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"votes/domain"
	"votes/handlers"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/projections"
)

// TestDemoFillsTheDashboard: the demo's votes reach the pipeline like live
// ones, days apart, and the leaderboard ranks every demo title with the
// tallies the fold of those votes gives.
func TestDemoFillsTheDashboard(t *testing.T) {
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Settings: local.DefaultSettings()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	now := time.Now()
	events, err := seedDemo(context.Background(), s.Admin.DynamoDB, s.Tables.Events, now, domain.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RankNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	var first, last int64 = now.UnixNano(), 0
	for _, e := range events {
		first, last = min(first, e.RecordedAt), max(last, e.RecordedAt)
	}
	if spread := time.Duration(last - first); spread < 48*time.Hour {
		t.Errorf("the demo's votes span %s, want days", spread)
	}
	fold := projections.Fold(events)
	resp, err := http.Get(s.URL + "/titles?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Titles []struct {
			TitleID string                      `json:"titleId"`
			Votes   int64                       `json:"votes"`
			Aspects map[string]map[string]int64 `json:"aspects"`
		} `json:"titles"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Titles) != len(demoTitles) {
		t.Fatalf("the leaderboard ranks %d titles, want the demo's %d", len(body.Titles), len(demoTitles))
	}
	for i, r := range body.Titles {
		if !projections.Counts(r.Aspects).Equal(fold[r.TitleID]) {
			t.Errorf("%s: leaderboard %v, fold %v", r.TitleID, r.Aspects, fold[r.TitleID])
		}
		if i > 0 && r.Votes > body.Titles[i-1].Votes {
			t.Errorf("%s with %d votes ranks below %s with %d", r.TitleID, r.Votes, body.Titles[i-1].TitleID, body.Titles[i-1].Votes)
		}
	}
	// Each title's trend, by hour and by day, and its tallies as of a few
	// past moments, are the fold of the votes received before then.
	from, to := time.Unix(0, first).UTC(), now.UTC()
	for _, title := range demoTitles {
		for _, bucket := range []projections.Bucket{projections.ByHour, projections.ByDay} {
			var trend handlers.TrendBody
			if err := getJSON(context.Background(), s.URL, "/titles/"+title+"/trend?bucket="+string(bucket)+"&aspect=overall&from="+from.Format(time.RFC3339)+"&to="+to.Format(time.RFC3339), &trend); err != nil {
				t.Fatal(err)
			}
			want := projections.FoldTrend(events, title, "overall", bucket, projections.MinuteOf(trend.From.UnixNano()), projections.MinuteOf(trend.To.UnixNano()))
			if len(trend.Points) != len(want) || len(want) == 0 {
				t.Fatalf("%s by %s: %d points, the fold has %d", title, bucket, len(trend.Points), len(want))
			}
			for i, p := range trend.Points {
				w := want[i]
				if p.T.UnixNano() != w.Start*int64(time.Minute) || !projections.Counts(map[string]map[string]int64{"o": p.Cast}).Equal(map[string]map[string]int64{"o": w.Cast}) ||
					!projections.Counts(map[string]map[string]int64{"o": p.Tally}).Equal(map[string]map[string]int64{"o": w.Tally}) {
					t.Fatalf("%s by %s, point %d: %+v, the fold's %+v", title, bucket, i, p, w)
				}
			}
			if last := trend.Points[len(trend.Points)-1]; !projections.Counts(map[string]map[string]int64{"overall": last.Tally}).Equal(projections.Counts{"overall": fold[title]["overall"]}) {
				t.Errorf("%s by %s: the last point's tally %v is not the current tally %v", title, bucket, last.Tally, fold[title]["overall"])
			}
		}
		for _, back := range []time.Duration{30 * time.Minute, 7 * time.Hour, 25 * time.Hour, 50 * time.Hour} {
			at := now.Add(-back)
			var tallies handlers.TallyBody
			if err := getJSON(context.Background(), s.URL, "/titles/"+title+"/tallies?at="+at.UTC().Format(time.RFC3339Nano), &tallies); err != nil {
				t.Fatal(err)
			}
			minute := projections.MinuteOf(at.UnixNano())
			if tallies.At == nil || tallies.At.UnixNano() != minute*int64(time.Minute) {
				t.Fatalf("%s as of %s: answered for %v, want the start of its minute", title, at, tallies.At)
			}
			if want := projections.FoldAt(events, minute)[title]; !projections.Counts(tallies.Aspects).Equal(want) {
				t.Errorf("%s as of %s: %v, the fold of the votes before it %v", title, tallies.At, tallies.Aspects, want)
			}
		}
	}
	if again := demoVotes(now, domain.DefaultCatalog()); len(again) == 0 || again[0][0].VoteID != events[0].VoteID {
		t.Errorf("the demo is not the same for the same time")
	}
}
