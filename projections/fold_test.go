package projections_test

import (
	"context"
	"testing"

	"pgregory.net/rapid"

	"votes/domain"
	"votes/projections"
	"votes/projections/memstore"
	"votes/projections/projectiontest"
)

// TestIncrementalFoldMatchesFold checks the projector's arithmetic, with
// no faults: events delivered batch by batch (shuffled, repeated) through
// Projector.Project into the in-memory stores, once ballot by ballot (the
// live path: load, fold, save) and once with bulk creation (the rebuild's
// path: create from the events, fold those that exist), end with every
// title's tally and every ballot where the pure fold does.
func TestIncrementalFoldMatchesFold(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		events := projectiontest.Events(t, space)
		batches := projectiontest.Delivery(t, events)
		want := projections.Fold(events)
		winners := map[[3]string]string{} // voter, title, aspect -> choice
		for _, title := range space.Titles {
			for _, voter := range space.Voters {
				one := projections.Fold(filter(events, voter, title))
				for aspect, m := range one[title] {
					for choice, n := range m {
						if n > 0 {
							winners[[3]string{voter, title, aspect}] = choice
						}
					}
				}
			}
		}
		for _, bulk := range []bool{false, true} {
			ballots, cells := memstore.NewBallots(), memstore.NewCells()
			p := projections.NewProjectorWith(ballots, cells, projections.Options{Concurrency: 2, Owner: "stream", Bulk: bulk})
			for _, batch := range batches {
				if rep := p.Project(context.Background(), batch); len(rep.Failed) > 0 {
					t.Fatalf("bulk %v: cells failed without faults: %v", bulk, rep.Failed)
				}
			}
			for _, title := range space.Titles {
				got, _ := cells.Tally(context.Background(), title)
				if !got.Equal(want[title]) {
					t.Fatalf("bulk %v: %s: projected %v, fold %v", bulk, title, got.Compact(), want[title])
				}
				stored, err := ballots.Load(context.Background(), title, space.Voters)
				if err != nil {
					t.Fatal(err)
				}
				for _, voter := range space.Voters {
					for _, aspect := range space.Aspects {
						k := [3]string{voter, title, aspect}
						if got := stored[voter].Aspects[aspect].Choice; got != winners[k] {
							t.Fatalf("bulk %v: %s's ballot on %s holds %q for %s, the fold %q", bulk, voter, title, got, aspect, winners[k])
						}
					}
				}
			}
		}
	})
}

func filter(events []domain.VoteCast, voter, title string) []domain.VoteCast {
	var out []domain.VoteCast
	for _, e := range events {
		if e.VoterID == voter && e.TitleID == title {
			out = append(out, e)
		}
	}
	return out
}
