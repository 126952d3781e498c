// Package projectiontest draws vote events and at-least-once deliveries
// of them for property tests of the projection, in and out of the
// projections package.
package projectiontest

import (
	"fmt"
	"slices"
	"time"

	"pgregory.net/rapid"

	"votes/domain"
)

// Vote makes a valid event: voter votes choice on aspect of title in
// submission sub, received at nanosecond at.
func Vote(voter, title, sub, aspect, choice string, at int64) domain.VoteCast {
	s := domain.Submission{VoterID: voter, TitleID: title, Votes: []domain.Choice{{Aspect: aspect, Choice: choice}}}
	return s.Accept(sub, time.Unix(0, at)).Events()[0]
}

// Space bounds the events drawn: few voters, titles, aspects, submissions
// and receive times, so that ballots collide and times tie. Receive times
// are 1 to Times, in units of Step (nanoseconds; 0 for 1) after Start.
type Space struct {
	Voters, Titles, Aspects []string
	MaxEvents, Submissions  int
	Times                   int
	Start, Step             int64
}

// Events draws up to MaxEvents votes from the space. One vote ID carries one
// vote: a draw that reuses an ID with other content or another receive
// time is dropped.
func Events(t *rapid.T, sp Space) []domain.VoteCast {
	n := rapid.IntRange(1, sp.MaxEvents).Draw(t, "events")
	seen := map[string]domain.VoteCast{}
	var out []domain.VoteCast
	for range n {
		e := Vote(
			rapid.SampledFrom(sp.Voters).Draw(t, "voter"),
			rapid.SampledFrom(sp.Titles).Draw(t, "title"),
			fmt.Sprintf("s%d", rapid.IntRange(0, sp.Submissions-1).Draw(t, "submission")),
			rapid.SampledFrom(sp.Aspects).Draw(t, "aspect"),
			rapid.SampledFrom([]string{"up", "down"}).Draw(t, "choice"),
			sp.Start+int64(rapid.IntRange(1, sp.Times).Draw(t, "at"))*max(sp.Step, 1),
		)
		// The event table holds one event per vote ID, received once.
		if prev, ok := seen[e.VoteID]; ok && (!prev.SameVote(e) || prev.RecordedAt != e.RecordedAt) {
			continue
		}
		seen[e.VoteID] = e
		out = append(out, e)
	}
	return out
}

// Delivery redelivers events as at-least-once transports do: shuffled,
// some repeated, in batches of random sizes.
func Delivery(t *rapid.T, events []domain.VoteCast) [][]domain.VoteCast {
	stream := slices.Clone(events)
	for range rapid.IntRange(0, len(events)).Draw(t, "repeats") {
		stream = append(stream, events[rapid.IntRange(0, len(events)-1).Draw(t, "repeat")])
	}
	stream = rapid.Permutation(stream).Draw(t, "order")
	var batches [][]domain.VoteCast
	for len(stream) > 0 {
		n := rapid.IntRange(1, len(stream)).Draw(t, "batch")
		batches = append(batches, stream[:n])
		stream = stream[n:]
	}
	return batches
}
