package main

import (
	"context"
	"testing"
	"time"

	"votes/infra/functions"
	"votes/infra/local"
	"votes/internal/kumotest"
)

// TestReadCosts runs the -reads figures small: a burst of GETs on one
// title, and GETs spread over a few titles, cost a read or less each on
// average, and GETs of new titles beyond the sum budget are refused, not
// paid for.
func TestReadCosts(t *testing.T) {
	opts := kumotest.Options(nil)
	costs, order, err := readCosts(context.Background(), local.Config{Stage: kumotest.Stage(t), Endpoint: opts.Endpoint, Retryer: opts.Retryer}, 200, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		c := costs[name]
		t.Logf("%s: %.2f RCU, %.3f WCU per GET, %d of %d failed", name, c.rcuPerGet(), c.wcuPerGet(), c.failed, c.gets)
	}
	burst, spread, fresh := costs[order[0]], costs[order[1]], costs[order[2]]
	if burst.failed != 0 || spread.failed != 0 {
		t.Errorf("GETs of voted titles failed: %d in the burst, %d spread", burst.failed, spread.failed)
	}
	if burst.rcuPerGet() > 1 || spread.rcuPerGet() > 2 {
		t.Errorf("read units per GET: burst %.2f, spread %.2f; want at most 1 and 2", burst.rcuPerGet(), spread.rcuPerGet())
	}
	// Every GET of a new title needs a sum: all but the budget's are refused.
	// The budget is a token bucket, so what it allows grows with the time
	// the GETs took (seconds here, longer on a busy machine).
	lim := functions.DefaultConfig().Reads
	budget := int64(float64(lim.SumBurst) + lim.SumsPerSecond*fresh.took.Seconds() + 1)
	if paid := fresh.gets - fresh.failed; paid > budget || (budget < fresh.gets && fresh.failed == 0) {
		t.Errorf("%d of %d GETs of new titles summed the cells in %s; the budget is a burst of %d and %.0f a second: %d",
			paid, fresh.gets, fresh.took.Round(time.Millisecond), lim.SumBurst, lim.SumsPerSecond, budget)
	}
}
