package projections_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"votes/domain"
	"votes/projections"
	"votes/projections/memstore"
	"votes/projections/projectiontest"
)

var errInjected = errors.New("injected fault")

// faulty puts a drawn fault schedule in front of the in-memory stores: a
// call fails before it reaches the store, or after the store applied it
// with the answer lost, or is held back while other writers run.
type faulty struct {
	ballots      projections.Ballots
	cells        *memstore.Cells
	script       []projectiontest.Fault
	i            atomic.Int64
	failedBefore atomic.Int64
	failedAfter  atomic.Int64
}

func (f *faulty) next() projectiontest.Fault {
	if i := f.i.Add(1) - 1; i < int64(len(f.script)) {
		return f.script[i]
	}
	return projectiontest.Pass
}

// call runs op under the next fault of the schedule.
func (f *faulty) call(op func() error) error {
	switch f.next() {
	case projectiontest.FailBefore:
		f.failedBefore.Add(1)
		return errInjected
	case projectiontest.FailAfter:
		_ = op()
		f.failedAfter.Add(1)
		return errInjected
	case projectiontest.Delay:
		for range 3 {
			runtime.Gosched()
		}
	case projectiontest.Retried:
		_ = op()
		for range 10 {
			runtime.Gosched()
		}
	}
	return op()
}

func (f *faulty) stop() { f.i.Store(int64(len(f.script))) }

type faultyBallots struct{ *faulty }

func (f faultyBallots) Load(ctx context.Context, titleID string, voters []string) (out map[string]projections.Ballot, err error) {
	err = f.call(func() (err error) { out, err = f.ballots.Load(ctx, titleID, voters); return err })
	return out, err
}

func (f faultyBallots) Save(ctx context.Context, b projections.Ballot) error {
	return f.call(func() error { return f.ballots.Save(ctx, b) })
}

func (f faultyBallots) Create(ctx context.Context, bs []projections.Ballot) (existing []int, err error) {
	err = f.call(func() (err error) { existing, err = f.ballots.Create(ctx, bs); return err })
	return existing, err
}

type faultyCells struct{ *faulty }

func (f faultyCells) Begin(ctx context.Context, cell domain.Cell, step projections.Step) (in *projections.Step, err error) {
	err = f.call(func() (err error) { in, err = f.cells.Begin(ctx, cell, step); return err })
	return in, err
}

func (f faultyCells) Commit(ctx context.Context, cell domain.Cell, stepID string, delta projections.Counts) error {
	return f.call(func() error { return f.cells.Commit(ctx, cell, stepID, delta) })
}

func newFaulty(t *rapid.T, calls int) *faulty {
	return &faulty{ballots: memstore.NewBallots(), cells: memstore.NewCells(), script: projectiontest.DrawScript(t, calls)}
}

// space is where these tests draw votes: few voters, so that ballots
// collide and cells are shared.
var space = projectiontest.Space{Voters: []string{"u1", "u2", "u3", "u4", "u5"}, Titles: []string{"t1", "t2"}, Aspects: []string{"story", "acting", "overall"}, MaxEvents: 30, Submissions: 6, Times: 5}

func failedEvents(batch []domain.VoteCast, rep projections.Report) []domain.VoteCast {
	var failed []domain.VoteCast
	for _, e := range batch {
		if _, ok := rep.Failed[e.Cell()]; ok {
			failed = append(failed, e)
		}
	}
	return failed
}

func checkTallies(t *rapid.T, f *faulty, events []domain.VoteCast, what string) {
	want := projections.Fold(events)
	for _, title := range space.Titles {
		got, _ := f.cells.Tally(context.Background(), title)
		if !got.Equal(want[title]) {
			t.Fatalf("%s (%d calls failed before, %d after applied): %s tally %v, fold %v, diff %v",
				what, f.failedBefore.Load(), f.failedAfter.Load(), title, got, want[title], got.Diff(want[title]))
		}
	}
}

// TestProjectorExactlyOnceUnderFaults: however events are delivered
// (shuffled, repeated, split into batches) and however store calls fail
// (before they were applied, or after with the answer lost), once every
// event has been projected the tallies equal the pure fold. The same
// property runs on the emulator in infra/dynamo; here it runs in memory,
// thousands of cases in seconds.
func TestProjectorExactlyOnceUnderFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := newFaulty(rt, 200)
		p := projections.NewProjectorWith(faultyBallots{f}, faultyCells{f}, projections.Options{
			Concurrency: rapid.IntRange(1, 4).Draw(rt, "concurrency"), Owner: "stream", TakeOverOwn: true,
			Lease: time.Minute, MaxWait: time.Second, Clock: projectiontest.NewClock(),
		})
		events := projectiontest.Events(rt, space)
		pending := projectiontest.Delivery(rt, events)
		for attempts := 0; len(pending) > 0; attempts++ {
			if attempts > 400 {
				rt.Fatalf("no progress after %d attempts", attempts)
			}
			batch := pending[0]
			pending = pending[1:]
			if failed := failedEvents(batch, p.Project(context.Background(), batch)); len(failed) > 0 {
				at := rapid.IntRange(0, len(pending)).Draw(rt, "redeliverAt")
				pending = slices.Insert(pending, at, failed)
			}
		}
		f.stop()
		checkTallies(rt, f, events, "one writer")
	})
}

// TestConcurrentWritersExactlyOnceUnderFaults: several live stream
// invocations on the same cells at once, each taking over the others'
// steps at once, and a rebuild whose steps outlive their leases on a fake
// clock, all folding the same events in their own orders under a drawn
// fault schedule. The tallies equal the fold.
func TestConcurrentWritersExactlyOnceUnderFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := newFaulty(rt, 300)
		clock := projectiontest.NewClock()
		lease := time.Duration(rapid.IntRange(1, 40).Draw(rt, "leaseMs")) * time.Millisecond
		var writers []*projections.Projector
		for range rapid.IntRange(2, 4).Draw(rt, "streamWriters") {
			writers = append(writers, projections.NewProjectorWith(faultyBallots{f}, faultyCells{f}, projections.Options{
				Concurrency: 2, Owner: "stream", TakeOverOwn: true, Lease: lease, MaxWait: 20 * time.Millisecond, Clock: clock,
			}))
		}
		writers = append(writers, projections.NewProjectorWith(faultyBallots{f}, faultyCells{f}, projections.Options{
			Concurrency: 2, Owner: "rebuild", Lease: lease, MaxWait: 20 * time.Millisecond, Clock: clock, Bulk: rapid.Bool().Draw(rt, "bulk"),
		}))
		events := projectiontest.Events(rt, space)
		deliveries := make([][][]domain.VoteCast, len(writers))
		for i := range writers {
			deliveries[i] = projectiontest.Delivery(rt, events)
		}
		errs := make(chan error, len(writers))
		for i, w := range writers {
			go func() {
				pending := deliveries[i]
				for attempts := 0; len(pending) > 0; attempts++ {
					if attempts > 500 {
						errs <- fmt.Errorf("writer %d: no progress after %d attempts", i, attempts)
						return
					}
					batch := pending[0]
					pending = pending[1:]
					if failed := failedEvents(batch, w.Project(context.Background(), batch)); len(failed) > 0 {
						pending = append(pending, failed)
					}
				}
				errs <- nil
			}()
		}
		for range writers {
			if err := <-errs; err != nil {
				rt.Fatal(err)
			}
		}
		f.stop()
		checkTallies(rt, f, events, fmt.Sprintf("%d writers, lease %v", len(writers), lease))
	})
}
