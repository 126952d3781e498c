package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"votes/domain"
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
	if again := demoVotes(now, domain.DefaultCatalog()); len(again) == 0 || again[0][0].VoteID != events[0].VoteID {
		t.Errorf("the demo is not the same for the same time")
	}
}
