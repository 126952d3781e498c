package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"votes/domain"
	"votes/handlers"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/projections"
)

// trendWant is what a trend's point must hold by the fold of the events:
// the votes on title and aspect received in [t, t+width), and the tally
// of those received before t+width.
func trendWant(events []domain.VoteCast, title, aspect string, t time.Time, width time.Duration) (cast, tally map[string]int64) {
	end := t.Add(width).UnixNano()
	cast = map[string]int64{}
	var before []domain.VoteCast
	for _, e := range events {
		if e.RecordedAt >= end {
			continue
		}
		before = append(before, e)
		if e.TitleID == title && e.Aspect == aspect && e.RecordedAt >= t.UnixNano() {
			cast[e.Choice]++
		}
	}
	return cast, projections.Fold(before)[title][aspect]
}

func sameCounts(a, b map[string]int64) bool {
	return projections.Counts{"x": a}.Equal(projections.Counts{"x": b})
}

// TestExportTrends: votes export --what trends writes, for every title or
// those named, the trend of an aspect at the bucket asked, as CSV or
// NDJSON, to stdout or a file; each bucket holds the votes received in it
// and the tally of those received before its end, as the fold of three
// days of seeded votes gives them, and the CSV is the one the API gives.
func TestExportTrends(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ctx := context.Background()
	s, err := local.Start(ctx, local.Config{Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Settings: local.FastSettings()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	now := time.Now()
	events, err := seedDemo(ctx, s.Admin.DynamoDB, s.Tables.Events, now, domain.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RankNow(ctx); err != nil {
		t.Fatal(err)
	}
	fold := projections.Fold(events)
	api := []string{"--api", s.URL}

	// Once projected, a title's trend ends on its tallies.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var b handlers.TrendBody
		err := getJSON(ctx, s.URL, "/titles/"+demoTitles[0]+"/trend?aspect=story&bucket=day", &b)
		if err == nil && len(b.Points) > 0 && sameCounts(b.Points[len(b.Points)-1].Tally, fold[demoTitles[0]]["story"]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trend of %s never reached its tallies %v: %v %+v", demoTitles[0], fold[demoTitles[0]]["story"], err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every title, by day on story, to stdout as CSV.
	day := 24 * time.Hour
	before := time.Now()
	code, out, errOut := votes(t, append([]string{"export", "--what", "trends", "--bucket", "day", "--aspect", "story"}, api...)...)
	if code != 0 {
		t.Fatalf("export --what trends: exit %d %s", code, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("export trends csv: %v\n%s", err, out)
	}
	if got, want := strings.Join(rows[0], ","), "titleId,aspect,bucket,t,cast_up,cast_down,tally_up,tally_down"; got != want {
		t.Fatalf("export trends header %q, want %q", got, want)
	}
	first, last := events[0].RecordedAt, events[0].RecordedAt
	for _, e := range events {
		first, last = min(first, e.RecordedAt), max(last, e.RecordedAt)
	}
	byTitle := map[string][][]string{}
	for _, r := range rows[1:] {
		byTitle[r[0]] = append(byTitle[r[0]], r)
	}
	if len(byTitle) != len(demoTitles) {
		t.Fatalf("export has trends of %d titles, want the %d demo titles: %v", len(byTitle), len(demoTitles), slices.Sorted(func(yield func(string) bool) {
			for k := range byTitle {
				if !yield(k) {
					return
				}
			}
		}))
	}
	for title, rs := range byTitle {
		var prev time.Time
		for i, r := range rs {
			at, err := time.Parse(time.RFC3339, r[3])
			if err != nil || r[1] != "story" || r[2] != "day" {
				t.Fatalf("%s row %v: %v", title, r, err)
			}
			if i > 0 && !at.Equal(prev.Add(day)) {
				t.Fatalf("%s: bucket %s after %s, want one a day", title, at, prev)
			}
			prev = at
			if i == 0 && at.UnixNano() > first {
				t.Errorf("%s's trend starts at %s, after the first vote at %s", title, at, time.Unix(0, first).UTC())
			}
			if i == len(rs)-1 && at.Add(day).Before(before) {
				t.Errorf("%s's trend ends at %s, before the export started at %s", title, at.Add(day), before.UTC())
			}
			cast, tally := trendWant(events, title, "story", at, day)
			got := func(col int) int64 { n, _ := strconv.ParseInt(r[col], 10, 64); return n }
			if !sameCounts(map[string]int64{"up": got(4), "down": got(5)}, cast) || !sameCounts(map[string]int64{"up": got(6), "down": got(7)}, tally) {
				t.Errorf("%s on %s: exported %v, the fold says cast %v, tally %v", title, r[3], r[4:], cast, tally)
			}
		}
	}
	if last < first+int64(48*time.Hour) {
		t.Fatalf("the seeded votes span %s, want days", time.Duration(last-first))
	}

	// Two titles by hour over a span of their own, as NDJSON to a file.
	from, to := now.Add(-30*time.Hour), now.Add(-20*time.Hour-30*time.Minute)
	file := filepath.Join(t.TempDir(), "trends.ndjson")
	code, out, errOut = votes(t, append([]string{"export", "--what", "trends", "--format", "ndjson", "--titles", "low-tide," + demoTitles[0],
		"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--out", file}, api...)...)
	if code != 0 || out != "" {
		t.Fatalf("export trends to a file: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("export ndjson of two titles: %d lines\n%s", len(lines), b)
	}
	for i, title := range []string{"low-tide", demoTitles[0]} {
		var tr handlers.TrendBody
		if err := json.Unmarshal([]byte(lines[i]), &tr); err != nil {
			t.Fatal(err)
		}
		// from rounded down, to up, to the hour; one point an hour.
		wantFrom, wantTo := from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
		if wantTo.Before(to) {
			wantTo = wantTo.Add(time.Hour)
		}
		n := int(wantTo.Sub(wantFrom) / time.Hour)
		if tr.TitleID != title || tr.Aspect != "overall" || tr.Bucket != "hour" || !tr.From.Equal(wantFrom) || !tr.To.Equal(wantTo) || len(tr.Points) != n {
			t.Fatalf("line %d: %s %s %s from %s to %s, %d points; want %s overall hour from %s to %s, %d points", i+1,
				tr.TitleID, tr.Aspect, tr.Bucket, tr.From, tr.To, len(tr.Points), title, wantFrom, wantTo, n)
		}
		for j, p := range tr.Points {
			if !p.T.Equal(wantFrom.Add(time.Duration(j) * time.Hour)) {
				t.Fatalf("%s: point %d at %s, want %s", title, j, p.T, wantFrom.Add(time.Duration(j)*time.Hour))
			}
		}
		moved := false
		for _, p := range tr.Points {
			cast, tally := trendWant(events, title, "overall", p.T, time.Hour)
			if !sameCounts(p.Cast, cast) || !sameCounts(p.Tally, tally) {
				t.Errorf("%s at %s: exported cast %v tally %v, the fold says %v and %v", title, p.T, p.Cast, p.Tally, cast, tally)
			}
			moved = moved || len(cast) > 0
		}
		if !moved {
			t.Errorf("%s had no vote on overall in the span: the seed does not test it", title)
		}
	}

	// The CSV of one title is the API's own CSV for the same span.
	q := "--to=" + now.Format(time.RFC3339)
	code, out, errOut = votes(t, append([]string{"export", "--what", "trends", "--titles", demoTitles[1], "--bucket", "hour", q}, api...)...)
	if code != 0 {
		t.Fatalf("export one title: exit %d %s", code, errOut)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/titles/"+demoTitles[1]+"/trend?bucket=hour&to="+now.UTC().Format(time.RFC3339), nil)
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the trend as CSV: %v %v", resp, err)
	}
	apiRows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	exported, err2 := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || err2 != nil || len(exported) < 2 || !slices.EqualFunc(apiRows, exported, slices.Equal) {
		t.Errorf("export CSV of %s differs from the API's (%v %v):\nexport:\n%s\napi: %v", demoTitles[1], err, err2, out, apiRows)
	}

	// Mistakes: said before anything is read, or the API's reason.
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"export", "--what", "trends", "--from", "yesterday"}, 2, "--from"},
		{[]string{"export", "--bucket", "day"}, 2, "only for --what trends"},
		{[]string{"export", "--what", "rankings"}, 2, "tallies or trends"},
		{[]string{"export", "--what", "trends", "--bucket", "week"}, 1, "bucket"},
		{[]string{"export", "--what", "trends", "--aspect", "plot"}, 1, "aspect"},
	} {
		if code, _, errOut := votes(t, append(c.args, api...)...); code != c.code || !strings.Contains(errOut, c.says) {
			t.Errorf("votes %v: exit %d %q, want %d saying %q", c.args, code, errOut, c.code, c.says)
		}
	}
}
