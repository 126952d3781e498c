package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"votes/domain"
)

// Bucket is the span of one point of a trend.
type Bucket string

// The buckets a trend can be read in; days start at 00:00 UTC.
const (
	ByMinute Bucket = "minute"
	ByHour   Bucket = "hour"
	ByDay    Bucket = "day"
)

// Buckets lists the buckets.
var Buckets = []Bucket{ByMinute, ByHour, ByDay}

// ParseBucket reads a bucket name.
func ParseBucket(s string) (Bucket, bool) {
	for _, b := range Buckets {
		if string(b) == s {
			return b, true
		}
	}
	return "", false
}

// Minutes is the bucket's length in minutes.
func (b Bucket) Minutes() int64 {
	switch b {
	case ByHour:
		return 60
	case ByDay:
		return 24 * 60
	}
	return 1
}

// Floor is the start of the bucket that holds minute.
func (b Bucket) Floor(minute int64) int64 { return minute - mod(minute, b.Minutes()) }

func mod(a, n int64) int64 {
	r := a % n
	if r < 0 {
		r += n
	}
	return r
}

// TrendPoint is one bucket of an aspect's trend: the votes cast in it and
// the tally at its end, by choice. Start is in Unix minutes.
type TrendPoint struct {
	Start       int64
	Cast, Tally map[string]int64
}

// ErrCatchingUp means the title index had not caught up with the trend
// items written before it, after several reads: try again shortly.
var ErrCatchingUp = errors.New("the title index is catching up with the trend")

// TrendSource is what reading a trend needs: the title summary (the
// current counts, and which cell steps they hold) and the trend items.
type TrendSource interface {
	Get(ctx context.Context, titleID string) (s TitleSummary, found bool, err error)
	TrendReader
}

// endOfTime is past every span's start (sort keys hold ten digits).
const endOfTime = 9_999_999_999

// changes is what happened from a minute on, in spans of a minute or an
// hour that do not overlap, with the current counts those changes lead to.
type changes struct {
	now   Counts
	items []TrendItem
}

// readChanges reads the summary, then the minute items from minuteFrom up
// to hourFrom and the hour items from hourFrom on (hourFrom a whole hour),
// and adds the summary's pending trend and the part of its flush the items
// do not count yet. Items change only through a summary's flush; one that
// counts a flush later than the summary read (made meanwhile) makes it
// read again.
func readChanges(ctx context.Context, src TrendSource, titleID string, minuteFrom, hourFrom int64) (changes, error) {
	for attempt := range 10 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return changes{}, ctx.Err()
			case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
			}
		}
		s, _, err := src.Get(ctx, titleID)
		if err != nil {
			return changes{}, fmt.Errorf("trend of %s: %w", titleID, err)
		}
		minutes, err := src.TrendRange(ctx, titleID, MinuteLevel, minuteFrom, hourFrom)
		if err != nil {
			return changes{}, fmt.Errorf("trend of %s: %w", titleID, err)
		}
		hours, err := src.TrendRange(ctx, titleID, HourLevel, hourFrom, endOfTime)
		if err != nil {
			return changes{}, fmt.Errorf("trend of %s: %w", titleID, err)
		}
		items := append(minutes, hours...)
		if slices.ContainsFunc(items, func(it TrendItem) bool { return it.Flush > s.FlushRev }) {
			continue
		}
		return changes{now: s.Counts, items: append(items, summaryParts(s, items, minuteFrom, hourFrom)...)}, nil
	}
	return changes{}, fmt.Errorf("trend of %s: %w", titleID, ErrCatchingUp)
}

// summaryParts is what the summary holds of the trend from minuteFrom on
// that the items read do not: its pending minutes, and its flush where
// the item of its span (a minute's before hourFrom, an hour's from it)
// does not count it yet. Each is a span of one minute.
func summaryParts(s TitleSummary, items []TrendItem, minuteFrom, hourFrom int64) []TrendItem {
	counted := map[Span]bool{}
	for _, it := range items {
		counted[it.Span] = it.Flush >= s.FlushRev
	}
	var out []TrendItem
	add := func(k TrendKey, c TrendCount) {
		out = append(out, TrendItem{Span: Span{Level: MinuteLevel, Start: k.Minute}, Counts: Trend{k: c}})
	}
	for k, c := range s.Pending {
		if k.Minute >= minuteFrom {
			add(k, c)
		}
	}
	for k, c := range s.Flush {
		span := SpanOf(MinuteLevel, k.Minute)
		if k.Minute >= hourFrom {
			span = SpanOf(HourLevel, k.Minute)
		}
		if k.Minute >= minuteFrom && !counted[span] {
			add(k, c)
		}
	}
	return out
}

// before is the counts before minute: now less every change from minute on.
func (c changes) before(minute int64) Counts {
	out := Counts{}
	out.Merge(c.now)
	for _, it := range c.items {
		if it.Span.Start >= minute {
			for k, n := range it.Counts {
				out.Add(k.Aspect, k.Choice, -n.Tally)
			}
		}
	}
	return out.Compact()
}

// TalliesAt is titleID's tallies as they stood at the start of minute:
// the fold of the votes received before it.
func TalliesAt(ctx context.Context, src TrendSource, titleID string, minute int64) (Counts, error) {
	hour := SpanOf(HourLevel, minute+59).Start
	c, err := readChanges(ctx, src, titleID, minute, hour)
	if err != nil {
		return nil, err
	}
	return c.before(minute), nil
}

// ReadTrend is titleID's trend on aspect in buckets from from to to (Unix
// minutes, whole buckets): a point per bucket, the votes cast in it and
// the tally at its end, choices with no votes left out.
func ReadTrend(ctx context.Context, src TrendSource, titleID, aspect string, bucket Bucket, from, to int64) ([]TrendPoint, error) {
	hourFrom := from
	if bucket == ByMinute {
		hourFrom = SpanOf(HourLevel, to+59).Start
	}
	c, err := readChanges(ctx, src, titleID, from, hourFrom)
	if err != nil {
		return nil, err
	}
	n := bucket.Minutes()
	points := make([]TrendPoint, 0, (to-from)/n)
	for start := from; start < to; start += n {
		points = append(points, TrendPoint{Start: start, Cast: map[string]int64{}, Tally: map[string]int64{}})
	}
	at := c.before(to)[aspect]
	for _, it := range c.items {
		if it.Span.Start < from || it.Span.Start >= to {
			continue
		}
		p := &points[(it.Span.Start-from)/n]
		for k, x := range it.Counts {
			if k.Aspect != aspect {
				continue
			}
			if x.Cast != 0 {
				p.Cast[k.Choice] += x.Cast
			}
			if x.Tally != 0 {
				p.Tally[k.Choice] += x.Tally // the change over the bucket, for now
			}
		}
	}
	// Walk back from the tally at to: a bucket's tally is the next one's
	// less the next one's change.
	tally := map[string]int64{}
	for ch, v := range at {
		tally[ch] = v
	}
	for i := len(points) - 1; i >= 0; i-- {
		change := points[i].Tally
		points[i].Tally = nonZero(tally)
		for ch, d := range change {
			tally[ch] -= d
		}
	}
	return points, nil
}

func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// FoldTrend is the definition of a trend: the votes of titleID on aspect
// (each vote ID once) received in each bucket from from to to, and the
// fold of the votes received before each bucket's end.
func FoldTrend(events []domain.VoteCast, titleID, aspect string, bucket Bucket, from, to int64) []TrendPoint {
	votes := map[string]domain.VoteCast{}
	for _, e := range events {
		if e.TitleID == titleID && e.Aspect == aspect {
			votes[e.VoteID] = e
		}
	}
	n := bucket.Minutes()
	var points []TrendPoint
	for start := from; start < to; start += n {
		p := TrendPoint{Start: start, Cast: map[string]int64{}, Tally: map[string]int64{}}
		var before []domain.VoteCast
		for _, e := range votes {
			m := MinuteOf(e.RecordedAt)
			if m >= start && m < start+n {
				p.Cast[e.Choice]++
			}
			if m < start+n {
				before = append(before, e)
			}
		}
		for ch, v := range Fold(before)[titleID][aspect] {
			if v != 0 {
				p.Tally[ch] = v
			}
		}
		points = append(points, p)
	}
	return points
}

// FoldAt is the definition of the tallies as of the start of minute: the
// fold of the votes received before it.
func FoldAt(events []domain.VoteCast, minute int64) map[string]Counts {
	var before []domain.VoteCast
	for _, e := range events {
		if MinuteOf(e.RecordedAt) < minute {
			before = append(before, e)
		}
	}
	return Fold(before)
}

// TrendFolder is FoldTrend for a whole event table taken a batch at a
// time: it keeps every vote (choice, time, ID) per voter, title and
// aspect, and gives each title's trend by minute. The zero TrendFolder is
// empty. It is not safe for concurrent use.
type TrendFolder struct {
	votes map[[3]string]map[string]Current
}

// Add folds events in.
func (f *TrendFolder) Add(events []domain.VoteCast) {
	if f.votes == nil {
		f.votes = map[[3]string]map[string]Current{}
	}
	for _, e := range events {
		k := [3]string{e.VoterID, e.TitleID, e.Aspect}
		if f.votes[k] == nil {
			f.votes[k] = map[string]Current{}
		}
		f.votes[k][e.VoteID] = Current{Choice: e.Choice, RecordedAt: e.RecordedAt, VoteID: e.VoteID}
	}
}

// Trends is every title's trend by minute: each vote cast in its minute,
// and each change of a voter's choice (in order of receive time, then
// vote ID) in the minute of the vote that made it.
func (f *TrendFolder) Trends() map[string]Trend {
	out := map[string]Trend{}
	for k, byID := range f.votes {
		votes := make([]Current, 0, len(byID))
		for _, c := range byID {
			votes = append(votes, c)
		}
		slices.SortFunc(votes, func(a, b Current) int {
			if a.event().After(b.event()) {
				return 1
			}
			return -1
		})
		t := out[k[1]]
		if t == nil {
			t = Trend{}
			out[k[1]] = t
		}
		prev := ""
		for _, c := range votes {
			m := MinuteOf(c.RecordedAt)
			t.add(TrendKey{m, k[2], c.Choice}, 1, 1)
			if prev != "" {
				t.add(TrendKey{m, k[2], prev}, 0, -1)
			}
			prev = c.Choice
		}
	}
	return out
}

// ByLevel is t summed per span of level: keys' Minute is the span's start.
func (t Trend) ByLevel(level Level) Trend {
	out := Trend{}
	for k, c := range t {
		out.add(TrendKey{SpanOf(level, k.Minute).Start, k.Aspect, k.Choice}, c.Cast, c.Tally)
	}
	return out
}

// StoredTrend is all a title's trend as stored, summed per span of level:
// its items of that level and what its summary holds besides. votes verify
// compares it with the fold of the event table.
func StoredTrend(ctx context.Context, src TrendSource, titleID string, level Level) (Trend, error) {
	hourFrom := int64(0)
	if level == MinuteLevel {
		hourFrom = endOfTime
	}
	c, err := readChanges(ctx, src, titleID, 0, hourFrom)
	if err != nil {
		return nil, err
	}
	all := Trend{}
	for _, it := range c.items {
		all.Merge(it.Counts)
	}
	return all.ByLevel(level), nil
}
