// Package memstore keeps ballots and tally cells in memory, with the same
// conditional semantics as the DynamoDB stores: it passes the same contract
// suites (storetest.TestBallots, storetest.TestCells). It lets the
// projector's property tests run thousands of cases in seconds; the
// DynamoDB stores keep their own tests on the emulator.
package memstore

import (
	"context"
	"maps"
	"slices"
	"sync"

	"votes/domain"
	"votes/projections"
)

// Ballots keeps ballots, one per voter and title. Safe for concurrent use.
type Ballots struct {
	mu      sync.Mutex
	ballots map[[2]string]projections.Ballot // title, voter
}

var _ projections.Ballots = (*Ballots)(nil)

// NewBallots is an empty ballot store.
func NewBallots() *Ballots {
	return &Ballots{ballots: map[[2]string]projections.Ballot{}}
}

// Load returns copies of the stored ballots of voterIDs on titleID.
func (s *Ballots) Load(_ context.Context, titleID string, voterIDs []string) (map[string]projections.Ballot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]projections.Ballot, len(voterIDs))
	for _, v := range voterIDs {
		if b, ok := s.ballots[[2]string{titleID, v}]; ok {
			out[v] = clone(b)
		}
	}
	return out, nil
}

// LoadAll returns copies of the stored ballots of keys.
func (s *Ballots) LoadAll(_ context.Context, keys []projections.BallotKey) (map[projections.BallotKey]projections.Ballot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[projections.BallotKey]projections.Ballot, len(keys))
	for _, k := range keys {
		if b, ok := s.ballots[[2]string{k.TitleID, k.VoterID}]; ok {
			out[k] = clone(b)
		}
	}
	return out, nil
}

// Save writes b if the stored ballot is at b.Version-1 (none when b.Version
// is 1); a ballot stored as it is succeeds.
func (s *Ballots) Save(_ context.Context, b projections.Ballot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{b.TitleID, b.VoterID}
	stored, ok := s.ballots[k]
	if (!ok && b.Version == 1) || (ok && stored.Version == b.Version-1) {
		s.ballots[k] = clone(b)
		return nil
	}
	if ok && stored.Same(b) {
		return nil // an earlier try of this very save
	}
	return projections.ErrStale
}

// All is every stored ballot, for tests to compare with a fold.
func (s *Ballots) All() []projections.Ballot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]projections.Ballot, 0, len(s.ballots))
	for _, b := range s.ballots {
		out = append(out, clone(b))
	}
	return out
}

func clone(b projections.Ballot) projections.Ballot {
	b.Aspects = maps.Clone(b.Aspects)
	if b.Past != nil {
		past := make(map[string][]projections.Current, len(b.Past))
		for a, v := range b.Past {
			past[a] = slices.Clone(v)
		}
		b.Past = past
	}
	return b
}

// Cells keeps tally cells: counts, version and redo log. Safe for
// concurrent use.
type Cells struct {
	mu    sync.Mutex
	cells map[domain.Cell]*cell
}

type cell struct {
	counts  projections.Counts
	version int64
	redo    projections.Redo
}

var _ projections.Cells = (*Cells)(nil)

// NewCells is an empty cell store.
func NewCells() *Cells {
	return &Cells{cells: map[domain.Cell]*cell{}}
}

// Read returns a copy of the cell's version and redo log.
func (s *Cells) Read(_ context.Context, c domain.Cell) (projections.CellState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.cells[c]
	if !ok {
		return projections.CellState{}, nil
	}
	return projections.CellState{Version: x.version, Redo: cloneRedo(x.redo)}, nil
}

// ReadAll returns copies of the cells' versions and redo logs.
func (s *Cells) ReadAll(ctx context.Context, cells []domain.Cell) (map[domain.Cell]projections.CellState, error) {
	out := make(map[domain.Cell]projections.CellState, len(cells))
	for _, c := range cells {
		out[c], _ = s.Read(ctx, c)
	}
	return out, nil
}

// Commit adds delta, replaces the redo log and moves the version on, if the
// cell is at expect; a cell that holds redo already (a retried call) is a
// success, any other is ErrCellMoved.
func (s *Cells) Commit(_ context.Context, c domain.Cell, expect int64, redo projections.Redo, delta projections.Counts) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.cells[c]
	if !ok {
		x = &cell{counts: projections.Counts{}}
	}
	if x.version != expect {
		if redo.Step != "" && x.redo.Step == redo.Step {
			return nil
		}
		return projections.ErrCellMoved
	}
	x.counts.Merge(delta)
	x.version++
	x.redo = cloneRedo(redo)
	s.cells[c] = x
	return nil
}

func cloneRedo(r projections.Redo) projections.Redo {
	r.Entries = slices.Clone(r.Entries)
	for i := range r.Entries {
		r.Entries[i].Votes = slices.Clone(r.Entries[i].Votes)
	}
	r.Trend = maps.Clone(r.Trend)
	return r
}

// Tally sums a title's cells.
func (s *Cells) Tally(_ context.Context, titleID string) (projections.Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := projections.Counts{}
	for c, x := range s.cells {
		if c.TitleID == titleID {
			out.Merge(x.counts)
		}
	}
	return out.Compact(), nil
}
