package projections

import (
	"maps"
	"slices"

	"votes/domain"
)

// Current is the vote a ballot holds for one aspect.
type Current struct {
	Choice     string
	RecordedAt int64
	VoteID     string
}

func (c Current) event() domain.VoteCast {
	return domain.VoteCast{VoteID: c.VoteID, RecordedAt: c.RecordedAt}
}

// Ballot is one voter's current votes on one title, and the votes before
// them. Version counts the ballot's writes and guards them: each version is
// the target of exactly one committed projection step (see Projector).
type Ballot struct {
	VoterID string
	TitleID string
	Aspects map[string]Current
	// Past holds, per aspect, the votes before the current one, newest
	// first: at most PastVotes. The trends and the tallies as of a past
	// moment need them, when a vote arrives after a newer one (AWS
	// delivers a stream's records in order per item only, and retries).
	Past    map[string][]Current
	Version int64
}

// PastVotes bounds the votes a ballot keeps per aspect besides the current
// one. Trends are exact for a voter's 16 latest votes on an aspect of a
// title: a vote older than all of those, arriving after them, is counted in
// neither trend nor tally (it would not change the current tally anyway).
const PastVotes = 15

// Same reports whether b and o are the same write: every field equal, an
// empty map equal to none. A store that cannot tell whether a conditional
// write was applied reads the ballot back and compares it with Same.
func (b Ballot) Same(o Ballot) bool {
	return b.VoterID == o.VoterID && b.TitleID == o.TitleID && b.Version == o.Version && maps.Equal(b.Aspects, o.Aspects) &&
		maps.EqualFunc(nonEmpty(b.Past), nonEmpty(o.Past), func(x, y []Current) bool { return slices.Equal(x, y) })
}

func nonEmpty(m map[string][]Current) map[string][]Current {
	out := make(map[string][]Current, len(m))
	for k, v := range m {
		if len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

// NewBallot is an empty ballot.
func NewBallot(voterID, titleID string) Ballot {
	return Ballot{VoterID: voterID, TitleID: titleID, Aspects: map[string]Current{}}
}

// Move is what one vote did to a ballot, for the tallies and the trends:
// from At on, the aspect's choice is Choice instead of Prev ("" for no
// vote), until Until (the receive time of the next vote of the aspect), or
// for good when Until is 0: then the vote is the aspect's current one.
type Move struct {
	Aspect, Choice, Prev string
	At, Until            int64
}

// Apply folds one event into the ballot: it becomes the aspect's current
// vote if it is newer than the one held, or takes its place among the past
// votes. It reports whether the ballot changed. Applying an event twice
// changes nothing.
func (b *Ballot) Apply(e domain.VoteCast) bool {
	_, ok := b.put(e.Aspect, Current{Choice: e.Choice, RecordedAt: e.RecordedAt, VoteID: e.VoteID})
	return ok
}

// put places c among the aspect's votes by (receive time, vote ID), and
// says what that moved. It changes nothing for a vote held already, or
// for one older than every vote kept when PastVotes are kept.
func (b *Ballot) put(aspect string, c Current) (Move, bool) {
	if b.Aspects == nil {
		b.Aspects = map[string]Current{}
	}
	cur, ok := b.Aspects[aspect]
	if !ok {
		b.Aspects[aspect] = c
		return Move{Aspect: aspect, Choice: c.Choice, At: c.RecordedAt}, true
	}
	if c.VoteID == cur.VoteID {
		return Move{}, false // held already
	}
	if c.event().After(cur.event()) {
		b.Aspects[aspect] = c
		b.keep(aspect, append([]Current{cur}, b.Past[aspect]...))
		return Move{Aspect: aspect, Choice: c.Choice, Prev: cur.Choice, At: c.RecordedAt}, true
	}
	// Older than the current vote: find its place among the past ones,
	// newest first. next is the vote just after it.
	past := b.Past[aspect]
	next := cur
	i := 0
	for ; i < len(past); i++ {
		if past[i].VoteID == c.VoteID {
			return Move{}, false // held already
		}
		if c.event().After(past[i].event()) {
			break
		}
		next = past[i]
	}
	if i == len(past) && len(past) >= PastVotes {
		return Move{}, false // beyond what is kept
	}
	prev := ""
	if i < len(past) {
		prev = past[i].Choice
	}
	b.keep(aspect, slices.Insert(slices.Clone(past), i, c))
	return Move{Aspect: aspect, Choice: c.Choice, Prev: prev, At: c.RecordedAt, Until: next.RecordedAt}, true
}

// keep makes past the aspect's past votes, the newest PastVotes of them.
func (b *Ballot) keep(aspect string, past []Current) {
	if b.Past == nil {
		b.Past = map[string][]Current{}
	}
	b.Past[aspect] = past[:min(len(past), PastVotes)]
}

func (b Ballot) clone() Ballot {
	b.Aspects = maps.Clone(b.Aspects)
	if b.Aspects == nil {
		b.Aspects = map[string]Current{}
	}
	if b.Past != nil {
		past := make(map[string][]Current, len(b.Past))
		for a, v := range b.Past {
			past[a] = slices.Clone(v)
		}
		b.Past = past
	}
	return b
}
