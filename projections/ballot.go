package projections

import "votes/domain"

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
// ballot's writes and guards them. Step names the projection step that last
// changed it and Prev what its aspects held before that step, so that a
// step which crashed after writing the ballot can still be counted.
type Ballot struct {
	VoterID string
	TitleID string
	Aspects map[string]Current
	Version int64
	Step    string
	Prev    map[string]string // aspect -> choice before Step, "" for none
	// Fences name steps whose owners may no longer save this ballot:
	// recoveries took those steps over.
	Fences []string
}

// Same reports whether b and o are the same write: every field equal, with
// fences compared as a set and an empty map equal to none. A store that
// cannot tell whether a conditional write was applied reads the ballot back
// and compares it with Same: the same version and step alone are not
// enough, since two seals of one ballot for different steps share both.
func (b Ballot) Same(o Ballot) bool {
	if b.VoterID != o.VoterID || b.TitleID != o.TitleID || b.Version != o.Version || b.Step != o.Step ||
		len(b.Aspects) != len(o.Aspects) || len(b.Prev) != len(o.Prev) {
		return false
	}
	for a, c := range b.Aspects {
		if oc, ok := o.Aspects[a]; !ok || oc != c {
			return false
		}
	}
	for a, p := range b.Prev {
		if op, ok := o.Prev[a]; !ok || op != p {
			return false
		}
	}
	fences := map[string]bool{}
	for _, f := range b.Fences {
		fences[f] = true
	}
	other := map[string]bool{}
	for _, f := range o.Fences {
		if !fences[f] {
			return false
		}
		other[f] = true
	}
	return len(other) == len(fences)
}

// NewBallot is an empty ballot.
func NewBallot(voterID, titleID string) Ballot {
	return Ballot{VoterID: voterID, TitleID: titleID, Aspects: map[string]Current{}}
}

// Apply folds one event into the ballot: it wins if it is newer than the
// aspect's current vote. It reports whether the ballot changed. Applying an
// event twice, or an older one after a newer, changes nothing.
func (b *Ballot) Apply(e domain.VoteCast) bool {
	cur, ok := b.Aspects[e.Aspect]
	if ok && !e.After(cur.event()) {
		return false
	}
	if b.Aspects == nil {
		b.Aspects = map[string]Current{}
	}
	b.Aspects[e.Aspect] = Current{Choice: e.Choice, RecordedAt: e.RecordedAt, VoteID: e.VoteID}
	return true
}

// choices is what the ballot counts for: aspect -> choice.
func (b Ballot) choices() map[string]string {
	out := make(map[string]string, len(b.Aspects))
	for a, c := range b.Aspects {
		out[a] = c.Choice
	}
	return out
}

// stepDelta is what the ballot's last step changed in the tally.
func (b Ballot) stepDelta() Counts {
	d := Counts{}
	for aspect, prev := range b.Prev {
		if prev != "" {
			d.Add(aspect, prev, -1)
		}
		if cur, ok := b.Aspects[aspect]; ok {
			d.Add(aspect, cur.Choice, 1)
		}
	}
	return d
}
