package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/projections"
)

// TestTitlesAndExport: votes titles prints the leaderboard in the API's
// order, and votes export writes every title's tallies (or those named),
// as CSV or NDJSON, equal to what was voted.
func TestTitlesAndExport(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Settings: local.FastSettings()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	want := map[string]projections.Counts{}
	vote := func(voter, title, choice string) {
		postVote(t, s.URL, voter, title, choice)
		if want[title] == nil {
			want[title] = projections.Counts{}
		}
		want[title].Add("story", choice, 1)
	}
	for i := range 5 {
		vote("u"+strconv.Itoa(i), "tt-five", "up")
	}
	vote("u1", "tt-two", "up")
	vote("u2", "tt-two", "down")
	vote("u1", "tt-one", "down")
	api := []string{"--api", s.URL}

	// The leaderboard is refreshed on the ranker's schedule.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, errOut := votes(t, append([]string{"titles"}, api...)...)
		if code == 0 && hasRow(out, "1", "tt-five", "5") && hasRow(out, "2", "tt-two", "2") && hasRow(out, "3", "tt-one", "1") {
			if !hasRow(out, "RANK", "TITLE", "VOTES") || !strings.Contains(out, "ranked at ") {
				t.Errorf("no header, or no time of ranking:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("votes titles never listed the three titles in order: exit %d\n%s%s", code, out, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Each order is ranked in turn: the approval order may come a moment
	// after the order by votes.
	for {
		code, out, _ := votes(t, append([]string{"titles", "--sort", "approval", "--aspect", "story", "--limit", "1"}, api...)...)
		if code == 0 && hasRow(out, "1", "tt-five") && !strings.Contains(out, "tt-two") {
			break
		}
		if time.Now().After(deadline) || (code == 0 && !strings.Contains(out, "no titles yet")) {
			t.Fatalf("titles by approval, limit 1: exit %d\n%s", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	code, out, errOut := votes(t, append([]string{"export"}, api...)...)
	if code != 0 {
		t.Fatalf("export: exit %d %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) == 0 || strings.Join(rows[0], ",") != "titleId,aspect,choice,votes" {
		t.Fatalf("export csv: %v\n%s", err, out)
	}
	got := map[string]projections.Counts{}
	for _, r := range rows[1:] {
		n, _ := strconv.ParseInt(r[3], 10, 64)
		if got[r[0]] == nil {
			got[r[0]] = projections.Counts{}
		}
		got[r[0]].Add(r[1], r[2], n)
	}
	for title, c := range want {
		if !got[title].Equal(c) {
			t.Errorf("export says %s has %v, voted %v", title, got[title], c)
		}
	}
	if len(got) != len(want) {
		t.Errorf("export has %d titles, voted on %d", len(got), len(want))
	}

	code, out, _ = votes(t, append([]string{"export", "--format", "ndjson", "--titles", "tt-two"}, api...)...)
	var line titleTallies
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &line) != nil || line.TitleID != "tt-two" || !projections.Counts(line.Aspects).Equal(want["tt-two"]) {
		t.Errorf("export ndjson of tt-two: exit %d\n%s", code, out)
	}
	if code, _, errOut := votes(t, append([]string{"export", "--what", "rankings"}, api...)...); code != 2 || !strings.Contains(errOut, "tallies or trends") {
		t.Errorf("export --what rankings: exit %d %q", code, errOut)
	}
	if code, _, errOut := votes(t, append([]string{"export", "--format", "xml"}, api...)...); code != 2 || !strings.Contains(errOut, "csv or ndjson") {
		t.Errorf("export --format xml: exit %d %q", code, errOut)
	}
	// The CSV the API itself gives, for a spreadsheet's URL import.
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/titles", nil)
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET /titles as CSV: %v %v", resp, err)
	}
	resp.Body.Close()
}
