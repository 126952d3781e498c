package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// TrendKey names one count of a title's trend: a minute (Unix time in
// whole minutes, by the receiver's clock), an aspect and a choice.
type TrendKey struct {
	Minute         int64
	Aspect, Choice string
}

// TrendCount is what a span of time holds for an aspect and choice: the
// votes cast in it, and the net change of the tally over it.
type TrendCount struct {
	Cast, Tally int64
}

// Trend maps minutes, aspects and choices to what happened in them.
type Trend map[TrendKey]TrendCount

// MinuteOf is the minute of a receive time (Unix nanoseconds).
func MinuteOf(at int64) int64 {
	m := at / int64(time.Minute)
	if at < 0 && at%int64(time.Minute) != 0 {
		m--
	}
	return m
}

func (t Trend) add(k TrendKey, cast, tally int64) {
	c := t[k]
	c.Cast += cast
	c.Tally += tally
	if c == (TrendCount{}) {
		delete(t, k)
		return
	}
	t[k] = c
}

// move adds what one vote moved: a vote cast, and the tally changed from
// its receive time until the next vote of the aspect (if any).
func (t Trend) move(m Move) {
	at := MinuteOf(m.At)
	t.add(TrendKey{at, m.Aspect, m.Choice}, 1, 1)
	if m.Prev != "" {
		t.add(TrendKey{at, m.Aspect, m.Prev}, 0, -1)
	}
	if m.Until == 0 {
		return
	}
	until := MinuteOf(m.Until)
	t.add(TrendKey{until, m.Aspect, m.Choice}, 0, -1)
	if m.Prev != "" {
		t.add(TrendKey{until, m.Aspect, m.Prev}, 0, 1)
	}
}

// Merge adds every count of o to t.
func (t Trend) Merge(o Trend) {
	for k, c := range o {
		t.add(k, c.Cast, c.Tally)
	}
}

// Counts is the net change of the tally over the whole trend.
func (t Trend) Counts() Counts {
	out := Counts{}
	for k, c := range t {
		out.Add(k.Aspect, k.Choice, c.Tally)
	}
	return out.Compact()
}

// Level is the length of a trend item's span.
type Level byte

// The trend is kept twice: per minute and per hour.
const (
	MinuteLevel Level = 'm'
	HourLevel   Level = 'h'
)

// Minutes is the length of the level's span in minutes.
func (l Level) Minutes() int64 {
	if l == HourLevel {
		return 60
	}
	return 1
}

// Span is the time a trend item covers: from Start (Unix minutes, a
// multiple of Level.Minutes()) for Level.Minutes() minutes.
type Span struct {
	Level Level
	Start int64
}

// SpanOf is the span of level that holds minute.
func SpanOf(level Level, minute int64) Span {
	n := level.Minutes()
	start := minute / n * n
	if minute < 0 && minute%n != 0 {
		start -= n
	}
	return Span{Level: level, Start: start}
}

// TrendItem is one span of a title's trend: per aspect and choice (keys'
// Minute is the span's Start), the votes cast in it and the net change of
// the tally over it; and per cell shard, the version of the last step of
// that cell counted in it.
type TrendItem struct {
	Span   Span
	Counts Trend
	Shards map[int]int64
}

// TrendStore keeps a title's trend items, each changed by one atomic
// write that says which cell steps it counts.
type TrendStore interface {
	// AddTrend adds add to the counts of titleID's item of span and sets
	// its version of each shard in to, atomically, if its version of every
	// shard in to is below below[shard] (an item or shard never written is
	// at 0). Otherwise it writes nothing and returns ErrStale: some of the
	// steps were counted before (this very call, retried, among them).
	AddTrend(ctx context.Context, titleID string, span Span, add Trend, below, to map[int]int64) error
	// TrendShards returns the shard versions of titleID's item of span,
	// strongly consistent; none for an item never written.
	TrendShards(ctx context.Context, titleID string, span Span) (map[int]int64, error)
}

// TrendReader reads trend items.
type TrendReader interface {
	// TrendRange returns titleID's items of level whose span starts in
	// [start, end) (Unix minutes), in time order, strongly consistent:
	// each reflects every AddTrend acknowledged before the call.
	TrendRange(ctx context.Context, titleID string, level Level, start, end int64) ([]TrendItem, error)
}

// stepPart is what one cell step adds to one trend item.
type stepPart struct {
	shard int
	to    int64
	add   Trend
}

// indexTrend adds the trend of steps (each applied to the title summary
// for the first time, in version order per cell) to the title's minute and
// hour items, each step exactly once per item: an item counts a cell's
// steps up to the version it records for the cell's shard. Every indexer
// applies a cell's steps in version order, from the first one its title
// summary lacks, and writes the items before the summary; so an item
// below a step's version has counted none of the steps from there on, and
// one at or past it counted it already.
func indexTrend(ctx context.Context, store TrendStore, titleID string, steps []CellStep) error {
	parts := map[Span][]stepPart{}
	for _, st := range steps {
		bySpan := map[Span]Trend{}
		for k, c := range st.Trend {
			for _, level := range []Level{MinuteLevel, HourLevel} {
				span := SpanOf(level, k.Minute)
				t := bySpan[span]
				if t == nil {
					t = Trend{}
					bySpan[span] = t
				}
				t.add(TrendKey{span.Start, k.Aspect, k.Choice}, c.Cast, c.Tally)
			}
		}
		for span, t := range bySpan {
			parts[span] = append(parts[span], stepPart{shard: st.Cell.Shard, to: st.To, add: t})
		}
	}
	// The items are independent: written at once.
	errs := make(chan error, len(parts))
	for span, ps := range parts {
		go func() { errs <- addParts(ctx, store, titleID, span, ps) }()
	}
	var all []error
	for range parts {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// maxTrendTries bounds how often one item's write is tried again because
// another indexer counted some of the same steps first.
const maxTrendTries = 10

func addParts(ctx context.Context, store TrendStore, titleID string, span Span, ps []stepPart) error {
	for range maxTrendTries {
		add, below, to := Trend{}, map[int]int64{}, map[int]int64{}
		for _, p := range ps {
			add.Merge(p.add)
			if b, ok := below[p.shard]; !ok || p.to < b {
				below[p.shard] = p.to
			}
			to[p.shard] = max(to[p.shard], p.to)
		}
		err := store.AddTrend(ctx, titleID, span, add, below, to)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrStale) {
			return fmt.Errorf("trend of %s: %w", titleID, err)
		}
		at, err := store.TrendShards(ctx, titleID, span)
		if err != nil {
			return fmt.Errorf("trend of %s: %w", titleID, err)
		}
		ps = slices.DeleteFunc(ps, func(p stepPart) bool { return p.to <= at[p.shard] })
		if len(ps) == 0 {
			return nil
		}
	}
	return fmt.Errorf("trend of %s: span %c%d: %w", titleID, span.Level, span.Start, ErrStale)
}
