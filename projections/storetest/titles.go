package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"votes/projections"
)

// TitleStore is a title index that also lists its titles and keeps their
// ranking pages, as the query side reads them.
type TitleStore interface {
	projections.IndexStore
	projections.TitleLister
	projections.RankingStore
	projections.TrendReader
}

func summary(title string, rev int64, up, down int64, cells map[int]int64) projections.TitleSummary {
	c := projections.Counts{}
	c.Add("story", "up", up)
	c.Add("story", "down", down)
	return projections.TitleSummary{TitleID: title, Counts: c, LastVoteAt: 1_700_000_000_000_000_000 + rev, Cells: cells, Rev: rev}
}

// TestTitleIndex checks a title store; newStore gives an empty one each
// call.
func TestTitleIndex(t *testing.T, newStore func(t *testing.T) TitleStore) {
	ctx := context.Background()
	t.Run("trend items add once per flush, and read back in time order", func(t *testing.T) {
		st := newStore(t)
		hour := projections.SpanOf(projections.HourLevel, 29_600_000)
		minute := projections.Span{Level: projections.MinuteLevel, Start: hour.Start + 7}
		k := func(span projections.Span, choice string) projections.TrendKey {
			return projections.TrendKey{Minute: span.Start, Aspect: "story", Choice: choice}
		}
		add := projections.Trend{k(minute, "up"): {Cast: 2, Tally: 1}, k(minute, "down"): {Cast: 0, Tally: -1}}
		if err := st.AddTrend(ctx, "t1", minute, add, 5); err != nil {
			t.Fatal(err)
		}
		// The same flush again (a retried call, or another writer): refused,
		// and so is an older one.
		for _, rev := range []int64{5, 4} {
			if err := st.AddTrend(ctx, "t1", minute, add, rev); !errors.Is(err, projections.ErrStale) {
				t.Fatalf("flush %d on an item at flush 5: %v, want ErrStale", rev, err)
			}
		}
		if err := st.AddTrend(ctx, "t1", minute, projections.Trend{k(minute, "up"): {Cast: 1, Tally: 1}}, 9); err != nil {
			t.Fatal(err)
		}
		if err := st.AddTrend(ctx, "t1", hour, projections.Trend{k(hour, "up"): {Cast: 5, Tally: 4}}, 1); err != nil {
			t.Fatal(err)
		}
		if err := st.AddTrend(ctx, "t2", minute, add, 1); err != nil {
			t.Fatal(err)
		}
		items, err := st.TrendRange(ctx, "t1", projections.MinuteLevel, hour.Start, hour.Start+60)
		if err != nil || len(items) != 1 {
			t.Fatalf("minute items of the hour: %+v, %v; want the one written", items, err)
		}
		want := projections.Trend{k(minute, "up"): {Cast: 3, Tally: 2}, k(minute, "down"): {Cast: 0, Tally: -1}}
		if items[0].Span != minute || items[0].Flush != 9 || !maps.Equal(items[0].Counts, want) {
			t.Fatalf("minute item %+v, want %v at flush 9", items[0], want)
		}
		if items, _ := st.TrendRange(ctx, "t1", projections.MinuteLevel, minute.Start+1, hour.Start+60); len(items) != 0 {
			t.Fatalf("a range after the item read %+v", items)
		}
		if items, _ := st.TrendRange(ctx, "t1", projections.HourLevel, 0, 9_999_999_999); len(items) != 1 || items[0].Counts[k(hour, "up")].Tally != 4 {
			t.Fatalf("hour items %+v, want the one written", items)
		}
	})
	t.Run("a trend write of many counts reads back whole", func(t *testing.T) {
		st := newStore(t)
		span := projections.Span{Level: projections.HourLevel, Start: 29_600_040}
		add := projections.Trend{}
		for i := range 24 {
			add[projections.TrendKey{Minute: span.Start, Aspect: fmt.Sprintf("a%d", i), Choice: "up"}] = projections.TrendCount{Cast: int64(i + 1), Tally: int64(-i - 1)}
		}
		if err := st.AddTrend(ctx, "t1", span, add, 3); err != nil {
			t.Fatal(err)
		}
		items, err := st.TrendRange(ctx, "t1", projections.HourLevel, span.Start, span.Start+60)
		if err != nil || len(items) != 1 || !maps.Equal(items[0].Counts, add) {
			t.Fatalf("read back %+v, %v; want counts %v", items, err, add)
		}
	})
	t.Run("a summary keeps its pending and flushed trend", func(t *testing.T) {
		st := newStore(t)
		s := summary("t1", 1, 2, 1, map[int]int64{3: 1})
		s.Pending = projections.Trend{{Minute: 29_600_001, Aspect: "story", Choice: "up"}: {Cast: 2, Tally: 2}}
		s.Flush = projections.Trend{{Minute: 29_599_000, Aspect: "story", Choice: "down"}: {Cast: 1, Tally: -1}}
		s.FlushRev = 1
		if err := st.Put(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, _, err := st.Get(ctx, "t1")
		if err != nil || !got.SameTrendState(s) {
			t.Fatalf("read back %+v, %v; want the pending and flushed trend written", got, err)
		}
		if err := st.Put(ctx, s); err != nil {
			t.Fatalf("the same put again (a retry): %v", err)
		}
		other := s
		other.Pending = projections.Trend{}
		if err := st.Put(ctx, other); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("another summary at the same revision: %v, want ErrStale", err)
		}
	})
	t.Run("a title never written is empty and not found", func(t *testing.T) {
		s, found, err := newStore(t).Get(ctx, "t1")
		if err != nil || found || s.Rev != 0 || s.Votes("") != 0 || s.TitleID != "t1" {
			t.Fatalf("get of an empty store: %+v, %v, %v", s, found, err)
		}
	})
	t.Run("revisions guard puts, and a repeated put succeeds", func(t *testing.T) {
		st := newStore(t)
		first := summary("t1", 1, 2, 1, map[int]int64{0: 1, 63: 2})
		if err := st.Put(ctx, first); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, first); err != nil {
			t.Fatalf("the stored summary put again (a retried call) must succeed: %v", err)
		}
		if err := st.Put(ctx, summary("t1", 1, 5, 0, nil)); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("a second writer creating the summary: %v, want ErrStale", err)
		}
		if err := st.Put(ctx, summary("t1", 3, 5, 0, nil)); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("a put skipping a revision: %v, want ErrStale", err)
		}
		second := summary("t1", 2, 3, 1, map[int]int64{0: 2, 63: 2, 7: 1})
		if err := st.Put(ctx, second); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, first); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("an older revision landing late: %v, want ErrStale", err)
		}
		got, found, err := st.Get(ctx, "t1")
		if err != nil || !found || got.Rev != 2 || !got.Counts.Equal(second.Counts) || !maps.Equal(got.Cells, second.Cells) || got.LastVoteAt != second.LastVoteAt {
			t.Fatalf("stored summary %+v, %v, %v; want %+v", got, found, err, second)
		}
	})
	t.Run("all lists every title", func(t *testing.T) {
		st := newStore(t)
		var want []string
		for i := range 30 {
			id := fmt.Sprintf("tt%03d", i)
			want = append(want, id)
			if err := st.Put(ctx, summary(id, 1, int64(i), 1, map[int]int64{i % 64: 1})); err != nil {
				t.Fatal(err)
			}
		}
		all, err := st.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range all {
			got = append(got, s.TitleID)
			var i int
			if _, err := fmt.Sscanf(s.TitleID, "tt%03d", &i); err != nil || s.Counts["story"]["up"] != int64(i) || s.Counts["story"]["down"] != 1 || s.Cells[i%64] != 1 {
				t.Fatalf("summary %s listed as %+v", s.TitleID, s)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("all listed %v, want %v", got, want)
		}
	})
	t.Run("ranking pages round-trip", func(t *testing.T) {
		st := newStore(t)
		key := projections.RankingKey{Sort: projections.ByApproval, Aspect: "story"}
		var sums []projections.TitleSummary
		for i := range 150 {
			sums = append(sums, summary(fmt.Sprintf("tt%03d", i), 1, int64(i), 3, nil))
		}
		pages := projections.Pages(sums, key, 7)
		if len(pages) != 2 {
			t.Fatalf("150 titles made %d pages, want 2", len(pages))
		}
		if err := st.PutPages(ctx, pages); err != nil {
			t.Fatal(err)
		}
		for _, want := range pages {
			got, found, err := st.Page(ctx, key, want.Number)
			if err != nil || !found || !projections.SamePage(got, want) || got.Generation != 7 {
				t.Fatalf("page %d read back as %+v, %v, %v", want.Number, got, found, err)
			}
		}
		if _, found, err := st.Page(ctx, key, 2); err != nil || found {
			t.Fatalf("a page never written: found %v, %v", found, err)
		}
		if _, found, err := st.Page(ctx, projections.RankingKey{Sort: projections.ByVotes}, 0); err != nil || found {
			t.Fatalf("another order's page: found %v, %v", found, err)
		}
	})
}
