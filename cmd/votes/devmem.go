package main

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"votes/infra/local"
)

// devGCPercent is votes dev's GOGC, unless the environment sets one. The
// stack's data (kumo's tables, and the stream records not yet projected)
// lives in this process's heap for as long as it runs, and the garbage
// collector lets the heap grow GOGC percent over what is live before it
// collects: at Go's default of 100 the process held about twice its data.
// Measured over 20,000 votes (README, "Memory"): the resident set after
// them went from 486 to 326 MB, the CPU time of the same load up 2%.
const devGCPercent = 50

// devQuiet is how long the stream must have carried nothing, after it
// carried something, before votes dev hands its free memory back.
const devQuiet = 5 * time.Second

// tuneDevMemory sets votes dev's GOGC, unless the environment set it.
func tuneDevMemory() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(devGCPercent)
	}
}

// releaseWhenQuiet hands the heap's free memory back to the system each
// time the stack goes quiet: after the stream projected records, then
// nothing for devQuiet. Go's background scavenger returns little of what a
// burst of votes leaves free (after 20,000 votes, 8 of 218 MB in
// minutes), so a stack stayed at its peak; debug.FreeOSMemory collects
// once and returns it all. It returns when ctx ends.
func releaseWhenQuiet(ctx context.Context, stack *local.Stack) {
	t := time.NewTicker(devQuiet)
	defer t.Stop()
	w := quietWatch{last: stack.StreamProgress().Records}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.tick(stack.StreamProgress().Records) {
				debug.FreeOSMemory()
			}
		}
	}
}

// quietWatch follows a count of work done, one look per period.
type quietWatch struct {
	last  int64
	moved bool
}

// tick takes the count at the end of a period and says whether the stack
// just went quiet: the count moved in an earlier period, not in this one.
func (w *quietWatch) tick(n int64) (quiet bool) {
	if n != w.last {
		w.last, w.moved = n, true
		return false
	}
	quiet, w.moved = w.moved, false
	return quiet
}
