package dynamo_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"votes/domain"
	"votes/projections"
	"votes/projections/projectiontest"
)

// pausing wraps the real stores of one writer and holds it at one point of
// its step until released, as a paused or slow invocation is held: before
// its first ballot save, before its commit, or with a Begin that DynamoDB
// applied landing once more later (a request delayed in the network while
// the SDK's retry went through).
type pausing struct {
	projections.Ballots
	projections.Cells
	at       string // "save", "commit", "late-begin" or "lost-create"
	once     sync.Once
	paused   chan struct{}
	resume   chan struct{}
	lateStep chan projections.Step
}

func newPausing(ballots projections.Ballots, cells projections.Cells, at string) *pausing {
	return &pausing{Ballots: ballots, Cells: cells, at: at, paused: make(chan struct{}), resume: make(chan struct{}), lateStep: make(chan projections.Step, 1)}
}

func (p *pausing) hold() {
	p.once.Do(func() {
		close(p.paused)
		<-p.resume
	})
}

func (p *pausing) Save(ctx context.Context, b projections.Ballot) error {
	if p.at == "save" {
		p.hold()
	}
	return p.Ballots.Save(ctx, b)
}

// Create, at "lost-create", applies the creation and then answers as a
// retry whose first try had been applied does: every ballot exists. The
// writer then pauses before it reads them.
func (p *pausing) Create(ctx context.Context, bs []projections.Ballot) ([]int, error) {
	existing, err := p.Ballots.Create(ctx, bs)
	if p.at != "lost-create" || err != nil {
		return existing, err
	}
	all := make([]int, len(bs))
	for i := range bs {
		all[i] = i
	}
	return all, nil
}

func (p *pausing) Load(ctx context.Context, titleID string, voterIDs []string) (map[string]projections.Ballot, error) {
	if p.at == "lost-create" {
		p.hold()
	}
	return p.Ballots.Load(ctx, titleID, voterIDs)
}

func (p *pausing) Begin(ctx context.Context, cell domain.Cell, step projections.Step) (*projections.Step, error) {
	in, err := p.Cells.Begin(ctx, cell, step)
	if p.at == "late-begin" && err == nil && in == nil {
		select {
		case p.lateStep <- step: // the copy of this call that lands later
		default:
		}
	}
	return in, err
}

func (p *pausing) Commit(ctx context.Context, cell domain.Cell, stepID string, delta projections.Counts) error {
	if p.at == "commit" || p.at == "late-begin" || p.at == "recovery-commit" {
		p.hold()
	}
	return p.Cells.Commit(ctx, cell, stepID, delta)
}

// sameCellVoters finds n voters whose ballots on title share one cell.
func sameCellVoters(title string, n int) []string {
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

// TestOverlappingStreamInvocationsOnOneCell: two live stream invocations
// work on one cell at once, which AWS allows (DynamoDB Streams orders
// records per item, not per partition key; duplicate deliveries; two
// mappings during a replacement). Writer X is paused mid-step; writer Y
// finds X's step in flight, takes it over and projects its own vote; then X
// resumes. Whatever X reports failed is delivered again, as Lambda does.
// The tallies must equal the fold: no vote of X's lost, none counted twice.
func TestOverlappingStreamInvocationsOnOneCell(t *testing.T) {
	for _, at := range []string{"save", "commit", "late-begin"} {
		t.Run("X paused at "+at, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, nil)
			voters := sameCellVoters("t1", 3)
			// u0 voted before: X changes that vote, so a lost or doubled
			// step shows in both choices.
			seed := projections.NewProjector(f.ballots, f.cells, 1)
			before := projectiontest.Vote(voters[0], "t1", "s0", "story", "down", 1)
			if rep := seed.Project(ctx, []domain.VoteCast{before}); len(rep.Failed) > 0 {
				t.Fatal(rep.Failed)
			}
			xEvents := []domain.VoteCast{projectiontest.Vote(voters[0], "t1", "s1", "story", "up", 2)}
			yEvents := []domain.VoteCast{projectiontest.Vote(voters[1], "t1", "s2", "story", "up", 3), projectiontest.Vote(voters[2], "t1", "s3", "story", "down", 4)}

			px := newPausing(f.ballots, f.cells, at)
			x := projections.NewProjectorWith(px, px, projections.StreamOptions(1))
			y := projections.NewProjector(f.ballots, f.cells, 1)

			xDone := make(chan projections.Report)
			go func() { xDone <- x.Project(ctx, xEvents) }()
			<-px.paused
			if rep := y.Project(ctx, yEvents); len(rep.Failed) > 0 || rep.Recovered != 1 {
				t.Fatalf("writer Y: %+v; want its cell projected after taking X's step over", rep)
			}
			if at == "late-begin" {
				// X's Begin lands once more after Y finished X's step.
				step := <-px.lateStep
				if in, err := f.cells.Begin(ctx, domain.CellOf("t1", voters[0]), step); err == nil && in == nil {
					t.Errorf("a late copy of X's Begin put finished step %s back in flight", step.ID)
				}
			}
			close(px.resume)
			rep := <-xDone
			for attempt := 0; len(rep.Failed) > 0; attempt++ {
				if attempt > 5 {
					t.Fatalf("X's events still failing: %v", rep.Failed)
				}
				rep = x.Project(ctx, failedEvents(xEvents, rep))
			}

			want := projections.Fold(append(append([]domain.VoteCast{before}, xEvents...), yEvents...))["t1"]
			got, err := f.cells.Tally(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Fatalf("tally %v, fold %v: %v", got, want, got.Diff(want))
			}
		})
	}
}

// TestRebuildStepTakenOverAfterALostCreate: a rebuild creates a ballot and
// loses the answer, so it reads the ballot back; meanwhile its lease runs
// out and a stream writer takes the step over, seals the ballot and counts
// it, and is slow to commit. The rebuild must not commit the step without
// that ballot ahead of it: the vote would be counted by nobody.
func TestRebuildStepTakenOverAfterALostCreate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	voters := sameCellVoters("t1", 2)
	xEvents := []domain.VoteCast{projectiontest.Vote(voters[0], "t1", "s1", "story", "up", 1)}
	yEvents := []domain.VoteCast{projectiontest.Vote(voters[1], "t1", "s2", "story", "down", 2)}

	px := newPausing(f.ballots, f.cells, "lost-create")
	x := projections.NewProjectorWith(px, px, projections.Options{Owner: "rebuild", Lease: time.Millisecond, MaxWait: time.Second, Bulk: true})
	py := newPausing(f.ballots, f.cells, "recovery-commit")
	y := projections.NewProjectorWith(py, py, projections.StreamOptions(1))

	xDone := make(chan projections.Report)
	go func() { xDone <- x.Project(ctx, xEvents) }()
	<-px.paused
	time.Sleep(5 * time.Millisecond) // the rebuild's lease runs out
	yDone := make(chan projections.Report)
	go func() { yDone <- y.Project(ctx, yEvents) }()
	<-py.paused // Y has sealed X's ballot and is about to commit X's step
	close(px.resume)
	xRep := <-xDone
	close(py.resume)
	if rep := <-yDone; len(rep.Failed) > 0 {
		t.Fatalf("stream writer: %v", rep.Failed)
	}
	for attempt := 0; len(xRep.Failed) > 0; attempt++ {
		if attempt > 5 {
			t.Fatalf("rebuild still failing: %v", xRep.Failed)
		}
		xRep = x.Project(ctx, failedEvents(xEvents, xRep))
	}
	want := projections.Fold(append(xEvents, yEvents...))["t1"]
	got, err := f.cells.Tally(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("tally %v, fold %v: %v", got, want, got.Diff(want))
	}
}
