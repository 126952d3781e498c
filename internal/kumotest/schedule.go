package kumotest

import (
	"sync/atomic"

	"votes/infra/faults"
	"votes/projections/projectiontest"
)

// Schedule is the fault-injecting transport driven by a script: the i-th
// call made through it is treated as script[i] says, and calls past the end
// pass. Property tests draw the script from the framework
// (projectiontest.DrawScript), so a failing case shrinks to fewer and
// simpler faults and replays; under concurrency which call gets which entry
// depends on timing, so a replay is close, not exact. Retried is FailAfter
// here, since the SDK itself sends the call again; Delay passes, since the
// emulator's own latency already varies interleavings. Off stops the
// schedule.
func Schedule(script []projectiontest.Fault) *faults.Transport {
	t := faults.New(0)
	var i atomic.Int64
	t.SetDecider(func(string, string) faults.Fault {
		n := i.Add(1) - 1
		if n >= int64(len(script)) {
			return faults.None
		}
		switch script[n] {
		case projectiontest.FailBefore:
			return faults.Before
		case projectiontest.FailAfter, projectiontest.Retried:
			return faults.After
		}
		return faults.None
	})
	return t
}
