package projections_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"votes/projections"
	"votes/projections/memstore"
)

func TestWilsonLowerBound(t *testing.T) {
	// One up-vote out of one: the interval at 95% starts near 0.21, so a
	// title with a single lucky vote does not top the chart.
	if got := projections.WilsonLower(1, 1); math.Abs(got-0.2065) > 0.0005 {
		t.Errorf("WilsonLower(1, 1) = %.4f, want 0.2065", got)
	}
	if got := projections.WilsonLower(0, 0); got != 0 {
		t.Errorf("no votes: %v, want 0", got)
	}
	if got := projections.WilsonLower(0, 10); got != 0 && got > 1e-12 {
		t.Errorf("no up-votes of 10: %v, want 0", got)
	}
	// At the same share, more votes mean a tighter interval, so a higher
	// lower bound; it stays below the share itself.
	prev := 0.0
	for _, n := range []int64{2, 10, 100, 1000, 100000} {
		got := projections.WilsonLower(n*9/10, n)
		if got <= prev || got >= 0.9 {
			t.Errorf("WilsonLower(%d, %d) = %.4f, want above %.4f and below 0.9", n*9/10, n, got, prev)
		}
		prev = got
	}
}

func title(id string, up, down, last int64) projections.TitleSummary {
	c := projections.Counts{}
	c.Add("overall", "up", up)
	c.Add("overall", "down", down)
	return projections.TitleSummary{TitleID: id, Counts: c, LastVoteAt: last}
}

func ids(ts []projections.TitleSummary) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.TitleID)
	}
	return out
}

func TestRankOrders(t *testing.T) {
	titles := []projections.TitleSummary{
		title("lucky", 1, 0, 50),       // one up-vote: 100% but little evidence
		title("loved", 90, 10, 10),     // 90% of 100
		title("popular", 300, 200, 20), // most votes, 60%
		title("fresh", 2, 2, 99),       // latest vote
		title("tied", 2, 2, 5),         // same votes as fresh: title ID breaks the tie on votes
	}
	for _, tc := range []struct {
		sort projections.Sort
		want string
	}{
		{projections.ByVotes, "[popular loved fresh tied lucky]"},
		{projections.ByApproval, "[loved popular lucky fresh tied]"},
		{projections.ByRecent, "[fresh lucky popular loved tied]"},
	} {
		got := fmt.Sprint(ids(projections.Rank(titles, tc.sort, "overall")))
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.sort, got, tc.want)
		}
	}
}

func TestRefreshRankingsWritesOnlyChangedPages(t *testing.T) {
	ctx := context.Background()
	index := memstore.NewTitles()
	put := func(s projections.TitleSummary) {
		t.Helper()
		cur, _, _ := index.Get(ctx, s.TitleID)
		s.Rev = cur.Rev + 1
		if err := index.Put(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 250 {
		put(title(fmt.Sprintf("tt%03d", i), int64(i), 1, int64(i)))
	}
	key := projections.RankingKey{Sort: projections.ByVotes, Aspect: "overall"}
	keys := []projections.RankingKey{key}
	written, err := projections.RefreshRankings(ctx, index, index, keys, 1)
	if err != nil || written != 3 {
		t.Fatalf("first refresh wrote %d pages (%v), want 3 for 250 titles", written, err)
	}
	first, _, _ := index.Page(ctx, key, 0)
	if first.Titles[0].TitleID != "tt249" || len(first.Titles) != projections.RankingPageSize {
		t.Fatalf("page 0 starts with %s and holds %d", first.Titles[0].TitleID, len(first.Titles))
	}
	if written, err := projections.RefreshRankings(ctx, index, index, keys, 2); err != nil || written != 0 {
		t.Fatalf("a refresh with nothing changed wrote %d pages (%v)", written, err)
	}
	// A vote on a title deep in the last page changes that page only.
	put(title("tt010", 11, 1, 10))
	if written, err := projections.RefreshRankings(ctx, index, index, keys, 3); err != nil || written != 1 {
		t.Fatalf("one title's change rewrote %d pages (%v), want 1", written, err)
	}
	last, _, _ := index.Page(ctx, key, 2)
	if last.Generation != 3 {
		t.Errorf("the changed page is of generation %d, want 3", last.Generation)
	}
}
