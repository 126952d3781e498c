package projections

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"votes/domain"
)

// vote makes a valid event: voter votes choice on aspect of title in
// submission sub, received at nanosecond at.
func vote(voter, title, sub, aspect, choice string, at int64) domain.VoteCast {
	s := domain.Submission{VoterID: voter, TitleID: title, Votes: []domain.Choice{{Aspect: aspect, Choice: choice}}}
	return s.Accept(sub, time.Unix(0, at)).Events()[0]
}

func TestBallotApply(t *testing.T) {
	first := vote("u1", "t1", "s1", "story", "up", 100)
	later := vote("u1", "t1", "s2", "story", "down", 200)
	sameTimeLow, sameTimeHigh := vote("u1", "t1", "a", "story", "up", 300), vote("u1", "t1", "b", "story", "down", 300)
	if sameTimeLow.VoteID > sameTimeHigh.VoteID {
		sameTimeLow, sameTimeHigh = sameTimeHigh, sameTimeLow
	}
	tests := []struct {
		name    string
		events  []domain.VoteCast
		want    string // the story choice the ballot ends with
		changes int    // how many Apply calls changed the ballot
	}{
		{"first vote counts", []domain.VoteCast{first}, "up", 1},
		{"a later vote replaces", []domain.VoteCast{first, later}, "down", 2},
		{"an older vote arriving later changes nothing", []domain.VoteCast{later, first}, "down", 1},
		{"a duplicate changes nothing", []domain.VoteCast{first, first}, "up", 1},
		{"a tie goes to the greater vote ID", []domain.VoteCast{sameTimeHigh, sameTimeLow}, sameTimeHigh.Choice, 1},
		{"a tie, other order", []domain.VoteCast{sameTimeLow, sameTimeHigh}, sameTimeHigh.Choice, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBallot("u1", "t1")
			changes := 0
			for _, e := range tt.events {
				if b.Apply(e) {
					changes++
				}
			}
			if got := b.Aspects["story"].Choice; got != tt.want || changes != tt.changes {
				t.Errorf("ballot holds %q after %d changes, want %q after %d", got, changes, tt.want, tt.changes)
			}
		})
	}
}

func TestFold(t *testing.T) {
	events := []domain.VoteCast{
		vote("u1", "t1", "s1", "story", "up", 1),
		vote("u1", "t1", "s2", "story", "down", 2), // u1 changes their mind
		vote("u2", "t1", "s3", "story", "up", 1),
		vote("u2", "t1", "s3", "acting", "down", 1),
		vote("u1", "t2", "s4", "story", "up", 1),
	}
	got := Fold(append(slices.Clone(events), events[0], events[3]))
	want := map[string]Counts{
		"t1": {"story": {"up": 1, "down": 1}, "acting": {"down": 1}},
		"t2": {"story": {"up": 1}},
	}
	if len(got) != len(want) {
		t.Fatalf("Fold gave %d titles, want %d", len(got), len(want))
	}
	for title, c := range want {
		if !got[title].Equal(c) {
			t.Errorf("%s: got %v, want %v", title, got[title], c)
		}
	}
}

// genEvents draws a small set of votes with many collisions: few voters,
// titles and aspects, and receive times that tie.
func genEvents(t *rapid.T) []domain.VoteCast {
	n := rapid.IntRange(1, 40).Draw(t, "events")
	out := make([]domain.VoteCast, n)
	for i := range out {
		out[i] = vote(
			rapid.SampledFrom([]string{"u1", "u2", "u3", "u4"}).Draw(t, "voter"),
			rapid.SampledFrom([]string{"t1", "t2"}).Draw(t, "title"),
			fmt.Sprintf("s%d", rapid.IntRange(0, 9).Draw(t, "submission")),
			rapid.SampledFrom([]string{"story", "acting"}).Draw(t, "aspect"),
			rapid.SampledFrom([]string{"up", "down"}).Draw(t, "choice"),
			int64(rapid.IntRange(1, 6).Draw(t, "at")),
		)
	}
	// One vote ID carries one vote: drop draws that reuse an ID with other content.
	seen := map[string]domain.VoteCast{}
	kept := out[:0]
	for _, e := range out {
		if prev, ok := seen[e.VoteID]; ok && !prev.SameVote(e) {
			continue
		}
		seen[e.VoteID] = e
		kept = append(kept, e)
	}
	return kept
}

// genDelivery redelivers events as at-least-once transports do: shuffled,
// some repeated, in batches of random sizes.
func genDelivery(t *rapid.T, events []domain.VoteCast) [][]domain.VoteCast {
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

// TestIncrementalFoldMatchesFold checks the projector's arithmetic without
// stores: ballots folded batch by batch, each changed ballot moving the
// counts by its step delta, end where the pure fold does.
func TestIncrementalFoldMatchesFold(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		events := genEvents(t)
		ballots := map[[2]string]Ballot{}
		counts := map[string]Counts{}
		for _, batch := range genDelivery(t, events) {
			for _, e := range batch {
				k := [2]string{e.VoterID, e.TitleID}
				b, ok := ballots[k]
				if !ok {
					b = NewBallot(e.VoterID, e.TitleID)
				}
				before := b.choices()
				if !b.Apply(e) {
					continue
				}
				b.Prev = map[string]string{e.Aspect: before[e.Aspect]}
				if counts[e.TitleID] == nil {
					counts[e.TitleID] = Counts{}
				}
				counts[e.TitleID].Merge(b.stepDelta())
				ballots[k] = b
			}
		}
		want := Fold(events)
		for title, c := range want {
			if !counts[title].Equal(c) {
				t.Fatalf("%s: incremental %v, fold %v", title, counts[title].Compact(), c)
			}
		}
		for title, c := range counts {
			if _, ok := want[title]; !ok && len(c.Compact()) > 0 {
				t.Fatalf("%s: incremental %v, fold has nothing", title, c.Compact())
			}
		}
	})
}

func TestCountsDiff(t *testing.T) {
	a := Counts{"story": {"up": 2, "down": 1}}
	b := Counts{"story": {"up": 2}, "acting": {"up": 1}}
	got := a.Diff(b)
	want := []Difference{{Aspect: "acting", Choice: "up", Got: 0, Want: 1}, {Aspect: "story", Choice: "down", Got: 1, Want: 0}}
	if !slices.Equal(got, want) {
		t.Errorf("Diff = %v, want %v", got, want)
	}
	if a.Equal(b) || !a.Equal(Counts{"story": {"up": 2, "down": 1, "x": 0}}) {
		t.Error("Equal must ignore zeros and only zeros")
	}
}
