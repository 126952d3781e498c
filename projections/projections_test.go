package projections

import (
	"fmt"
	"slices"
	"testing"

	"votes/domain"
	"votes/projections/projectiontest"
)

func TestBallotApply(t *testing.T) {
	first := projectiontest.Vote("u1", "t1", "s1", "story", "up", 100)
	later := projectiontest.Vote("u1", "t1", "s2", "story", "down", 200)
	sameTimeLow, sameTimeHigh := projectiontest.Vote("u1", "t1", "a", "story", "up", 300), projectiontest.Vote("u1", "t1", "b", "story", "down", 300)
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
		{"an older vote arriving later keeps the current one (it joins the past votes)", []domain.VoteCast{later, first}, "down", 2},
		{"a duplicate changes nothing", []domain.VoteCast{first, first}, "up", 1},
		{"a tie goes to the greater vote ID", []domain.VoteCast{sameTimeHigh, sameTimeLow}, sameTimeHigh.Choice, 2},
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

// TestBallotKeepsPastVotes: a ballot keeps the votes before the current
// one, newest first, whatever order they arrive in, up to PastVotes; each
// vote says what it moved (the choice it replaced, and until when).
func TestBallotKeepsPastVotes(t *testing.T) {
	vote := func(sub, choice string, at int64) domain.VoteCast {
		return projectiontest.Vote("u1", "t1", sub, "story", choice, at)
	}
	b := NewBallot("u1", "t1")
	for _, e := range []domain.VoteCast{vote("s3", "up", 300), vote("s1", "up", 100)} {
		b.Apply(e)
	}
	m, ok := b.put("story", Current{Choice: "down", RecordedAt: 200, VoteID: vote("s2", "down", 200).VoteID})
	if want := (Move{Aspect: "story", Choice: "down", Prev: "up", At: 200, Until: 300}); !ok || m != want {
		t.Errorf("a vote between two others moved %+v, want %+v", m, want)
	}
	var times []int64
	for _, c := range b.Past["story"] {
		times = append(times, c.RecordedAt)
	}
	if cur := b.Aspects["story"]; cur.RecordedAt != 300 || !slices.Equal(times, []int64{200, 100}) {
		t.Errorf("current vote at %d, past at %v; want 300 and [200 100]", cur.RecordedAt, times)
	}
	for i := range PastVotes + 5 {
		b.Apply(vote(fmt.Sprintf("n%d", i), "up", int64(1000+i)))
	}
	if n := len(b.Past["story"]); n != PastVotes {
		t.Errorf("%d past votes kept, want %d", n, PastVotes)
	}
	if b.Apply(vote("s0", "down", 50)) {
		t.Error("a vote older than every vote kept, with PastVotes kept, changed the ballot")
	}
}

func TestFold(t *testing.T) {
	events := []domain.VoteCast{
		projectiontest.Vote("u1", "t1", "s1", "story", "up", 1),
		projectiontest.Vote("u1", "t1", "s2", "story", "down", 2), // u1 changes their mind
		projectiontest.Vote("u2", "t1", "s3", "story", "up", 1),
		projectiontest.Vote("u2", "t1", "s3", "acting", "down", 1),
		projectiontest.Vote("u1", "t2", "s4", "story", "up", 1),
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
