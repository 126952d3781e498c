package projections

import (
	"context"
	"fmt"
	"sync"

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
type IndexedProjector struct {
	ballots     Ballots
	cells       Cells
	index       TitleIndex
	titleCells  TitleCells
	concurrency int
	done        *completed // kept from one batch to the next, as a Projector keeps it
}

// NewIndexedProjector projects into ballots and cells, and indexes titles
// into index, reading a title's cells through titleCells when it resyncs.
func NewIndexedProjector(ballots Ballots, cells Cells, index TitleIndex, titleCells TitleCells, concurrency int) *IndexedProjector {
	return &IndexedProjector{ballots: ballots, cells: cells, index: index, titleCells: titleCells, concurrency: max(concurrency, 1), done: newCompleted()}
}

// Project folds events into the ballots and cells, then into the index.
func (p *IndexedProjector) Project(ctx context.Context, events []domain.VoteCast) Report {
	rec := &recordingCells{Cells: p.cells, seen: map[domain.Cell]int64{}}
	rep := (&Projector{ballots: p.ballots, cells: rec, concurrency: p.concurrency, done: p.done}).Project(ctx, events)
	byTitle := map[string][]CellStep{}
	cellsOf := map[string][]domain.Cell{}
	for cell, v := range rec.seen {
		// The cell as this batch saw it last: the index must hold at least
		// that version, whatever else it does.
		byTitle[cell.TitleID] = append(byTitle[cell.TitleID], CellStep{Cell: cell, From: v, To: v})
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
	for title, steps := range byTitle {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := IndexTitles(ctx, p.index, p.titleCells, title, steps)
			if err == nil {
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

// recordingCells passes calls to Cells and notes, per cell, the last
// version read and every step committed, with what it added.
type recordingCells struct {
	Cells
	mu    sync.Mutex
	seen  map[domain.Cell]int64
	steps []CellStep
}

func (r *recordingCells) Read(ctx context.Context, cell domain.Cell) (CellState, error) {
	st, err := r.Cells.Read(ctx, cell)
	if err == nil {
		r.mu.Lock()
		r.seen[cell] = max(r.seen[cell], st.Version)
		r.mu.Unlock()
	}
	return st, err
}

func (r *recordingCells) Commit(ctx context.Context, cell domain.Cell, expect int64, redo Redo, delta Counts) error {
	err := r.Cells.Commit(ctx, cell, expect, redo, delta)
	if err == nil {
		last := redo.LastVoteAt()
		d := Counts{}
		d.Merge(delta)
		r.mu.Lock()
		r.steps = append(r.steps, CellStep{Cell: cell, From: expect, To: expect + 1, Delta: d, LastVoteAt: last})
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
