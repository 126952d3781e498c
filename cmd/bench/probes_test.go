package main

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"

	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/internal/metering"
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

// TestProbeOfANewTitleIsNotRefused: a probe votes on a title nobody voted
// on and reads its tallies every 5 ms while the projector's batch window
// (600 ms here) holds its vote, past the read bound (100 ms) again and
// again, on a query function whose budget allows a single sum. Its title
// is summed once, not at every read past the bound, so none of its GETs is
// refused; and followed stage by stage, its vote is seen stored, tallied,
// indexed and shown in that order, the last when the GET showed it.
func TestProbeOfANewTitleIsNotRefused(t *testing.T) {
	ctx := context.Background()
	opts := kumotest.Options(nil)
	settings := local.FastSettings()
	settings.Projector.Window = 600 * time.Millisecond
	settings.Reads.SumsPerSecond, settings.Reads.SumBurst = 0.001, 1
	queryMeter := metering.New(nil)
	stack, err := local.Start(ctx, local.Config{
		Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: settings,
		FunctionAPIOptions: func(fn string) []func(*middleware.Stack) error {
			if fn != "query" {
				return nil
			}
			return []func(*middleware.Stack) error{queryMeter.APIOption}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close(context.Background())
	stages, err := newStageReader(ctx, stack)
	if err != nil {
		t.Fatal(err)
	}
	run := &probeRun{}
	lag, ok := probe(ctx, http.DefaultClient, stack.URL, "tt-probe", run, stages)
	if !ok {
		t.Fatalf("the probe's vote never showed (%d GETs, %d refused, %d failed)", run.gets.Load(), run.refused.Load(), run.failed.Load())
	}
	t.Logf("lag %s, %d GETs, stages %v", lag, run.gets.Load(), run.stages)
	if lag < settings.Projector.Window {
		t.Fatalf("the vote showed %s after its 202, within the projector's window of %s: the test reads past the bound too few times", lag, settings.Projector.Window)
	}
	if r, f := run.refused.Load(), run.failed.Load(); r != 0 || f != 0 {
		t.Errorf("%d of %d GETs refused over the read budget, %d failed otherwise; want none", r, run.gets.Load(), f)
	}
	if sums := queryMeter.Snapshot().Requests["DynamoDB BatchGetItem"]; sums != 1 {
		t.Errorf("the query function summed the title's cells %d times, want once", sums)
	}
	if len(run.stages) != 1 {
		t.Fatalf("%d probes followed, want 1", len(run.stages))
	}
	s := run.stages[0]
	if s[stageShown] != lag {
		t.Errorf("shown at %s, but the probe's lag is %s", s[stageShown], lag)
	}
	for i := range stageShown {
		if s[i] <= 0 || s[i] > s[i+1] {
			t.Errorf("%s at %s, then %s at %s: want each stage seen, in order", stageNames[i], s[i], stageNames[i+1], s[i+1])
		}
	}
}
