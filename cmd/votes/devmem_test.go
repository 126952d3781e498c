package main

import "testing"

// TestQuietWatch: votes dev hands its memory back once after a burst has
// gone quiet, never while records keep being projected, never when
// nothing happened, and again after the next burst.
func TestQuietWatch(t *testing.T) {
	w := quietWatch{last: 5}
	for i, c := range []struct {
		count int64
		quiet bool
	}{
		{5, false},    // nothing yet
		{5, false},    // still nothing
		{105, false},  // a burst
		{900, false},  // still going
		{900, true},   // quiet: release
		{900, false},  // released already
		{901, false},  // another vote
		{901, true},   // quiet again
		{901, false},  // and it stays so
		{1000, false}, // a burst of one period
		{2000, false},
		{2000, true},
	} {
		if got := w.tick(c.count); got != c.quiet {
			t.Errorf("period %d (count %d): quiet %v, want %v", i, c.count, got, c.quiet)
		}
	}
}
