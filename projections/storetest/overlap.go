package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"votes/domain"
	"votes/projections"
	"votes/projections/projectiontest"
)

// FoldBallots is the pure definition of the ballots: for every title and
// voter with events (keyed so), the ballot that folds them all, at version 0.
func FoldBallots(events []domain.VoteCast) map[[2]string]projections.Ballot {
	out := map[[2]string]projections.Ballot{}
	for _, e := range events {
		k := [2]string{e.TitleID, e.VoterID}
		b, ok := out[k]
		if !ok {
			b = projections.NewBallot(e.VoterID, e.TitleID)
		}
		b.Apply(e)
		out[k] = b
	}
	return out
}

// SameCellVoters finds n voters whose ballots on title share one cell.
func SameCellVoters(title string, n int) []string {
	byShard := map[int][]string{}
	for i := 0; ; i++ {
		v := fmt.Sprintf("u%d", i)
		c := domain.CellOf(title, v)
		byShard[c.Shard] = append(byShard[c.Shard], v)
		if len(byShard[c.Shard]) == n {
			return byShard[c.Shard]
		}
	}
}

// pausing wraps the stores of one writer and holds it once at one point of
// its step, as a paused or slow invocation is held, until released. It
// also keeps the writer's first commit and first save, to send them again
// later, as a request delayed in the network lands after the SDK's retry
// went through.
type pausing struct {
	projections.Ballots
	projections.Cells
	at     string
	once   sync.Once
	paused chan struct{}
	resume chan struct{}

	saves     atomic.Int64
	firstSave chan struct{} // closed once the first save returned
	mu        sync.Mutex
	commit    func() error                  // the last commit applied, to send again
	saved     map[string]projections.Ballot // the last save tried per voter
}

// The points of a step a writer can be held at.
const (
	afterRead   = "after reading the cell"
	afterLoad   = "after loading the ballots"
	afterRedo   = "after completing the redo log, before its commit"
	afterCommit = "after its commit, before its saves"
	midSaves    = "between two of its saves"
)

func (p *pausing) hold() {
	p.once.Do(func() {
		close(p.paused)
		<-p.resume
	})
}

func (p *pausing) Read(ctx context.Context, cell domain.Cell) (projections.CellState, error) {
	st, err := p.Cells.Read(ctx, cell)
	if p.at == afterRead {
		p.hold()
	}
	return st, err
}

func (p *pausing) Load(ctx context.Context, titleID string, voterIDs []string) (map[string]projections.Ballot, error) {
	got, err := p.Ballots.Load(ctx, titleID, voterIDs)
	if p.at == afterLoad {
		p.hold()
	}
	return got, err
}

func (p *pausing) ReadAll(ctx context.Context, cells []domain.Cell) (map[domain.Cell]projections.CellState, error) {
	st, err := p.Cells.ReadAll(ctx, cells)
	if p.at == afterRead {
		p.hold()
	}
	return st, err
}

func (p *pausing) LoadAll(ctx context.Context, keys []projections.BallotKey) (map[projections.BallotKey]projections.Ballot, error) {
	got, err := p.Ballots.LoadAll(ctx, keys)
	if p.at == afterLoad {
		p.hold()
	}
	return got, err
}

func (p *pausing) Commit(ctx context.Context, cell domain.Cell, expect int64, redo projections.Redo, delta projections.Counts) error {
	if p.at == afterRedo {
		p.hold()
	}
	err := p.Cells.Commit(ctx, cell, expect, redo, delta)
	p.mu.Lock()
	if err == nil {
		p.commit = func() error { return p.Cells.Commit(context.Background(), cell, expect, redo, delta) }
	}
	p.mu.Unlock()
	if p.at == afterCommit {
		p.hold()
	}
	return err
}

func (p *pausing) Save(ctx context.Context, b projections.Ballot) error {
	n := p.saves.Add(1)
	if p.at == midSaves && n > 1 {
		<-p.firstSave
		p.hold()
	}
	err := p.Ballots.Save(ctx, b)
	p.mu.Lock()
	p.saved[b.VoterID] = b
	p.mu.Unlock()
	if n == 1 {
		close(p.firstSave)
	}
	return err
}

// TestOverlappingWriters: two writers on one cell, as AWS allows
// (DynamoDB Streams orders records per item, not per partition key;
// duplicate deliveries; two mappings during a replacement; a repair or a
// rebuild beside the live projector). Writer X is held at each point of its
// step in turn while writer Y runs whole steps on the cell, changing a
// ballot X changes too; then X resumes. Neither fails, nothing waits, and
// the tallies and ballots equal the fold. X's commit and its save of the
// ballot Y changed too, sent again once Y has moved the cell and the ballot
// on, are refused.
func TestOverlappingWriters(t *testing.T, newStores func(t *testing.T) (projections.Ballots, TallyCells)) {
	for _, at := range []string{afterRead, afterLoad, afterRedo, afterCommit, midSaves} {
		t.Run("X paused "+at, func(t *testing.T) {
			ctx := context.Background()
			ballots, cells := newStores(t)
			voters := SameCellVoters("t1", 3)
			before := projectiontest.Vote(voters[0], "t1", "s0", "story", "down", 1)
			if rep := projections.NewProjector(ballots, cells, 1).Project(ctx, []domain.VoteCast{before}); len(rep.Failed) > 0 {
				t.Fatal(rep.Failed)
			}
			// X changes u0's vote and casts u1's; Y then changes u0's vote
			// again (later), then casts u2's, so that the cell's redo log no
			// longer names u0: a step of X lost, doubled, computed from a
			// ballot read before Y's steps, or saved over Y's shows in the
			// counts or in u0's ballot.
			xEvents := []domain.VoteCast{
				projectiontest.Vote(voters[0], "t1", "s1", "story", "up", 2),
				projectiontest.Vote(voters[1], "t1", "s1", "story", "up", 3),
			}
			yEvents := [][]domain.VoteCast{
				{projectiontest.Vote(voters[0], "t1", "s3", "acting", "down", 5), projectiontest.Vote(voters[0], "t1", "s3", "story", "down", 5)},
				{projectiontest.Vote(voters[2], "t1", "s2", "story", "down", 4)},
			}
			px := &pausing{Ballots: ballots, Cells: cells, at: at, paused: make(chan struct{}), resume: make(chan struct{}), firstSave: make(chan struct{}), saved: map[string]projections.Ballot{}}
			x := projections.NewProjector(px, px, 1)
			y := projections.NewProjector(ballots, cells, 1)

			xDone := make(chan projections.Report)
			go func() { xDone <- x.Project(ctx, xEvents) }()
			<-px.paused
			recovered := 0
			for _, batch := range yEvents {
				rep := y.Project(ctx, batch)
				if len(rep.Failed) > 0 {
					t.Fatalf("writer Y while X is held: %v", rep.Failed)
				}
				recovered += rep.Recovered
			}
			// Y saves what X committed and did not save yet, and nothing else.
			wantRecovered := map[string]int{afterCommit: 2, midSaves: 1}[at]
			if recovered != wantRecovered {
				t.Errorf("Y saved %d ballots of X's committed step, want %d", recovered, wantRecovered)
			}
			close(px.resume)
			if rep := <-xDone; len(rep.Failed) > 0 {
				t.Fatalf("writer X after it resumed: %v; a writer held while another moved on must carry on", rep.Failed)
			}

			all := append([]domain.VoteCast{before}, xEvents...)
			for _, batch := range yEvents {
				all = append(all, batch...)
			}
			checkFold(t, ballots, cells, all, voters)

			// X's last commit and its save of u0, landing once more now.
			// The commit is refused unless the cell still holds it (then it
			// is taken for the retried call it is, and changes nothing).
			wantCommit := map[string]error{afterCommit: projections.ErrCellMoved, midSaves: projections.ErrCellMoved}[at]
			if err := px.commit(); !errors.Is(err, wantCommit) {
				t.Errorf("X's commit sent again: %v, want %v", err, wantCommit)
			}
			// It is refused, unless it is the ballot stored (X's step came
			// last, and u0's older vote joined the ballot's past votes then):
			// a retried save, which changes nothing.
			if b, ok := px.saved[voters[0]]; ok {
				err := ballots.Save(ctx, b)
				stored, _ := ballots.Load(ctx, "t1", []string{voters[0]})
				if (err == nil && !stored[voters[0]].Same(b)) || (err != nil && !errors.Is(err, projections.ErrStale)) {
					t.Errorf("X's save of u0 at version %d sent again after Y moved it on: %v, with version %d stored; want ErrStale, or nil for the ballot stored", b.Version, err, stored[voters[0]].Version)
				}
				if (at == afterCommit || at == midSaves) && !errors.Is(err, projections.ErrStale) {
					t.Errorf("X's save of u0 at version %d, of a step Y went past, sent again: %v, want ErrStale", b.Version, err)
				}
			} else if at == afterCommit || at == midSaves {
				t.Errorf("X committed a change of u0's ballot and never tried to save it")
			}
			checkFold(t, ballots, cells, all, voters)
		})
	}
}

// checkFold holds the title's tally and its voters' ballots to the fold.
func checkFold(t *testing.T, ballots projections.Ballots, cells TallyCells, events []domain.VoteCast, voters []string) {
	t.Helper()
	ctx := context.Background()
	want := projections.Fold(events)["t1"]
	got, err := cells.Tally(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("tally %v, fold %v: %v", got, want, got.Diff(want))
	}
	stored, err := ballots.Load(ctx, "t1", voters)
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range FoldBallots(events) {
		b := stored[k[1]]
		b.Version = 0
		if !b.Same(w) {
			t.Errorf("ballot of %s: %v, the fold's %v", k[1], b.Aspects, w.Aspects)
		}
	}
}
