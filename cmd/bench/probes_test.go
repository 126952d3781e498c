package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestStopWaitsForEveryProbe: once stop returns, every probe started has
// finished and its lag is among those returned, and no probe starts later,
// even when stop comes while probes are being started. Run with -race: a
// probe started after the wait, or appending to the lags as they are
// handed back, is reported.
func TestStopWaitsForEveryProbe(t *testing.T) {
	for round := range 200 {
		var started, finished atomic.Int64
		stop := startProbes(context.Background(), 0, func(ctx context.Context, i int) (time.Duration, bool) {
			started.Add(1)
			defer finished.Add(1)
			return time.Duration(i), true
		})
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		lags := stop()
		n := started.Load()
		if finished.Load() != n || int64(len(lags)) != n {
			t.Fatalf("round %d: %d probes started, %d finished, %d lags returned", round, n, finished.Load(), len(lags))
		}
		time.Sleep(200 * time.Microsecond)
		if started.Load() != n {
			t.Fatalf("round %d: %d probes started after stop returned", round, started.Load()-n)
		}
	}
}
