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
// Projector.Project into the in-memory stores, one cell at a time and four
// at once, end with every title's tally and every ballot where the pure
// fold does.
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
		for _, concurrency := range []int{1, 4} {
			ballots, cells := memstore.NewBallots(), memstore.NewCells()
			p := projections.NewProjector(ballots, cells, concurrency)
			for _, batch := range batches {
				if rep := p.Project(context.Background(), batch); len(rep.Failed) > 0 {
					t.Fatalf("concurrency %d: cells failed without faults: %v", concurrency, rep.Failed)
				}
			}
			for _, title := range space.Titles {
				got, _ := cells.Tally(context.Background(), title)
				if !got.Equal(want[title]) {
					t.Fatalf("concurrency %d: %s: projected %v, fold %v", concurrency, title, got.Compact(), want[title])
				}
				stored, err := ballots.Load(context.Background(), title, space.Voters)
				if err != nil {
					t.Fatal(err)
				}
				for _, voter := range space.Voters {
					for _, aspect := range space.Aspects {
						k := [3]string{voter, title, aspect}
						if got := stored[voter].Aspects[aspect].Choice; got != winners[k] {
							t.Fatalf("concurrency %d: %s's ballot on %s holds %q for %s, the fold %q", concurrency, voter, title, got, aspect, winners[k])
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
