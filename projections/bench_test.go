package projections

import (
	"fmt"
	"testing"

	"votes/domain"
	"votes/projections/projectiontest"
)

func benchEvents(n int) []domain.VoteCast {
	events := make([]domain.VoteCast, n)
	aspects := []string{"overall", "story", "acting", "visuals", "soundtrack"}
	for i := range events {
		events[i] = projectiontest.Vote(fmt.Sprintf("u%d", i%(n/2+1)), fmt.Sprintf("t%d", i%20), fmt.Sprint(i), aspects[i%5], []string{"up", "down"}[i%2], int64(i+1))
	}
	return events
}

// BenchmarkFold is the pure fold of 10,000 events, per event.
func BenchmarkFold(b *testing.B) {
	events := benchEvents(10000)
	b.ReportAllocs()
	for b.Loop() {
		_ = Fold(events)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// BenchmarkBallotApply folds one event into a ballot and takes its redo
// entry and count delta, the projector's work per event besides I/O.
func BenchmarkBallotApply(b *testing.B) {
	events := benchEvents(1000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := events[i%len(events)]
		e.VoterID, e.TitleID = "u1", "t1"
		ballots := map[string]Ballot{"u1": NewBallot("u1", "t1")}
		_, _, _ = fold([]string{"u1"}, map[string][]domain.VoteCast{"u1": {e}}, ballots)
		i++
	}
}
