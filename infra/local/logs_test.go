package local_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"votes/infra/faults"
	"votes/infra/local"
	"votes/internal/kumotest"
)

// TestLogsCarryNoVoterIDs: under overlapping invocations and injected
// faults every function logs warnings and errors, with the errors of the
// stores they call; none of it may name a voter.
func TestLogsCarryNoVoterIDs(t *testing.T) {
	flaky := faults.New(11)
	flaky.SetRate(0.1)
	logs := &lockedBuffer{}
	opts := kumotest.Options(nil)
	s, err := local.Start(context.Background(), local.Config{
		Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: local.FastSettings(),
		Faults: flaky, Overlap: true, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	}()
	const voter = "private-voter-"
	for i := range 40 {
		body := map[string]any{"voterId": fmt.Sprint(voter, i%8), "titleId": "tt-logs",
			"votes": []map[string]string{{"aspect": "story", "choice": []string{"up", "down"}[i%2]}}}
		for attempt := 0; ; attempt++ {
			code, out := post(t, s.URL, fmt.Sprint("k-", i), body)
			if code == http.StatusAccepted {
				break
			}
			if code < 500 || attempt > 50 {
				t.Fatalf("POST: %d %v", code, out)
			}
		}
	}
	waitIdle(t, s)
	flaky.Off()
	if flaky.FailedBefore.Load()+flaky.FailedAfter.Load() == 0 || len(logs.lines("level=")) == 0 {
		t.Fatal("no fault injected or nothing logged: the test proves nothing")
	}
	if leaked := logs.lines(voter); len(leaked) > 0 {
		t.Errorf("%d log lines name a voter, the first: %s", len(leaked), leaked[0])
	}
	t.Logf("%d log lines, %d calls failed before, %d after applied",
		len(logs.lines("level=")), flaky.FailedBefore.Load(), flaky.FailedAfter.Load())
}
