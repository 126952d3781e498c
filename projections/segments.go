package projections

import (
	"context"

	"golang.org/x/sync/errgroup"

	"votes/domain"
)

// ScanSegments reads the segments of a parallel scan at once, one goroutine
// each. Each segment in from that is not Done is read from its After cursor
// on: read returns a page and the cursor after it, empty at the segment's
// end, and page is handed each page with that cursor, in the segment's own
// goroutine (so page must be safe for concurrent use across segments, and
// may keep per-segment state without a lock).
//
// The first error, of a read, of page, or ctx's, cancels the context the
// other segments read under; ScanSegments returns only once every segment
// has stopped, with that first error. Nothing runs after it returns.
func ScanSegments[P any](ctx context.Context, from []Checkpoint,
	read func(ctx context.Context, segment int, after Cursor) (P, Cursor, error),
	page func(ctx context.Context, segment int, p P, next Cursor) error,
) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, cp := range from {
		if cp.Done {
			continue
		}
		g.Go(func() error {
			for after := cp.After; ; {
				if err := ctx.Err(); err != nil {
					return err
				}
				p, next, err := read(ctx, cp.Segment, after)
				if err != nil {
					return err
				}
				if err := page(ctx, cp.Segment, p, next); err != nil {
					return err
				}
				if after = next; after == "" {
					return nil
				}
			}
		})
	}
	return g.Wait()
}

// Segments is the start of every segment of a scan in total segments.
func Segments(total int) []Checkpoint {
	out := make([]Checkpoint, total)
	for i := range out {
		out[i].Segment = i
	}
	return out
}

// EventPage is a page of the event table, decoded.
type EventPage struct {
	Events  []domain.VoteCast
	Invalid int // items that were not valid events, left out
}

// ScanEvents reads the event table through s with ScanSegments, handing
// each decoded page to page.
func ScanEvents(ctx context.Context, s Scanner, total int, from []Checkpoint, page func(ctx context.Context, segment int, p EventPage, next Cursor) error) error {
	return ScanSegments(ctx, from, func(ctx context.Context, segment int, after Cursor) (EventPage, Cursor, error) {
		events, invalid, next, err := s.Page(ctx, segment, total, after)
		return EventPage{Events: events, Invalid: invalid}, next, err
	}, page)
}
