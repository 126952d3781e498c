package projections_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"votes/domain"
	"votes/projections"
	"votes/projections/memstore"
	"votes/projections/projectiontest"
	"votes/projections/storetest"
)

// faultyIndex puts the same fault schedule in front of the title index and
// of a title's cells read whole for a resync; w is the writer calling.
type faultyIndex struct {
	*faulty
	titles *memstore.Titles
	w      int
}

func (f faultyIndex) call(op func() error) error { return f.faulty.call(f.w, op) }

func (f faultyIndex) Get(ctx context.Context, titleID string) (s projections.TitleSummary, found bool, err error) {
	err = f.call(func() (err error) { s, found, err = f.titles.Get(ctx, titleID); return err })
	return s, found, err
}

func (f faultyIndex) Put(ctx context.Context, s projections.TitleSummary) error {
	return f.call(func() error { return f.titles.Put(ctx, s) })
}

func (f faultyIndex) ReadTitle(ctx context.Context, titleID string) (out map[int]projections.CellSnapshot, err error) {
	err = f.call(func() (err error) { out, err = f.cells.ReadTitle(ctx, titleID); return err })
	return out, err
}

func (f faultyIndex) AddTrend(ctx context.Context, titleID string, span projections.Span, add projections.Trend, rev int64) error {
	return f.call(func() error { return f.titles.AddTrend(ctx, titleID, span, add, rev) })
}

// projector is writer w's indexed projector, one cell at a time.
func (f faultyIndex) projector(w int) *projections.IndexedProjector {
	f.w = w
	x := writer{f.faulty, w}
	return projections.NewIndexedProjector(faultyBallots{x}, faultyCells{x}, f, f, 1)
}

// projectorAt is writer w's projector, its clock standing at a minute
// drawn over trendSpace's times, before them or after them (which minutes
// of a title's trend have closed, and leave its summary for the trend
// items), flushing them every one to three summary writes.
func (f faultyIndex) projectorAt(rt *rapid.T, w int) *projections.IndexedProjector {
	at := time.Unix(0, trendSpace.Start+int64(rapid.IntRange(-1, trendSpace.Times+2).Draw(rt, fmt.Sprintf("clock%d", w)))*trendSpace.Step)
	return f.projector(w).WithClock(func() time.Time { return at }).
		WithFlushEvery(int64(rapid.IntRange(1, 3).Draw(rt, fmt.Sprintf("flushEvery%d", w))))
}

// checkIndex holds the title index to the fold: each title's summary
// counts its winning votes, records the version of every cell it was
// written from, and its latest vote is the latest vote that won.
func checkIndex(t *rapid.T, f faultyIndex, events []domain.VoteCast, what string) {
	want := projections.Fold(events)
	latest := map[string]int64{}
	for _, b := range f.ballots.All() {
		for _, c := range b.Aspects {
			latest[b.TitleID] = max(latest[b.TitleID], c.RecordedAt)
		}
	}
	for _, title := range space.Titles {
		s, _, _ := f.titles.Get(context.Background(), title)
		if !s.Counts.Equal(want[title]) {
			t.Fatalf("%s (%d calls failed before, %d after applied): index of %s counts %v, fold %v, diff %v",
				what, f.failedBefore.Load(), f.failedAfter.Load(), title, s.Counts, want[title], s.Counts.Diff(want[title]))
		}
		cells, _ := f.cells.ReadTitle(context.Background(), title)
		versions := map[int]int64{}
		for shard, c := range cells {
			if c.Version > 0 {
				versions[shard] = c.Version
			}
		}
		got := maps.Clone(s.Cells)
		maps.DeleteFunc(got, func(_ int, v int64) bool { return v == 0 })
		if !maps.Equal(got, versions) {
			t.Fatalf("%s: index of %s holds cell versions %v, the cells are at %v", what, title, got, versions)
		}
		if s.LastVoteAt > latest[title] || (want[title] != nil && s.LastVoteAt == 0) {
			t.Fatalf("%s: index of %s says the last vote was at %d, the latest winning vote is at %d", what, title, s.LastVoteAt, latest[title])
		}
	}
}

// trendSpace spreads receive times 23 minutes apart over three hours, so
// that votes share minutes, hours and days, and cross hours.
var trendSpace = func() projectiontest.Space {
	sp := space
	sp.Times, sp.Start, sp.Step = 8, time.Date(2026, 11, 29, 21, 50, 0, 0, time.UTC).UnixNano(), int64(23*time.Minute)
	return sp
}()

// checkTrends holds every title's trend, in every bucket, and its tallies
// as of every minute a vote changed something, to the fold of the events.
func checkTrends(t *rapid.T, f faultyIndex, events []domain.VoteCast, what string) {
	ctx := context.Background()
	first := projections.MinuteOf(trendSpace.Start)
	last := projections.MinuteOf(trendSpace.Start+int64(trendSpace.Times+1)*trendSpace.Step) + 1
	for _, title := range space.Titles {
		for _, bucket := range projections.Buckets {
			from, to := bucket.Floor(first), bucket.Floor(last)+bucket.Minutes()
			for _, aspect := range space.Aspects {
				got, err := projections.ReadTrend(ctx, f.titles, title, aspect, bucket, from, to)
				if err != nil {
					t.Fatalf("%s: trend of %s: %v", what, title, err)
				}
				want := projections.FoldTrend(events, title, aspect, bucket, from, to)
				if !slices.EqualFunc(got, want, samePoint) {
					t.Fatalf("%s (%d calls failed before, %d after applied): %s trend of %s on %s:\n got  %v\n want %v",
						what, f.failedBefore.Load(), f.failedAfter.Load(), bucket, title, aspect, got, want)
				}
			}
		}
		for _, e := range events {
			for _, at := range []int64{projections.MinuteOf(e.RecordedAt), projections.MinuteOf(e.RecordedAt) + 1} {
				got, err := projections.TalliesAt(ctx, f.titles, title, at)
				if err != nil {
					t.Fatalf("%s: tallies of %s at %d: %v", what, title, at, err)
				}
				if want := projections.FoldAt(events, at)[title]; !got.Equal(want) {
					t.Fatalf("%s: tallies of %s as of minute %d: %v, fold %v", what, title, at, got, want)
				}
			}
		}
	}
}

func samePoint(a, b projections.TrendPoint) bool {
	return a.Start == b.Start && maps.Equal(a.Cast, b.Cast) && maps.Equal(a.Tally, b.Tally)
}

// TestTitleIndexEqualsTheFoldUnderFaults: the title index and the trends,
// kept by the projector's steps, count what the fold counts, however
// deliveries and store calls (the index's own included) fail, for one
// writer and for several at once, votes of one voter arriving in any
// order.
func TestTitleIndexEqualsTheFoldUnderFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 3).Draw(rt, "writers")
		f := faultyIndex{faulty: newFaulty(rt, 300, n), titles: memstore.NewTitles()}
		events := projectiontest.Events(rt, trendSpace)
		var (
			writers    []*projections.IndexedProjector
			deliveries [][][]domain.VoteCast
		)
		for w := range n {
			writers = append(writers, f.projectorAt(rt, w))
			deliveries = append(deliveries, projectiontest.Delivery(rt, events))
		}
		runWriters(rt, f.baton, writers, deliveries)
		f.stop()
		check(rt, f.faulty, events, fmt.Sprintf("%d writers", len(writers)))
		checkIndex(rt, f, events, fmt.Sprintf("%d writers", len(writers)))
		checkTrends(rt, f, events, fmt.Sprintf("%d writers", len(writers)))
	})
}

// TestRankingsFollowTheIndex: a refresh after the projection ranks every
// title of the index, in the order Rank gives, whatever the page size cut.
func TestRankingsFollowTheIndex(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := faultyIndex{faulty: newFaulty(rt, 0, 1), titles: memstore.NewTitles()}
		events := projectiontest.Events(rt, space)
		if rep := f.projector(0).Project(context.Background(), events); len(rep.Failed) > 0 {
			rt.Fatalf("projection failed without faults: %v", rep.Failed)
		}
		keys := projections.RankingKeys(space.Aspects)
		if _, err := projections.RefreshRankings(context.Background(), f.titles, f.titles, keys, 1); err != nil {
			rt.Fatal(err)
		}
		all, _ := f.titles.All(context.Background())
		for _, key := range keys {
			p, found, _ := f.titles.Page(context.Background(), key, 0)
			var got, want []string
			for _, s := range p.Titles {
				got = append(got, s.TitleID)
			}
			for _, s := range projections.Rank(all, key.Sort, key.Aspect) {
				want = append(want, s.TitleID)
			}
			if !found || !slices.Equal(got, want) {
				rt.Fatalf("%s: page 0 ranks %v, the index %v", key, got, want)
			}
		}
	})
}

// loadCounting counts the ballots a projector asks for.
type loadCounting struct {
	projections.Ballots
	mu     sync.Mutex
	voters []string
}

func (l *loadCounting) Load(ctx context.Context, titleID string, voters []string) (map[string]projections.Ballot, error) {
	l.mu.Lock()
	l.voters = append(l.voters, voters...)
	l.mu.Unlock()
	return l.Ballots.Load(ctx, titleID, voters)
}

func (l *loadCounting) LoadAll(ctx context.Context, keys []projections.BallotKey) (map[projections.BallotKey]projections.Ballot, error) {
	l.mu.Lock()
	for _, k := range keys {
		l.voters = append(l.voters, k.VoterID)
	}
	l.mu.Unlock()
	return l.Ballots.LoadAll(ctx, keys)
}

// TestAProjectorSkipsRedoLogsItCompleted: a step loads the ballots of the
// cell's last redo log to complete it, unless this projector wrote that
// step and saved its every ballot, or completed it before; another
// projector (another container) loads them, and both fold the same.
func TestAProjectorSkipsRedoLogsItCompleted(t *testing.T) {
	ctx := context.Background()
	voters := storetest.SameCellVoters("t1", 3)
	ballots, cells := memstore.NewBallots(), memstore.NewCells()
	first := projectiontest.Vote(voters[0], "t1", "s1", "story", "up", 1)
	second := projectiontest.Vote(voters[1], "t1", "s2", "story", "down", 2)
	third := projectiontest.Vote(voters[2], "t1", "s3", "story", "up", 3)

	same := &loadCounting{Ballots: ballots}
	p := projections.NewProjector(same, cells, 1)
	for _, e := range []domain.VoteCast{first, second} {
		if rep := p.Project(ctx, []domain.VoteCast{e}); len(rep.Failed) > 0 {
			t.Fatal(rep.Failed)
		}
	}
	if !slices.Equal(same.voters, []string{voters[0], voters[1]}) {
		t.Errorf("the projector that wrote and saved the first step loaded %v, want only each step's own voter", same.voters)
	}

	other := &loadCounting{Ballots: ballots}
	if rep := projections.NewProjector(other, cells, 1).Project(ctx, []domain.VoteCast{third}); len(rep.Failed) > 0 {
		t.Fatal(rep.Failed)
	}
	if got, want := slices.Sorted(slices.Values(other.voters)), slices.Sorted(slices.Values([]string{voters[1], voters[2]})); !slices.Equal(got, want) {
		t.Errorf("another projector loaded %v, want the last redo log's voter with its own", other.voters)
	}
	got, _ := cells.Tally(ctx, "t1")
	if want := projections.Fold([]domain.VoteCast{first, second, third}); !got.Equal(want["t1"]) {
		t.Errorf("tally %v, fold %v", got, want["t1"])
	}
}

// TestTrendFolderIsFoldTrend: the fold votes verify runs over a whole
// event table, a batch at a time, gives every title's trend as the
// definition does, bucket by bucket.
func TestTrendFolderIsFoldTrend(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		events := projectiontest.Events(rt, trendSpace)
		var f projections.TrendFolder
		for batch := range slices.Chunk(events, rapid.IntRange(1, len(events)).Draw(rt, "batch")) {
			f.Add(batch)
		}
		trends := f.Trends()
		first := projections.MinuteOf(trendSpace.Start)
		last := projections.MinuteOf(trendSpace.Start+int64(trendSpace.Times+1)*trendSpace.Step) + 1
		for _, title := range space.Titles {
			for _, aspect := range space.Aspects {
				want := projections.FoldTrend(events, title, aspect, projections.ByMinute, first, last)
				tally := map[string]int64{}
				for _, w := range want {
					cast := map[string]int64{}
					for k, c := range trends[title] {
						if k.Minute == w.Start && k.Aspect == aspect {
							cast[k.Choice] += c.Cast
							tally[k.Choice] += c.Tally
						}
					}
					maps.DeleteFunc(cast, func(_ string, n int64) bool { return n == 0 })
					maps.DeleteFunc(tally, func(_ string, n int64) bool { return n == 0 })
					if !maps.Equal(cast, w.Cast) || !maps.Equal(tally, w.Tally) {
						rt.Fatalf("%s on %s at minute %d: cast %v and tally %v, the definition's %v and %v", title, aspect, w.Start, cast, tally, w.Cast, w.Tally)
					}
				}
			}
		}
	})
}

// failingTrends fails every trend item write, as a throttled table would.
type failingTrends struct{ *memstore.Titles }

func (failingTrends) AddTrend(context.Context, string, projections.Span, projections.Trend, int64) error {
	return errors.New("throttled")
}

// TestAFlushNotAppliedIsRead: a summary whose flush never reached the
// trend items (every item write failed after the summary moved) still
// reads as the whole trend, from its own flush.
func TestAFlushNotAppliedIsRead(t *testing.T) {
	ctx := context.Background()
	titles := memstore.NewTitles()
	cells := memstore.NewCells()
	base := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	events := []domain.VoteCast{
		projectiontest.Vote("u1", "t1", "s1", "story", "up", base.UnixNano()),
		projectiontest.Vote("u2", "t1", "s2", "story", "down", base.Add(70*time.Minute).UnixNano()),
	}
	p := projections.NewIndexedProjector(memstore.NewBallots(), cells, failingTrends{titles}, cells, 1).
		WithClock(func() time.Time { return base.Add(24 * time.Hour) }).WithFlushEvery(1)
	if rep := p.Project(ctx, events); len(rep.Failed) == 0 {
		t.Fatal("the batch succeeded with every trend write failing")
	}
	if s, _, _ := titles.Get(ctx, "t1"); len(s.Flush) == 0 {
		t.Fatalf("the summary holds no flush: %+v", s)
	}
	from, to := projections.MinuteOf(base.UnixNano()), projections.MinuteOf(base.Add(2*time.Hour).UnixNano())
	for _, bucket := range []projections.Bucket{projections.ByMinute, projections.ByHour} {
		got, err := projections.ReadTrend(ctx, titles, "t1", "story", bucket, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if want := projections.FoldTrend(events, "t1", "story", bucket, from, to); !slices.EqualFunc(got, want, samePoint) {
			t.Errorf("by %s: %v, the fold %v", bucket, got, want)
		}
	}
}

// countingTrends counts the trend item writes.
type countingTrends struct {
	*memstore.Titles
	writes atomic.Int64
}

func (c *countingTrends) AddTrend(ctx context.Context, titleID string, span projections.Span, add projections.Trend, rev int64) error {
	c.writes.Add(1)
	return c.Titles.AddTrend(ctx, titleID, span, add, rev)
}

// TestAReplayFlushesItsTrendEvery16thWrite: a replay of votes whose
// minute has long closed writes the title's trend items (a minute's and
// an hour's) on every 16th summary write, not on every batch, and reads
// the same trend all along.
func TestAReplayFlushesItsTrendEvery16thWrite(t *testing.T) {
	ctx := context.Background()
	titles := &countingTrends{Titles: memstore.NewTitles()}
	cells := memstore.NewCells()
	base := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	p := projections.NewIndexedProjector(memstore.NewBallots(), cells, titles, cells, 2).
		WithClock(func() time.Time { return base.Add(24 * time.Hour) })
	var events []domain.VoteCast
	for batch := range 40 {
		e := projectiontest.Vote(fmt.Sprintf("u%d", batch), "t1", "s", "story", "up", base.Add(time.Duration(batch)*time.Second).UnixNano())
		events = append(events, e)
		if rep := p.Project(ctx, []domain.VoteCast{e}); len(rep.Failed) > 0 {
			t.Fatal(rep.Failed)
		}
		from, to := projections.MinuteOf(base.UnixNano()), projections.MinuteOf(base.Add(time.Hour).UnixNano())
		got, err := projections.ReadTrend(ctx, titles, "t1", "story", projections.ByMinute, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if want := projections.FoldTrend(events, "t1", "story", projections.ByMinute, from, to); !slices.EqualFunc(got, want, samePoint) {
			t.Fatalf("after batch %d: %v, the fold %v", batch, got, want)
		}
	}
	// Writes 16 and 32 flush, each to the minute's item and the hour's.
	if n := titles.writes.Load(); n != 4 {
		t.Errorf("40 batches wrote the trend items %d times, want 4", n)
	}
}
