// Package memstore keeps ballots and tally cells in memory, with the same
// conditional semantics as the DynamoDB stores: it passes the same contract
// suites (projectiontest.TestBallots, projectiontest.TestCells). It lets the
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

// Save writes b if the stored ballot is at b.Version-1 (none when b.Version
// is 1) and does not fence off b.Step; a ballot stored as it is succeeds.
func (s *Ballots) Save(_ context.Context, b projections.Ballot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{b.TitleID, b.VoterID}
	stored, ok := s.ballots[k]
	var fits bool
	if b.Version <= 1 {
		fits = !ok
	} else {
		fits = ok && stored.Version == b.Version-1 && !slices.Contains(stored.Fences, b.Step)
	}
	if fits {
		s.ballots[k] = clone(b)
		return nil
	}
	if ok && stored.Same(b) {
		return nil // an earlier try of this very save
	}
	return projections.ErrStale
}

// Create stores each ballot that does not exist yet and returns the
// indexes of those that did.
func (s *Ballots) Create(_ context.Context, bs []projections.Ballot) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var existing []int
	for i, b := range bs {
		k := [2]string{b.TitleID, b.VoterID}
		if _, ok := s.ballots[k]; ok {
			existing = append(existing, i)
			continue
		}
		s.ballots[k] = clone(b)
	}
	return existing, nil
}

func clone(b projections.Ballot) projections.Ballot {
	b.Aspects = maps.Clone(b.Aspects)
	b.Prev = maps.Clone(b.Prev)
	b.Fences = slices.Clone(b.Fences)
	return b
}

// Cells keeps tally cells: counts, the step in flight and the last step
// finished. Safe for concurrent use.
type Cells struct {
	mu    sync.Mutex
	cells map[domain.Cell]*cell
}

type cell struct {
	counts   projections.Counts
	inflight *projections.Step
	last     string
}

var _ projections.Cells = (*Cells)(nil)

// NewCells is an empty cell store.
func NewCells() *Cells {
	return &Cells{cells: map[domain.Cell]*cell{}}
}

func (s *Cells) get(c domain.Cell) *cell {
	x, ok := s.cells[c]
	if !ok {
		x = &cell{counts: projections.Counts{}}
		s.cells[c] = x
	}
	return x
}

// Begin records step as in flight unless another step is, or the cell has
// finished a step whose ID is not below step.ID.
func (s *Cells) Begin(_ context.Context, c domain.Cell, step projections.Step) (*projections.Step, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.get(c)
	if x.inflight != nil {
		if x.inflight.ID == step.ID {
			return nil, nil
		}
		in := *x.inflight
		in.Voters = slices.Clone(in.Voters)
		return &in, nil
	}
	if x.last >= step.ID {
		return nil, &projections.StepOrderError{Cell: c, Last: x.last}
	}
	step.Voters = slices.Clone(step.Voters)
	x.inflight = &step
	return nil, nil
}

// Commit adds delta and finishes stepID if it is in flight.
func (s *Cells) Commit(_ context.Context, c domain.Cell, stepID string, delta projections.Counts) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.get(c)
	if x.inflight == nil || x.inflight.ID != stepID {
		return nil
	}
	x.counts.Merge(delta)
	x.inflight, x.last = nil, stepID
	return nil
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
