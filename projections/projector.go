package projections

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"

	"votes/domain"
)

// ErrStale means a stored ballot has moved on since it was loaded: another
// writer touched the cell, which the projection's single-writer design rules
// out. The step fails and is retried.
var ErrStale = errors.New("ballot changed since it was read")

// Ballots stores ballots, one per voter and title.
type Ballots interface {
	// Load returns the stored ballots of voterIDs on titleID, strongly
	// consistent; a voter with no ballot is absent from the map.
	Load(ctx context.Context, titleID string, voterIDs []string) (map[string]Ballot, error)
	// Save writes b if the stored ballot is at b.Version-1 (none stored when
	// b.Version is 1). Saving a ballot that is already stored as it is (a
	// retried call the store had applied) succeeds; otherwise a ballot that
	// moved on gives ErrStale.
	Save(ctx context.Context, b Ballot) error
}

// Cells stores tally cells: counts, and at most one projection step in
// flight per cell, which works as the cell's write-ahead record.
type Cells interface {
	// Begin records step as in flight on cell. If another step is in flight
	// it records nothing and returns that step. Beginning the step that is
	// already in flight returns nil.
	Begin(ctx context.Context, cell domain.Cell, step Step) (*Step, error)
	// Commit adds delta to the cell's counts and clears step stepID in one
	// atomic write. If stepID is not in flight (it was committed already) it
	// changes nothing and returns nil.
	Commit(ctx context.Context, cell domain.Cell, stepID string, delta Counts) error
}

// Step is one projection step on one cell: its ID, with which the ballots
// it writes are stamped, and the voters whose ballots it may write.
type Step struct {
	ID     string
	Voters []string
}

// Projector folds batches of events into ballots and cells, exactly once.
//
// Each cell is updated by one step at a time: Begin records the step and the
// voters it may touch; the ballots that change are saved stamped with the
// step's ID and what they held before; Commit adds the counts and clears the
// step in one write. A step that dies half way is found by the next Begin on
// the cell, which counts the ballots stamped with the dead step (their Prev
// says what they changed) and commits it before going on. The ballot fold is
// idempotent, so redelivered events change nothing, and a ballot is written
// only when an event changes it.
//
// It relies on one writer per cell at a time: every event of a cell is stored
// under the cell's partition key, and the stream consumer processes a
// partition key's records in order, one batch at a time.
type Projector struct {
	ballots     Ballots
	cells       Cells
	concurrency int
	newStepID   func() string
}

// NewProjector builds a projector; concurrency bounds the cells projected at
// once (at least 1).
func NewProjector(ballots Ballots, cells Cells, concurrency int) *Projector {
	return &Projector{ballots: ballots, cells: cells, concurrency: max(concurrency, 1), newStepID: randomID}
}

// Report says what one Project call did.
type Report struct {
	Cells     int
	Ballots   int // ballots written
	Recovered int // steps of earlier, failed attempts that were completed
	Failed    map[domain.Cell]error
}

// Project folds events into the stores. Cells are independent: one failing
// does not stop the others, and Report.Failed says which failed, so the
// caller can retry only their events.
func (p *Projector) Project(ctx context.Context, events []domain.VoteCast) Report {
	byCell := map[domain.Cell][]domain.VoteCast{}
	for _, e := range events {
		byCell[e.Cell()] = append(byCell[e.Cell()], e)
	}
	var (
		mu  sync.Mutex
		rep = Report{Cells: len(byCell), Failed: map[domain.Cell]error{}}
		wg  sync.WaitGroup
		sem = make(chan struct{}, p.concurrency)
	)
	for cell, evs := range byCell {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			written, recovered, err := p.projectCell(ctx, cell, evs)
			mu.Lock()
			defer mu.Unlock()
			rep.Ballots += written
			rep.Recovered += recovered
			if err != nil {
				rep.Failed[cell] = err
			}
		}()
	}
	wg.Wait()
	return rep
}

func (p *Projector) projectCell(ctx context.Context, cell domain.Cell, events []domain.VoteCast) (written, recovered int, err error) {
	byVoter := map[string][]domain.VoteCast{}
	for _, e := range events {
		byVoter[e.VoterID] = append(byVoter[e.VoterID], e)
	}
	voters := make([]string, 0, len(byVoter))
	for v := range byVoter {
		voters = append(voters, v)
	}
	slices.Sort(voters)
	step := Step{ID: p.newStepID(), Voters: voters}

	for {
		inflight, err := p.cells.Begin(ctx, cell, step)
		if err != nil {
			return written, recovered, fmt.Errorf("begin step on cell %s: %w", cell, err)
		}
		if inflight == nil {
			break
		}
		if err := p.recover(ctx, cell, *inflight); err != nil {
			return written, recovered, err
		}
		recovered++
	}

	stored, err := p.ballots.Load(ctx, cell.TitleID, voters)
	if err != nil {
		return written, recovered, fmt.Errorf("load ballots of cell %s: %w", cell, err)
	}
	delta := Counts{}
	for _, voter := range voters {
		b, ok := stored[voter]
		if !ok {
			b = NewBallot(voter, cell.TitleID)
		}
		before := b.choices()
		changed := false
		for _, e := range byVoter[voter] {
			changed = b.Apply(e) || changed
		}
		if !changed {
			continue
		}
		b.Prev = map[string]string{}
		for aspect, cur := range b.Aspects {
			if before[aspect] != cur.Choice {
				b.Prev[aspect] = before[aspect]
			}
		}
		if len(b.Prev) == 0 {
			// A newer vote with the same choice: store it so that ordering
			// stays right, but the tally does not move.
			b.Prev = nil
		}
		b.Step = step.ID
		b.Version++
		if err := p.ballots.Save(ctx, b); err != nil {
			return written, recovered, fmt.Errorf("save ballot on cell %s: %w", cell, err)
		}
		written++
		delta.Merge(b.stepDelta())
	}
	if err := p.cells.Commit(ctx, cell, step.ID, delta); err != nil {
		return written, recovered, fmt.Errorf("commit step on cell %s: %w", cell, err)
	}
	return written, recovered, nil
}

// recover completes a step that an earlier attempt began and did not commit:
// every ballot it saved carries its ID and says what it changed.
func (p *Projector) recover(ctx context.Context, cell domain.Cell, step Step) error {
	stored, err := p.ballots.Load(ctx, cell.TitleID, step.Voters)
	if err != nil {
		return fmt.Errorf("recover step %s on cell %s: load ballots: %w", step.ID, cell, err)
	}
	delta := Counts{}
	for _, b := range stored {
		if b.Step == step.ID {
			delta.Merge(b.stepDelta())
		}
	}
	if err := p.cells.Commit(ctx, cell, step.ID, delta); err != nil {
		return fmt.Errorf("recover step %s on cell %s: commit: %w", step.ID, cell, err)
	}
	return nil
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
