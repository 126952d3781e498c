package dynamo_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/projections"
)

func TestSummaryStoreReadsWhatItStored(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := dynamo.NewSummaryStore(f.clients.DynamoDB, f.tables.Tallies)
	if _, _, ok, err := s.Summary(ctx, "1", "tt1"); ok || err != nil {
		t.Fatalf("summary of a title never summed: ok %v, %v", ok, err)
	}
	at := time.Unix(1700000000, 123456789)
	want := projections.Counts{"story": {"up": 3, "down": 1}, "acting": {"up": 2}}
	if err := s.Offer(ctx, "1", "tt1", want, at); err != nil {
		t.Fatal(err)
	}
	if err := s.Offer(ctx, "1", "tt0", projections.Counts{}, at); err != nil {
		t.Fatal(err)
	}
	got, gotAt, ok, err := s.Summary(ctx, "1", "tt1")
	if err != nil || !ok || !got.Equal(want) || !gotAt.Equal(at) {
		t.Fatalf("summary %v at %v (ok %v, %v), want %v at %v", got, gotAt, ok, err, want, at)
	}
	if got, _, ok, err := s.Summary(ctx, "1", "tt0"); err != nil || !ok || len(got) != 0 {
		t.Errorf("summary of a title without votes: %v (ok %v, %v), want an empty one", got, ok, err)
	}
	// Versions keep summaries of their own.
	if _, _, ok, err := s.Summary(ctx, "2", "tt1"); ok || err != nil {
		t.Errorf("version 2 reads version 1's summary: ok %v, %v", ok, err)
	}
	// A version's cells, as the verifier and the version listing scan
	// them, do not include its summaries.
	if got, err := f.cells.Tally(ctx, "tt1"); err != nil || len(got) != 0 {
		t.Errorf("cells of tt1 %v, %v: the summary was taken for a cell", got, err)
	}
}

// TestSummaryOnlyMovesForward offers summaries taken at drawn times,
// concurrently, through a network that loses the answers of drawn puts
// after DynamoDB applied them (so that puts already stored are retried):
// the stored summary is the newest offered, whatever order they landed in.
func TestSummaryOnlyMovesForward(t *testing.T) {
	flaky := faults.New(0)
	f := newFixture(t, flaky)
	s := dynamo.NewSummaryStore(f.clients.DynamoDB, f.tables.Tallies)
	ctx := context.Background()
	base := time.Unix(1700000000, 0)
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		title := "tt" + strconv.Itoa(n)
		offsets := rapid.SliceOfN(rapid.IntRange(0, 5000), 1, 8).Draw(rt, "offsets (ms)")
		lost := rapid.SliceOfN(rapid.Bool(), 0, 16).Draw(rt, "puts whose answer is lost, in call order")
		flaky.SetDecider(func(target, _ string) faults.Fault {
			if !faults.Action(target, "PutItem") || len(lost) == 0 {
				return faults.None
			}
			l := lost[0]
			lost = lost[1:]
			if l {
				return faults.After
			}
			return faults.None
		})
		defer flaky.Off()
		newest := 0
		var wg sync.WaitGroup
		for _, o := range offsets {
			newest = max(newest, o)
			wg.Add(1)
			go func() {
				defer wg.Done()
				at := base.Add(time.Duration(o) * time.Millisecond)
				// An offer that failed may have been stored; offering it
				// again, as a caller may, must be harmless.
				for s.Offer(ctx, "1", title, projections.Counts{"story": {"up": int64(o) + 1}}, at) != nil {
				}
			}()
		}
		wg.Wait()
		flaky.Off()
		got, at, ok, err := s.Summary(ctx, "1", title)
		if err != nil || !ok {
			rt.Fatalf("no summary after %d offers: %v", len(offsets), err)
		}
		want := base.Add(time.Duration(newest) * time.Millisecond)
		if !at.Equal(want) || !got.Equal(projections.Counts{"story": {"up": int64(newest) + 1}}) {
			rt.Fatalf("stored summary %v taken at +%v, want the newest, taken at +%d ms", got, at.Sub(base), newest)
		}
		// An older offer landing now changes nothing.
		if err := s.Offer(ctx, "1", title, projections.Counts{"story": {"down": 1}}, want.Add(-time.Nanosecond)); err != nil {
			rt.Fatal(err)
		}
		if _, at2, _, _ := s.Summary(ctx, "1", title); !at2.Equal(want) {
			rt.Fatalf("a late, older offer moved the summary back to +%v", at2.Sub(base))
		}
	})
}
