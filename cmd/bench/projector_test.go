package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"votes/infra/local"
	"votes/internal/kumotest"
)

// TestProjectorRate runs the projector figures small: a backlog built with
// the mapping held is folded whole once it is released, the tallies equal
// the fold of the event table (projectorRate fails otherwise), and with a
// parallelization factor above 1 several invocations really ran at once.
func TestProjectorRate(t *testing.T) {
	opts := kumotest.Options(nil)
	par := local.DefaultSettings().Projector.Parallelization
	if par < 2 {
		t.Fatalf("the default parallelization factor is %d; this test wants one above 1", par)
	}
	for _, p := range []int{par, 1} {
		cfg := local.Config{Stage: fmt.Sprintf("%s-%d", kumotest.Stage(t), p), Endpoint: opts.Endpoint, Retryer: opts.Retryer}
		r, err := projectorRate(context.Background(), cfg, p, 800, 20)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("parallelization %d: %.0f events/s folded, %.0f PutItem/s seeding, %d invocations, at most %d at once", p, r.perS, r.putPerS, r.invokes, r.peak)
		if r.events != 800 || r.perS <= 0 {
			t.Errorf("parallelization %d: %d events at %.0f/s, want 800", p, r.events, r.perS)
		}
		if p == 1 && r.peak != 1 {
			t.Errorf("parallelization 1 ran %d invocations at once on one shard, want 1", r.peak)
		}
		if p > 1 && r.peak < 2 {
			t.Errorf("parallelization %d never ran two invocations at once", p)
		}
	}
}

// TestCellLag: under a light load, probes' votes reach the tally cells, and
// the lag figure is taken from them.
func TestCellLag(t *testing.T) {
	lag, err := lagAt(context.Background(), 50, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cell lag p99 at 50 votes/s: %.1f ms", lag)
	if lag <= 0 || lag > 30000 {
		t.Errorf("cell lag p99 %.1f ms: want a vote counted in its cells within 30 s", lag)
	}
}
