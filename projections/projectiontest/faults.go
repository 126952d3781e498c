package projectiontest

import (
	"sync"
	"time"

	"pgregory.net/rapid"
)

// Fault is what a fault schedule does to one store call.
type Fault uint8

// The faults a schedule can give a call. Pass is the zero value, so a
// schedule shrinks towards no faults.
const (
	Pass       Fault = iota
	FailBefore       // fails before it reaches the store: nothing applied
	FailAfter        // the store applies it and the answer is lost
	Delay            // held back a moment, to vary interleavings
	Retried          // applied, the answer lost, and sent again a moment later, as the SDK retries
)

// DrawScript draws a fault schedule of up to n calls, most of them passing.
// Tests hand the i-th call the i-th fault; calls past the end pass.
func DrawScript(t *rapid.T, n int) []Fault {
	// Weighted so that a run makes progress: 0-6 pass. Shrinking lowers
	// values, so it heads for a script of passes.
	kinds := [11]Fault{Pass, Pass, Pass, Pass, Pass, Pass, Pass, FailBefore, FailAfter, Delay, Retried}
	raw := rapid.SliceOfN(rapid.IntRange(0, 10), 0, n).Draw(t, "faults")
	out := make([]Fault, len(raw))
	for i, k := range raw {
		out[i] = kinds[k]
	}
	return out
}

// Clock is a fake clock: Sleep moves it on at once, so that what waits for
// time passing (a cache's age) sees it pass without the test waiting.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a fake clock at a fixed time.
func NewClock() *Clock { return &Clock{now: time.Unix(1_700_000_000, 0)} }

// Now is the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
