package projections

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"votes/domain"
	"votes/internal/backoff"
)

// Cursor is a position in one segment of a scan of the event table: empty
// at the start. Its form belongs to the Scanner.
type Cursor string

// Scanner reads the event table in segments that together cover it, as a
// parallel scan does.
type Scanner interface {
	// Page reads the events of segment (of total) that follow after. next
	// is empty when the segment is read to its end. Items that are not valid
	// events are counted in invalid and left out.
	Page(ctx context.Context, segment, total int, after Cursor) (events []domain.VoteCast, invalid int, next Cursor, err error)
}

// Checkpoint is how far a rebuild got in one segment.
type Checkpoint struct {
	Segment int
	After   Cursor
	Done    bool
	Events  int64
}

// Checkpoints keeps a rebuild's progress per segment.
type Checkpoints interface {
	// Load returns the checkpoints of version's segments, a zero one (the
	// start) for each segment with none.
	Load(ctx context.Context, version string, segments int) ([]Checkpoint, error)
	Save(ctx context.Context, version string, cp Checkpoint) error
}

// Rebuild folds the whole event table into a projection version, segment by
// segment in parallel, a page at a time: it holds one page per segment and
// nothing that grows with the table. After each page is projected its
// segment's checkpoint moves past it, so a rebuild that is interrupted
// carries on from there; the pages it projects again change nothing.
type Rebuild struct {
	Scanner     Scanner
	Checkpoints Checkpoints
	Projector   BatchProjector
	Segments    int
	// Progress, when set, is told of every page projected.
	Progress func(events int)
	// Retries bounds the attempts at a page's failing cells (failing
	// calls, throttling), after the first, before the rebuild stops with an
	// error; at least 1.
	Retries int
}

// RebuildResult counts what a rebuild read.
type RebuildResult struct {
	Events  int64 // events read, in this run and in the runs it resumes
	Invalid int64 // items that were not valid events, left out as the live projector leaves them out
}

// Run rebuilds version until every segment is done, ctx ends, or a
// segment fails; a failure stops the other segments, each after the page
// it is projecting, and their checkpoints keep what they did.
func (r *Rebuild) Run(ctx context.Context, version string) (RebuildResult, error) {
	cps, err := r.Checkpoints.Load(ctx, version, r.Segments)
	if err != nil {
		return RebuildResult{}, err
	}
	var events, invalid atomic.Int64
	for _, cp := range cps {
		events.Add(cp.Events)
	}
	// Each segment's checkpoint is touched only by its own goroutine.
	at := make(map[int]*Checkpoint, len(cps))
	for i := range cps {
		at[cps[i].Segment] = &cps[i]
	}
	err = ScanEvents(ctx, r.Scanner, r.Segments, cps, func(ctx context.Context, segment int, p EventPage, next Cursor) error {
		if err := r.project(ctx, p.Events); err != nil {
			return fmt.Errorf("segment %d: %w", segment, err)
		}
		cp := at[segment]
		n := int64(len(p.Events) + p.Invalid)
		cp.After, cp.Done, cp.Events = next, next == "", cp.Events+n
		if err := r.Checkpoints.Save(ctx, version, *cp); err != nil {
			return fmt.Errorf("segment %d: save checkpoint: %w", segment, err)
		}
		events.Add(n)
		invalid.Add(int64(p.Invalid))
		if r.Progress != nil {
			r.Progress(int(n))
		}
		return nil
	})
	return RebuildResult{Events: events.Load(), Invalid: invalid.Load()}, err
}

// project folds a page, retrying the cells that failed with backoff.
func (r *Rebuild) project(ctx context.Context, page []domain.VoteCast) error {
	retry := backoff.Policy{Base: 50 * time.Millisecond, Max: time.Second, Attempts: max(r.Retries, 1) + 1}
	for attempt := 1; ; attempt++ {
		rep := r.Projector.Project(ctx, page)
		if len(rep.Failed) == 0 {
			return nil
		}
		if err := retry.Wait(ctx, attempt); err != nil {
			for cell, cerr := range rep.Failed {
				return fmt.Errorf("%d cells failed after %d attempts, %s among them: %w", len(rep.Failed), attempt, cell, cerr)
			}
		}
		var again []domain.VoteCast
		for _, e := range page {
			if _, ok := rep.Failed[e.Cell()]; ok {
				again = append(again, e)
			}
		}
		page = again
	}
}
