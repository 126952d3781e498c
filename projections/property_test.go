package projections_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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

var errInjected = errors.New("injected fault")

// faulty puts a drawn fault schedule in front of the in-memory stores: a
// call fails before it reaches the store, or after the store applied it
// with the answer lost, or is applied and sent again as the SDK retries, or
// is held back while other writers run. The i-th call gets the i-th fault;
// with several writers, a baton decides whose call is the i-th.
type faulty struct {
	ballots      *memstore.Ballots
	cells        *memstore.Cells
	script       []projectiontest.Fault
	baton        *baton // nil for one writer
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

// call runs writer w's op under the next fault of the schedule.
func (f *faulty) call(w int, op func() error) error {
	if f.baton != nil {
		f.baton.take(w)
		defer f.baton.pass()
	}
	switch f.next() {
	case projectiontest.FailBefore:
		f.failedBefore.Add(1)
		return errInjected
	case projectiontest.FailAfter:
		_ = op()
		f.failedAfter.Add(1)
		return errInjected
	case projectiontest.Delay:
		// Long enough for other writers to run whole steps meanwhile.
		time.Sleep(200 * time.Microsecond)
	case projectiontest.Retried:
		_ = op()
		for range 10 {
			runtime.Gosched()
		}
	}
	return op()
}

func (f *faulty) stop() { f.i.Store(int64(len(f.script))) }

// baton lets the writers' store calls run one at a time, in an order
// drawn with the rest of the test's input: after each call, the next is
// the writer that turns names (the turns[i]-th of those still running,
// the first of them once turns run out). Each writer takes one cell at a
// time, in a fixed order, so a run is a function of the drawn input
// alone: rapid replays a failure and shrinks its faults and interleaving
// together. Writers still meet anywhere in a step, call by call.
type baton struct {
	mu    sync.Mutex
	cond  sync.Cond
	turns []int
	i     int
	turn  int
	busy  bool
	live  []bool
}

func newBaton(rt *rapid.T, writers int) *baton {
	b := &baton{turns: rapid.SliceOfN(rapid.IntRange(0, writers-1), 0, 400).Draw(rt, "turns"), live: make([]bool, writers)}
	b.cond.L = &b.mu
	for w := range b.live {
		b.live[w] = true
	}
	b.next()
	return b
}

// take waits for writer w's turn.
func (b *baton) take(w int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.busy || b.turn != w {
		b.cond.Wait()
	}
	b.busy = true
}

// pass ends a call and hands the turn on.
func (b *baton) pass() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy = false
	b.next()
	b.cond.Broadcast()
}

// done says writer w makes no more calls.
func (b *baton) done(w int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.live[w] = false
	if b.turn == w {
		b.next()
	}
	b.cond.Broadcast()
}

func (b *baton) next() {
	var running []int
	for w, ok := range b.live {
		if ok {
			running = append(running, w)
		}
	}
	if len(running) == 0 {
		return
	}
	k := 0
	if b.i < len(b.turns) {
		k = b.turns[b.i] % len(running)
		b.i++
	}
	b.turn = running[k]
}

// writer is writer w's way to the faulty stores.
type writer struct {
	*faulty
	w int
}

func (x writer) call(op func() error) error { return x.faulty.call(x.w, op) }

type faultyBallots struct{ writer }

func (f faultyBallots) Load(ctx context.Context, titleID string, voters []string) (out map[string]projections.Ballot, err error) {
	err = f.call(func() (err error) { out, err = f.ballots.Load(ctx, titleID, voters); return err })
	return out, err
}

func (f faultyBallots) LoadAll(ctx context.Context, keys []projections.BallotKey) (out map[projections.BallotKey]projections.Ballot, err error) {
	err = f.call(func() (err error) { out, err = f.ballots.LoadAll(ctx, keys); return err })
	return out, err
}

func (f faultyBallots) Save(ctx context.Context, b projections.Ballot) error {
	return f.call(func() error { return f.ballots.Save(ctx, b) })
}

type faultyCells struct{ writer }

func (f faultyCells) Read(ctx context.Context, cell domain.Cell) (st projections.CellState, err error) {
	err = f.call(func() (err error) { st, err = f.cells.Read(ctx, cell); return err })
	return st, err
}

func (f faultyCells) ReadAll(ctx context.Context, cells []domain.Cell) (st map[domain.Cell]projections.CellState, err error) {
	err = f.call(func() (err error) { st, err = f.cells.ReadAll(ctx, cells); return err })
	return st, err
}

func (f faultyCells) Commit(ctx context.Context, cell domain.Cell, expect int64, redo projections.Redo, delta projections.Counts) error {
	return f.call(func() error { return f.cells.Commit(ctx, cell, expect, redo, delta) })
}

// newFaulty draws a fault schedule of up to calls calls, and a baton when
// there are several writers.
func newFaulty(t *rapid.T, calls, writers int) *faulty {
	f := &faulty{ballots: memstore.NewBallots(), cells: memstore.NewCells(), script: projectiontest.DrawScript(t, calls)}
	if writers > 1 {
		f.baton = newBaton(t, writers)
	}
	return f
}

// projector is writer w's projector, one cell at a time.
func (f *faulty) projector(w int) *projections.Projector {
	x := writer{f, w}
	return projections.NewProjector(faultyBallots{x}, faultyCells{x}, 1)
}

// space is where these tests draw votes: few voters, so that ballots
// collide, four of them in one cell of t1 so that steps on a cell change
// several ballots and writers meet there.
var space = projectiontest.Space{Voters: append(storetest.SameCellVoters("t1", 4), "v"), Titles: []string{"t1", "t2"}, Aspects: []string{"story", "acting", "overall"}, MaxEvents: 30, Submissions: 6, Times: 5}

func failedEvents(batch []domain.VoteCast, rep projections.Report) []domain.VoteCast {
	var failed []domain.VoteCast
	for _, e := range batch {
		if _, ok := rep.Failed[e.Cell()]; ok {
			failed = append(failed, e)
		}
	}
	return failed
}

// check holds the stores to the fold of events: every title's tally, and
// every stored ballot (each voter and title with events has one, holding
// exactly the votes that win, and there is no other).
func check(t *rapid.T, f *faulty, events []domain.VoteCast, what string) {
	want := projections.Fold(events)
	for _, title := range space.Titles {
		got, _ := f.cells.Tally(context.Background(), title)
		if !got.Equal(want[title]) {
			t.Fatalf("%s (%d calls failed before, %d after applied): %s tally %v, fold %v, diff %v",
				what, f.failedBefore.Load(), f.failedAfter.Load(), title, got, want[title], got.Diff(want[title]))
		}
	}
	folded := storetest.FoldBallots(events)
	stored := f.ballots.All()
	for _, b := range stored {
		w, ok := folded[[2]string{b.TitleID, b.VoterID}]
		if !ok || !w.Same(projections.Ballot{VoterID: b.VoterID, TitleID: b.TitleID, Aspects: b.Aspects, Past: b.Past}) {
			t.Fatalf("%s: ballot of %s on %s is %v at version %d, the fold's %v", what, b.VoterID, b.TitleID, b.Aspects, b.Version, w.Aspects)
		}
	}
	if len(stored) != len(folded) {
		t.Fatalf("%s: %d ballots stored, the fold has %d", what, len(stored), len(folded))
	}
}

// TestProjectorExactlyOnceUnderFaults: however events are delivered
// (shuffled, repeated, split into batches) and however store calls fail
// (before they were applied, or after with the answer lost), once every
// event has been projected the tallies and the ballots equal the pure fold.
// The same property runs on the emulator in infra/dynamo; here it runs in
// memory, thousands of cases in seconds.
func TestProjectorExactlyOnceUnderFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		f := newFaulty(rt, 200, 1)
		p := f.projector(0)
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
		check(rt, f, events, "one writer")
	})
}

// TestConcurrentWritersExactlyOnceUnderFaults: several live stream
// invocations on the same cells at once, and a rebuild-style writer going
// through the events in table order a page at a time, all folding the
// same events in their own orders, their calls interleaved as drawn, under
// a drawn fault schedule. The tallies and the ballots equal the fold.
func TestConcurrentWritersExactlyOnceUnderFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		stream := rapid.IntRange(2, 4).Draw(rt, "streamWriters")
		f := newFaulty(rt, 300, stream+1)
		events := projectiontest.Events(rt, space)
		var (
			writers    []*projections.Projector
			deliveries [][][]domain.VoteCast
		)
		for w := range stream {
			writers = append(writers, f.projector(w))
			deliveries = append(deliveries, projectiontest.Delivery(rt, events))
		}
		page := rapid.IntRange(1, len(events)).Draw(rt, "rebuildPage")
		var pages [][]domain.VoteCast
		for rest := events; len(rest) > 0; rest = rest[min(page, len(rest)):] {
			pages = append(pages, rest[:min(page, len(rest))])
		}
		writers = append(writers, f.projector(stream))
		deliveries = append(deliveries, pages)

		runWriters(rt, f.baton, writers, deliveries)
		f.stop()
		check(rt, f, events, fmt.Sprintf("%d writers", len(writers)))
	})
}

// runWriters runs each writer over its deliveries at the same time as the
// others, their store calls taking turns by the baton, sending the events
// of the cells that failed again at the end of its own deliveries, until
// every event has been projected.
func runWriters[P projections.BatchProjector](rt *rapid.T, b *baton, writers []P, deliveries [][][]domain.VoteCast) {
	errs := make(chan error, len(writers))
	for i, w := range writers {
		go func() {
			defer b.done(i)
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
}

// counting counts the projector's calls on the stores.
type counting struct {
	projections.Ballots
	projections.Cells
	reads, commits, loads, saves atomic.Int64
	readAlls, loadAlls           atomic.Int64
}

func (c *counting) ReadAll(ctx context.Context, cells []domain.Cell) (map[domain.Cell]projections.CellState, error) {
	c.readAlls.Add(1)
	return c.Cells.ReadAll(ctx, cells)
}

func (c *counting) LoadAll(ctx context.Context, keys []projections.BallotKey) (map[projections.BallotKey]projections.Ballot, error) {
	c.loadAlls.Add(1)
	return c.Ballots.LoadAll(ctx, keys)
}

func (c *counting) Read(ctx context.Context, cell domain.Cell) (projections.CellState, error) {
	c.reads.Add(1)
	return c.Cells.Read(ctx, cell)
}

func (c *counting) Commit(ctx context.Context, cell domain.Cell, expect int64, redo projections.Redo, delta projections.Counts) error {
	c.commits.Add(1)
	return c.Cells.Commit(ctx, cell, expect, redo, delta)
}

func (c *counting) Load(ctx context.Context, titleID string, voterIDs []string) (map[string]projections.Ballot, error) {
	c.loads.Add(1)
	return c.Ballots.Load(ctx, titleID, voterIDs)
}

func (c *counting) Save(ctx context.Context, b projections.Ballot) error {
	c.saves.Add(1)
	return c.Ballots.Save(ctx, b)
}

// TestOneCellWritePerStep: a batch costs each cell it touches one write,
// however many of the cell's voters it changes (up to 250 a step, beyond
// which a cell takes several steps), and a batch that changes nothing costs
// none; each changed ballot is saved once. Its reads take two calls
// whatever the number of cells (all the cells, then all their ballots),
// and one more of each per step after a cell's first.
func TestOneCellWritePerStep(t *testing.T) {
	ctx := context.Background()
	c := &counting{Ballots: memstore.NewBallots(), Cells: memstore.NewCells()}
	p := projections.NewProjector(c, c, 4)
	var batch []domain.VoteCast
	cells := map[domain.Cell]bool{}
	for i := range 200 {
		e := projectiontest.Vote(fmt.Sprintf("u%d", i), fmt.Sprintf("t%d", i%3), "s", "story", "up", int64(i+1))
		batch = append(batch, e, projectiontest.Vote(e.VoterID, e.TitleID, "s", "acting", "down", int64(i+1)))
		cells[e.Cell()] = true
	}
	// And one cell with more voters than a step takes: 600 of them, three
	// steps of at most 250.
	many := storetest.SameCellVoters("t9", 600)
	for i, v := range many {
		batch = append(batch, projectiontest.Vote(v, "t9", "s", "story", []string{"up", "down"}[i%2], 1))
	}
	for round, want := range []struct{ commits, saves int64 }{{int64(len(cells)) + 3, 800}, {0, 0}} {
		for _, n := range []*atomic.Int64{&c.reads, &c.commits, &c.saves, &c.loads, &c.readAlls, &c.loadAlls} {
			n.Store(0)
		}
		rep := p.Project(ctx, batch)
		if len(rep.Failed) > 0 {
			t.Fatal(rep.Failed)
		}
		steps := int64(len(cells)) + 3
		if c.commits.Load() != want.commits || c.saves.Load() != want.saves {
			t.Errorf("round %d, %d steps: %d cell writes, %d ballot saves; want %d writes, %d saves",
				round, steps, c.commits.Load(), c.saves.Load(), want.commits, want.saves)
		}
		if c.readAlls.Load() != 1 || c.loadAlls.Load() != 1 || c.reads.Load() != 2 || c.loads.Load() != 2 {
			t.Errorf("round %d, %d cells: %d reads of all cells, %d loads of all ballots, then %d cell reads and %d ballot loads; want 1 and 1, then 2 and 2 (t9's second and third steps)",
				round, len(cells)+1, c.readAlls.Load(), c.loadAlls.Load(), c.reads.Load(), c.loads.Load())
		}
	}
	want := projections.Fold(batch)
	for _, title := range []string{"t0", "t1", "t2", "t9"} {
		if got, _ := c.Cells.(*memstore.Cells).Tally(ctx, title); !got.Equal(want[title]) {
			t.Errorf("%s: tally %v, fold %v", title, got, want[title])
		}
	}
}

func TestOverlappingWriters(t *testing.T) {
	storetest.TestOverlappingWriters(t, func(*testing.T) (projections.Ballots, storetest.TallyCells) {
		return memstore.NewBallots(), memstore.NewCells()
	})
}
