package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
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
// the tally over it; and the revision of the last title summary whose
// Flush it counts.
type TrendItem struct {
	Span   Span
	Counts Trend
	Flush  int64
}

// TrendStore keeps a title's trend items, each changed by one atomic
// write that says which flush of the title's summary it counts.
type TrendStore interface {
	// AddTrend adds add to the counts of titleID's item of span and makes
	// rev its flush revision, atomically, if its flush revision is below
	// rev (an item never written is at 0). Otherwise it writes nothing and
	// returns ErrStale: the item counts that flush already (this very
	// call, retried, or another writer's).
	AddTrend(ctx context.Context, titleID string, span Span, add Trend, rev int64) error
}

// TrendReader reads trend items.
type TrendReader interface {
	// TrendRange returns titleID's items of level whose span starts in
	// [start, end) (Unix minutes), in time order, strongly consistent:
	// each reflects every AddTrend acknowledged before the call.
	TrendRange(ctx context.Context, titleID string, level Level, start, end int64) ([]TrendItem, error)
}

// applyFlush adds a summary's flush (rev, its revision) to the title's
// minute and hour items, each once, up to writes of them at once. A
// summary's flush is applied whole before the next summary makes a new
// one (IndexTitles), so an item's flush revision only grows, and one at
// rev or past it counts the flush.
func applyFlush(ctx context.Context, store TrendStore, titleID string, flush Trend, rev int64, writes int) error {
	if len(flush) == 0 {
		return nil
	}
	bySpan := map[Span]Trend{}
	for k, c := range flush {
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
	// The items are independent: written at once, within writes, started
	// in a fixed order.
	errs := make(chan error, len(bySpan))
	sem := make(chan struct{}, max(writes, 1))
	for _, span := range slices.SortedFunc(maps.Keys(bySpan), func(a, b Span) int {
		return cmp.Or(cmp.Compare(a.Level, b.Level), cmp.Compare(a.Start, b.Start))
	}) {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			err := store.AddTrend(ctx, titleID, span, bySpan[span], rev)
			if errors.Is(err, ErrStale) {
				err = nil // counted already
			}
			errs <- err
		}()
	}
	var all []error
	for range bySpan {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		return fmt.Errorf("trend of %s: %w", titleID, err)
	}
	return nil
}
