package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"votes/domain"
)

// BatchProjector folds a batch of events into a version's projections,
// exactly once, and says which cells failed (their events are retried):
// a Projector, or an IndexedProjector.
type BatchProjector interface {
	Project(ctx context.Context, events []domain.VoteCast) Report
}

var (
	_ BatchProjector = (*Projector)(nil)
	_ BatchProjector = (*IndexedProjector)(nil)
)

// IndexedProjector is a Projector that also keeps the title index: after
// the steps of a batch, each title they touched has its summary brought up
// to date with the steps (IndexTitles), exactly once by cell version. A
// title whose summary cannot be written fails the batch's cells of that
// title, so that the batch is retried; the retry's steps see the cells at
// the versions committed before, and the index catches up then (or, after
// a lost write that a later step overtook, resyncs from the cells). The
// versioned rebuild and the repairer project through the same code, so a
// rebuilt version has its index, and votes cast before the index existed
// are in it.
//
// The trends need every step, not just the counts a resync can read back
// from the cells. So before a step commits on a cell at version n, the
// index must hold step n, which the cell still describes (its redo log
// carries the step's trend): unless this projector indexed step n itself,
// it indexes it then, and a failure there fails the step. The index is
// thus at most one step behind on any cell, and that step is always in
// the cell to catch up from.
type IndexedProjector struct {
	ballots     Ballots
	cells       Cells
	index       IndexStore
	titleCells  TitleCells
	concurrency int
	done        *completed // kept from one batch to the next, as a Projector keeps it
	indexed     *completed // per cell, the last step known to be in the index
	flush       FlushPolicy
	now         func() time.Time
}

// NewIndexedProjector projects into ballots and cells, and indexes titles
// and their trends into index, reading a title's cells through titleCells
// when it resyncs.
func NewIndexedProjector(ballots Ballots, cells Cells, index IndexStore, titleCells TitleCells, concurrency int) *IndexedProjector {
	return &IndexedProjector{ballots: ballots, cells: cells, index: index, titleCells: titleCells, concurrency: max(concurrency, 1),
		done: newCompleted(), indexed: newCompleted(), flush: FlushPolicy{Every: DefaultFlush.Every, MaxPending: DefaultFlush.MaxPending, Writes: max(concurrency, 1), Done: NewFlushed()}, now: time.Now}
}

// WithClock makes now the clock that says which minutes of the trend have
// closed (and move from a title's summary to its trend items); for tests.
func (p *IndexedProjector) WithClock(now func() time.Time) *IndexedProjector {
	p.now = now
	return p
}

// WithFlushEvery makes a title's summary flush its closed minutes once
// every n of its writes (see FlushPolicy); for tests.
func (p *IndexedProjector) WithFlushEvery(n int64) *IndexedProjector {
	p.flush.Every = n
	return p
}

// Project folds events into the ballots and cells, then into the index.
func (p *IndexedProjector) Project(ctx context.Context, events []domain.VoteCast) Report {
	rec := &recordingCells{Cells: p.cells, p: p, seen: map[domain.Cell]CellState{}}
	rep := (&Projector{ballots: p.ballots, cells: rec, concurrency: p.concurrency, done: p.done}).Project(ctx, events)
	byTitle := map[string][]CellStep{}
	cellsOf := map[string][]domain.Cell{}
	for cell, st := range rec.seen {
		// The cell as this batch saw it last: the index must hold at least
		// that version, whatever else it does.
		byTitle[cell.TitleID] = append(byTitle[cell.TitleID], lastStep(cell, st))
		cellsOf[cell.TitleID] = append(cellsOf[cell.TitleID], cell)
	}
	for _, st := range rec.steps {
		byTitle[st.Cell.TitleID] = append(byTitle[st.Cell.TitleID], st)
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, p.concurrency)
	)
	for _, title := range slices.Sorted(maps.Keys(byTitle)) { // in a fixed order, as Projector takes cells
		steps := byTitle[title]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := IndexTitles(ctx, p.index, p.titleCells, title, steps, p.now(), p.flush)
			if err == nil {
				for _, st := range steps {
					if st.step != "" {
						p.indexed.mark(st.Cell, st.step)
					}
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, cell := range cellsOf[title] {
				if _, failed := rep.Failed[cell]; !failed {
					rep.Failed[cell] = fmt.Errorf("index title: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	return rep
}

// lastStep is the cell's last committed step as the cell describes it:
// when its redo log carries no trend (a release that kept none), only its
// version, which asks the index to hold at least that much.
func lastStep(cell domain.Cell, st CellState) CellStep {
	if st.Version == 0 || st.Redo.Trend == nil {
		return CellStep{Cell: cell, From: st.Version, To: st.Version}
	}
	return CellStep{Cell: cell, From: st.Version - 1, To: st.Version, Delta: st.Redo.Trend.Counts(), Trend: st.Redo.Trend,
		LastVoteAt: st.Redo.LastVoteAt(), step: st.Redo.Step}
}

// recordingCells passes calls to Cells and notes, per cell, the last
// state read and every step committed, with what it added; before a
// commit it catches the index up with the step the cell was read at.
type recordingCells struct {
	Cells
	p     *IndexedProjector
	mu    sync.Mutex
	seen  map[domain.Cell]CellState
	steps []CellStep
}

func (r *recordingCells) Read(ctx context.Context, cell domain.Cell) (CellState, error) {
	st, err := r.Cells.Read(ctx, cell)
	if err == nil {
		r.mu.Lock()
		if st.Version >= r.seen[cell].Version {
			r.seen[cell] = st
		}
		r.mu.Unlock()
	}
	return st, err
}

func (r *recordingCells) ReadAll(ctx context.Context, cells []domain.Cell) (map[domain.Cell]CellState, error) {
	states, err := r.Cells.ReadAll(ctx, cells)
	if err == nil {
		r.mu.Lock()
		for cell, st := range states {
			if st.Version >= r.seen[cell].Version {
				r.seen[cell] = st
			}
		}
		r.mu.Unlock()
	}
	return states, err
}

func (r *recordingCells) Commit(ctx context.Context, cell domain.Cell, expect int64, redo Redo, delta Counts) error {
	r.mu.Lock()
	st := r.seen[cell]
	r.mu.Unlock()
	if st.Version == expect && expect > 0 && !r.p.indexed.is(cell, st.Redo.Step) {
		last := lastStep(cell, st)
		if err := IndexTitles(ctx, r.p.index, r.p.titleCells, cell.TitleID, []CellStep{last}, r.p.now(), r.p.flush); err != nil {
			return fmt.Errorf("catch the index up with cell %s at version %d: %w", cell, expect, err)
		}
		if last.step != "" {
			r.p.indexed.mark(cell, last.step)
		}
	}
	err := r.Cells.Commit(ctx, cell, expect, redo, delta)
	if err == nil {
		d := Counts{}
		d.Merge(delta)
		r.mu.Lock()
		r.steps = append(r.steps, CellStep{Cell: cell, From: expect, To: expect + 1, Delta: d, Trend: redo.Trend,
			LastVoteAt: redo.LastVoteAt(), step: redo.Step})
		r.mu.Unlock()
	}
	return err
}

// LastVoteAt is the latest receive time among the redo log's votes, 0 for
// none.
func (r Redo) LastVoteAt() int64 {
	var last int64
	for _, e := range r.Entries {
		for _, v := range e.Votes {
			last = max(last, v.RecordedAt)
		}
	}
	return last
}
