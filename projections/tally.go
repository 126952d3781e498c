package projections

import (
	"maps"
	"slices"

	"votes/domain"
)

// Counts is a tally: aspect, then choice, then how many ballots hold it.
type Counts map[string]map[string]int64

// Add adds n (which may be negative) to aspect and choice.
func (c Counts) Add(aspect, choice string, n int64) {
	if n == 0 {
		return
	}
	m := c[aspect]
	if m == nil {
		m = map[string]int64{}
		c[aspect] = m
	}
	m[choice] += n
}

// Merge adds every count of o to c.
func (c Counts) Merge(o Counts) {
	for a, m := range o {
		for ch, n := range m {
			c.Add(a, ch, n)
		}
	}
}

// Compact drops zero counts and aspects left with none, so that two tallies
// of the same votes compare equal however they were reached.
func (c Counts) Compact() Counts {
	out := Counts{}
	for a, m := range c {
		for ch, n := range m {
			if n != 0 {
				out.Add(a, ch, n)
			}
		}
	}
	return out
}

// Equal reports whether c and o count the same, ignoring zeros.
func (c Counts) Equal(o Counts) bool {
	x, y := c.Compact(), o.Compact()
	if len(x) != len(y) {
		return false
	}
	for a, m := range x {
		if !maps.Equal(m, y[a]) {
			return false
		}
	}
	return true
}

// Diff lists every aspect and choice where c and o differ.
func (c Counts) Diff(o Counts) []Difference {
	var out []Difference
	keys := map[[2]string]bool{}
	for _, t := range []Counts{c, o} {
		for a, m := range t {
			for ch := range m {
				keys[[2]string{a, ch}] = true
			}
		}
	}
	for k := range keys {
		if x, y := c[k[0]][k[1]], o[k[0]][k[1]]; x != y {
			out = append(out, Difference{Aspect: k[0], Choice: k[1], Got: x, Want: y})
		}
	}
	slices.SortFunc(out, func(a, b Difference) int {
		if a.Aspect != b.Aspect {
			if a.Aspect < b.Aspect {
				return -1
			}
			return 1
		}
		if a.Choice < b.Choice {
			return -1
		}
		if a.Choice > b.Choice {
			return 1
		}
		return 0
	})
	return out
}

// Difference is one count that two tallies disagree on.
type Difference struct {
	Aspect, Choice string
	Got, Want      int64
}

// Fold is the definition of the tallies: for every voter, title and aspect
// the latest event wins, and each title counts its winners. It depends only
// on the set of events, not on their order or repetition.
func Fold(events []domain.VoteCast) map[string]Counts {
	var f Folder
	f.Add(events)
	return f.Tallies()
}

// Folder is Fold taken a batch of events at a time, for an event table
// too large to hold: it keeps one entry per voter, title and aspect, the
// latest vote's choice, time and ID. The zero Folder is empty. It is not
// safe for concurrent use.
type Folder struct {
	latest map[[3]string]Current
}

// Add folds events in.
func (f *Folder) Add(events []domain.VoteCast) {
	if f.latest == nil {
		f.latest = map[[3]string]Current{}
	}
	for _, e := range events {
		k := [3]string{e.VoterID, e.TitleID, e.Aspect}
		if cur, ok := f.latest[k]; !ok || e.After(cur.event()) {
			f.latest[k] = Current{Choice: e.Choice, RecordedAt: e.RecordedAt, VoteID: e.VoteID}
		}
	}
}

// Tallies is every title's counts of the events added so far.
func (f *Folder) Tallies() map[string]Counts {
	out := map[string]Counts{}
	for k, cur := range f.latest {
		c := out[k[1]]
		if c == nil {
			c = Counts{}
			out[k[1]] = c
		}
		c.Add(k[2], cur.Choice, 1)
	}
	return out
}
