package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"votes/domain"
)

// TitleSummary is one title's line in the title index: its current counts
// (the sum of its cells), the receive time of the latest vote counted, and
// which version of each of its cells the counts include.
type TitleSummary struct {
	TitleID string
	Counts  Counts
	// LastVoteAt is the receiver's clock (Unix nanoseconds) of the latest
	// vote that changed a ballot of the title.
	LastVoteAt int64
	// Cells maps a cell's shard to the cell version the counts include; a
	// shard absent is at version 0 (nothing counted).
	Cells map[int]int64
	// Rev counts the summary's writes and guards them.
	Rev int64
	// Pending is what the steps the summary holds moved in the title's
	// trend and that no trend item counts yet: the minutes still open.
	Pending Trend
	// Flush is what the summary at revision FlushRev moved out of Pending
	// into the trend items: an item that records FlushRev or later counts
	// its part of it.
	Flush    Trend
	FlushRev int64
}

// SameTrendState reports whether s and o hold the same pending and flushed
// trend.
func (s TitleSummary) SameTrendState(o TitleSummary) bool {
	return s.FlushRev == o.FlushRev && maps.Equal(s.Pending, o.Pending) && maps.Equal(s.Flush, o.Flush)
}

// Votes is the number of current votes of the title: over every aspect, or
// over one when aspect is not empty.
func (s TitleSummary) Votes(aspect string) int64 {
	var n int64
	for a, m := range s.Counts {
		if aspect != "" && a != aspect {
			continue
		}
		for _, v := range m {
			n += v
		}
	}
	return n
}

// Approving is the choice that approval counts as approving.
const Approving = "up"

// Approval is the lower bound of the 95% Wilson score interval of the
// share of the aspect's current votes that are up: a title with few votes
// ranks below one with as good a share of many, so one lucky up-vote does
// not top the chart.
func (s TitleSummary) Approval(aspect string) float64 {
	return WilsonLower(s.Counts[aspect][Approving], s.Votes(aspect))
}

// WilsonLower is the lower bound of the Wilson score interval at 95%
// confidence (z = 1.96) for up successes out of n; 0 when n is 0.
func WilsonLower(up, n int64) float64 {
	if n <= 0 {
		return 0
	}
	const z = 1.959963984540054
	p := float64(up) / float64(n)
	nf := float64(n)
	centre := p + z*z/(2*nf)
	margin := z * math.Sqrt((p*(1-p)+z*z/(4*nf))/nf)
	return (centre - margin) / (1 + z*z/nf)
}

// CellStep is what one committed projection step did to a cell, for the
// title index: the cell went from version From to To (To = From + 1) and
// its counts changed by Delta. A step that changed no ballot reports the
// cell's current version as both From and To, with no delta: it asks only
// that the index has caught up with the cell.
type CellStep struct {
	Cell     domain.Cell
	From, To int64
	Delta    Counts
	// Trend is what the step moved in the title's trend (nil when not
	// known: a step of a release that kept no trends).
	Trend Trend
	// LastVoteAt is the latest receive time among the votes the step
	// applied, 0 for none.
	LastVoteAt int64

	step string // the step's ID, when known
}

// TitleIndex stores title summaries, one per title, of one projection
// version.
type TitleIndex interface {
	// Get returns titleID's summary, strongly consistent; a title never
	// written is an empty summary at Rev 0 and found is false.
	Get(ctx context.Context, titleID string) (s TitleSummary, found bool, err error)
	// Put writes s as revision s.Rev if the stored summary is at s.Rev-1
	// (none stored when s.Rev is 1). If it is not, it writes nothing and
	// returns ErrStale; a retried Put that the store had applied is
	// recognised (the stored summary equals s) and succeeds.
	Put(ctx context.Context, s TitleSummary) error
}

// IndexStore keeps the title index and the titles' trends.
type IndexStore interface {
	TitleIndex
	TrendStore
}

// TitleCells reads a title's cells as they stand: each shard's version and
// counts, strongly consistent, one shard at a time or all at once.
type TitleCells interface {
	// ReadTitle returns every cell of titleID that exists, by shard.
	ReadTitle(ctx context.Context, titleID string) (map[int]CellSnapshot, error)
}

// CellSnapshot is one cell's version and counts, read together.
type CellSnapshot struct {
	Version    int64
	Counts     Counts
	LastVoteAt int64
}

// IndexTitles brings the title index up to date with the cell steps of one
// title: each step is applied exactly once, by cell version. A step whose
// version the summary holds already is skipped (a retried batch, or an
// earlier resync covered it); a step that does not follow on from the
// summary's version of its cell (an index write lost after its cell
// committed) makes the summary resync from every cell of the title. So
// whatever failed before, a summary equals the sum of the cells at the
// versions it records, and once every step reported its cell, it is the
// sum of the cells. Writes are guarded by the summary's revision, so
// concurrent indexers of one title (overlapping invocations, a rebuild
// and a repair) serialise on it.
//
// The steps' trends ride in the summary itself (Pending), so they are
// exactly once with it; the minutes that have closed by now move to the
// trend items through the summary's Flush (see flushTrend). A step is
// never skipped: a Projector catches the index up with a cell's last step
// before it commits the next (see IndexedProjector), so only cells last
// written by a release that kept no trends resync, and their steps before
// that are missing from the trends.
//
// The closed minutes wait in the summary until flush says (see
// flushPolicy); flush.done remembers the flushes this process applied
// whole, which the next write skips applying again.
func IndexTitles(ctx context.Context, index IndexStore, cells TitleCells, titleID string, steps []CellStep, now time.Time, flush FlushPolicy) error {
	for {
		cur, _, err := index.Get(ctx, titleID)
		if err != nil {
			return fmt.Errorf("index %s: %w", titleID, err)
		}
		next, applied, gap := advance(cur, steps)
		changed := len(applied) > 0
		if gap {
			snap, err := cells.ReadTitle(ctx, titleID)
			if err != nil {
				return fmt.Errorf("index %s: resync: %w", titleID, err)
			}
			next, changed = resync(cur, snap, steps), true
			applied = slices.DeleteFunc(slices.Clone(steps), func(st CellStep) bool {
				return st.To <= cur.Cells[st.Cell.Shard] || st.To > next.Cells[st.Cell.Shard] || st.From == st.To
			})
		}
		if !changed {
			return nil
		}
		// The last flush first: the next one takes its place.
		if !flush.Done.has(titleID, cur.FlushRev) {
			if err := applyFlush(ctx, index, titleID, cur.Flush, cur.FlushRev, flush.Writes); err != nil {
				return fmt.Errorf("index %s: %w", titleID, err)
			}
		}
		next.Rev = cur.Rev + 1
		pending := Trend{}
		pending.Merge(cur.Pending)
		for _, st := range applied {
			pending.Merge(st.Trend)
		}
		// A minute closes a minute after it ends by this clock: votes
		// received late by a little (a receiver's clock ahead, a queue)
		// still join their minute in the summary for free.
		next.Pending, next.Flush = splitClosed(pending, MinuteOf(now.UnixNano())-1)
		next.FlushRev = cur.FlushRev
		if len(next.Flush) > 0 && !flush.due(next.Rev-cur.FlushRev, len(pending)) {
			next.Pending, next.Flush = pending, Trend{} // the closed minutes wait
		}
		if len(next.Flush) > 0 {
			next.FlushRev = next.Rev
		}
		err = index.Put(ctx, next)
		if errors.Is(err, ErrStale) {
			continue // another indexer wrote the summary: read it again
		}
		if err != nil {
			return fmt.Errorf("index %s: %w", titleID, err)
		}
		if err := applyFlush(ctx, index, titleID, next.Flush, next.FlushRev, flush.Writes); err != nil {
			return fmt.Errorf("index %s: %w", titleID, err)
		}
		if len(next.Flush) > 0 {
			flush.Done.add(titleID, next.FlushRev)
		}
		return nil
	}
}

// FlushPolicy says when a title's summary moves its closed minutes to
// the trend items. Each flush writes an item per minute and per hour it
// holds; held in the summary, the minutes cost nothing more until the
// summary grows (a write unit a kilobyte). So a summary flushes its
// closed minutes once Every writes after its last flush, or once it holds
// more than MaxPending trend entries (about 25 bytes each). Live, a
// title's minutes close one a minute, and a flush every 16 writes comes
// at most once a minute; a replay of old events, whose minutes are all
// closed, flushes every 16th batch instead of every batch. Which minutes
// close when changes only the cost: reads add what the summary holds.
type FlushPolicy struct {
	Every      int64
	MaxPending int
	Writes     int      // trend item writes at once; 1 or less: one at a time, in time order
	Done       *Flushed // remembers flushes applied; nil remembers none
}

// DefaultFlush is the flush policy of the deployed projector.
var DefaultFlush = FlushPolicy{Every: 16, MaxPending: 40}

func (f FlushPolicy) due(writesSinceFlush int64, pending int) bool {
	return writesSinceFlush >= f.Every || pending > f.MaxPending
}

// Flushed remembers, per title, the last summary flush known to be in the
// trend items: applying a flush is for good (an item's flush revision only
// grows), so the write after it need not try again, which would cost a
// failed conditional write per item. Safe for concurrent use, and for a
// nil *Flushed, which remembers nothing; bounded, it forgets everything
// when full.
type Flushed struct {
	mu sync.Mutex
	m  map[string]int64
}

// NewFlushed remembers no flush yet.
func NewFlushed() *Flushed { return &Flushed{m: map[string]int64{}} }

func (f *Flushed) has(titleID string, rev int64) bool {
	if f == nil || rev == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[titleID] == rev
}

func (f *Flushed) add(titleID string, rev int64) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) >= completedCells {
		clear(f.m)
	}
	f.m[titleID] = rev
}

// splitClosed splits a trend into the minutes from open on and those
// before it.
func splitClosed(t Trend, open int64) (keep, closed Trend) {
	keep, closed = Trend{}, Trend{}
	for k, c := range t {
		if k.Minute >= open {
			keep[k] = c
		} else {
			closed[k] = c
		}
	}
	return keep, closed
}

// advance applies steps to cur. It returns the steps it applied, in
// version order per cell, and gap when a step does not follow on from
// cur's version of its cell.
func advance(cur TitleSummary, steps []CellStep) (next TitleSummary, applied []CellStep, gap bool) {
	next = TitleSummary{TitleID: cur.TitleID, Counts: Counts{}, LastVoteAt: cur.LastVoteAt, Cells: maps.Clone(cur.Cells),
		Pending: cur.Pending, Flush: cur.Flush, FlushRev: cur.FlushRev}
	if next.Cells == nil {
		next.Cells = map[int]int64{}
	}
	next.Counts.Merge(cur.Counts)
	ordered := slices.Clone(steps)
	slices.SortFunc(ordered, func(a, b CellStep) int {
		return cmp.Or(cmp.Compare(a.Cell.Shard, b.Cell.Shard), cmp.Compare(a.From, b.From))
	})
	for _, st := range ordered {
		at := next.Cells[st.Cell.Shard]
		switch {
		case at >= st.To:
			// Counted already.
		case at == st.From && st.To == st.From+1:
			next.Counts.Merge(st.Delta)
			next.Cells[st.Cell.Shard] = st.To
			next.LastVoteAt = max(next.LastVoteAt, st.LastVoteAt)
			applied = append(applied, st)
		default:
			return next, applied, true
		}
	}
	next.Counts = next.Counts.Compact()
	return next, applied, false
}

// resync is the summary of the cells as read, keeping the latest vote time
// known.
func resync(cur TitleSummary, snap map[int]CellSnapshot, steps []CellStep) TitleSummary {
	next := TitleSummary{TitleID: cur.TitleID, Counts: Counts{}, LastVoteAt: cur.LastVoteAt, Cells: map[int]int64{},
		Pending: cur.Pending, Flush: cur.Flush, FlushRev: cur.FlushRev}
	for shard, c := range snap {
		next.Counts.Merge(c.Counts)
		next.Cells[shard] = c.Version
		next.LastVoteAt = max(next.LastVoteAt, c.LastVoteAt)
	}
	for _, st := range steps {
		if st.To <= next.Cells[st.Cell.Shard] {
			next.LastVoteAt = max(next.LastVoteAt, st.LastVoteAt)
		}
	}
	next.Counts = next.Counts.Compact()
	return next
}

// Sort orders the title index.
type Sort string

// The orders of the title index.
const (
	ByVotes    Sort = "votes"    // most current votes first (on the aspect, or in all)
	ByApproval Sort = "approval" // highest Wilson lower bound of the aspect's up share first
	ByRecent   Sort = "recent"   // latest vote first
)

// Sorts lists the orders.
var Sorts = []Sort{ByVotes, ByApproval, ByRecent}

// ParseSort reads a sort name.
func ParseSort(s string) (Sort, bool) {
	for _, x := range Sorts {
		if string(x) == s {
			return x, true
		}
	}
	return "", false
}

// Rank orders summaries by sort on aspect (empty for every aspect, which
// approval does not accept: it is per aspect), ties broken by more votes,
// then by title ID, so that the order is total and pages are stable.
func Rank(summaries []TitleSummary, sort Sort, aspect string) []TitleSummary {
	out := slices.Clone(summaries)
	primary := func(a, b TitleSummary) int { return cmp.Compare(b.Votes(aspect), a.Votes(aspect)) }
	switch sort {
	case ByApproval:
		primary = func(a, b TitleSummary) int { return cmp.Compare(b.Approval(aspect), a.Approval(aspect)) }
	case ByRecent:
		primary = func(a, b TitleSummary) int { return cmp.Compare(b.LastVoteAt, a.LastVoteAt) }
	}
	slices.SortFunc(out, func(a, b TitleSummary) int {
		return cmp.Or(primary(a, b), cmp.Compare(b.Votes(aspect), a.Votes(aspect)), strings.Compare(a.TitleID, b.TitleID))
	})
	return out
}
