package projections

import (
	"maps"

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

// Ballot is one voter's current votes on one title. Version counts the
// ballot's writes and guards them: each version is the target of exactly
// one committed projection step (see Projector).
type Ballot struct {
	VoterID string
	TitleID string
	Aspects map[string]Current
	Version int64
}

// Same reports whether b and o are the same write: every field equal, an
// empty map equal to none. A store that cannot tell whether a conditional
// write was applied reads the ballot back and compares it with Same.
func (b Ballot) Same(o Ballot) bool {
	return b.VoterID == o.VoterID && b.TitleID == o.TitleID && b.Version == o.Version && maps.Equal(b.Aspects, o.Aspects)
}

// NewBallot is an empty ballot.
func NewBallot(voterID, titleID string) Ballot {
	return Ballot{VoterID: voterID, TitleID: titleID, Aspects: map[string]Current{}}
}

// Apply folds one event into the ballot: it wins if it is newer than the
// aspect's current vote. It reports whether the ballot changed. Applying an
// event twice, or an older one after a newer, changes nothing.
func (b *Ballot) Apply(e domain.VoteCast) bool {
	return b.put(e.Aspect, Current{Choice: e.Choice, RecordedAt: e.RecordedAt, VoteID: e.VoteID})
}

// put makes c the aspect's vote if it is newer than the one held, and
// reports whether it was.
func (b *Ballot) put(aspect string, c Current) bool {
	cur, ok := b.Aspects[aspect]
	if ok && !c.event().After(cur.event()) {
		return false
	}
	if b.Aspects == nil {
		b.Aspects = map[string]Current{}
	}
	b.Aspects[aspect] = c
	return true
}

func (b Ballot) clone() Ballot {
	b.Aspects = maps.Clone(b.Aspects)
	if b.Aspects == nil {
		b.Aspects = map[string]Current{}
	}
	return b
}

// addTo adds n times what the ballot counts for to c.
func (b Ballot) addTo(c Counts, n int64) {
	for a, cur := range b.Aspects {
		c.Add(a, cur.Choice, n)
	}
}
