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

	"votes/projections"
	"votes/projections/projectiontest"
)

// pages is a fake segmented table: segment s has n pages, cursors "s/1"
// to "s/n-1" between them.
func pages(n int) func(ctx context.Context, segment int, after projections.Cursor) (string, projections.Cursor, error) {
	return func(_ context.Context, segment int, after projections.Cursor) (string, projections.Cursor, error) {
		i := 0
		if after != "" {
			if _, err := fmt.Sscanf(string(after), "%d/%d", new(int), &i); err != nil {
				return "", "", err
			}
		}
		var next projections.Cursor
		if i+1 < n {
			next = projections.Cursor(fmt.Sprintf("%d/%d", segment, i+1))
		}
		return fmt.Sprintf("%d:%d", segment, i), next, nil
	}
}

// TestScanSegmentsReadsEachSegmentFromItsCheckpoint: every segment not
// done is read from its cursor to its end, each page handed on once, a
// done segment not at all.
func TestScanSegmentsReadsEachSegmentFromItsCheckpoint(t *testing.T) {
	from := projections.Segments(4)
	from[1].After = "1/2" // resumed
	from[2].Done = true   // finished by an earlier run
	var mu sync.Mutex
	got := map[int][]string{}
	err := projections.ScanSegments(context.Background(), from, pages(4), func(_ context.Context, segment int, p string, _ projections.Cursor) error {
		mu.Lock()
		defer mu.Unlock()
		got[segment] = append(got[segment], p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]string{
		0: {"0:0", "0:1", "0:2", "0:3"},
		1: {"1:2", "1:3"},
		3: {"3:0", "3:1", "3:2", "3:3"},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("pages read %v, want %v", got, want)
	}
}

// TestScanSegmentsStopsEveryoneOnTheFirstError: one segment fails while
// the others would read forever. The scan returns that error, having
// stopped the others: no read or page is running when it returns, and
// none starts afterwards.
func TestScanSegmentsStopsEveryoneOnTheFirstError(t *testing.T) {
	boom := errors.New("scan failed")
	var running, calls atomic.Int64
	read := func(ctx context.Context, segment int, after projections.Cursor) (int, projections.Cursor, error) {
		running.Add(1)
		defer running.Add(-1)
		calls.Add(1)
		if segment == 0 && after == "3" {
			return 0, "", boom
		}
		select { // a slow read that ends with its context
		case <-ctx.Done():
			return 0, "", ctx.Err()
		case <-time.After(time.Millisecond):
		}
		return 1, after + "3", nil // endless
	}
	var results sync.Map
	page := func(_ context.Context, segment int, _ int, _ projections.Cursor) error {
		results.Store(segment, true) // what the scan's caller owns
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- projections.ScanSegments(context.Background(), projections.Segments(8), read, page) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the other segments were not stopped")
	}
	if !errors.Is(err, boom) {
		t.Fatalf("scan returned %v, want the first error %v", err, boom)
	}
	if n := running.Load(); n != 0 {
		t.Fatalf("%d reads still running after the scan returned", n)
	}
	n := calls.Load()
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != n {
		t.Fatalf("reads went on after the scan returned: %d, then %d", n, calls.Load())
	}
}

// TestScanSegmentsHonoursContext: a scan whose context ends stops with
// the context's error.
func TestScanSegmentsHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var pagesSeen atomic.Int64
	err := projections.ScanSegments(ctx, projections.Segments(3), pages(1_000_000), func(context.Context, int, string, projections.Cursor) error {
		if pagesSeen.Add(1) == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || pagesSeen.Load() >= 3_000_000 {
		t.Fatalf("scan with its context cancelled: %v after %d pages", err, pagesSeen.Load())
	}
}

// TestFolderInBatchesIsTheFold: a Folder fed the events in any batches,
// shuffled and repeated, ends with the tallies of the fold of all of them.
func TestFolderInBatchesIsTheFold(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		events := projectiontest.Events(t, space)
		var f projections.Folder
		for _, batch := range projectiontest.Delivery(t, events) {
			f.Add(batch)
		}
		got, want := f.Tallies(), projections.Fold(events)
		if len(got) != len(want) {
			t.Fatalf("%d titles folded in batches, %d at once", len(got), len(want))
		}
		for title, c := range want {
			if !got[title].Equal(c) {
				t.Fatalf("%s: in batches %v, at once %v", title, got[title], c)
			}
		}
	})
}
