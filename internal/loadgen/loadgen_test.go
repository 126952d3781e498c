package loadgen_test

import (
	"context"
	"testing"
	"time"

	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/internal/loadgen"
)

// TestLoadAgainstTheLocalStack: a run with vote changes and resent
// submissions tallies exactly what it expects, and a check of a run that
// did not happen fails.
func TestLoadAgainstTheLocalStack(t *testing.T) {
	settings := local.FastSettings()
	opts := kumotest.Options(nil)
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URL: s.URL, Count: 400, Concurrency: 8, Voters: 30, Titles: 4, Skew: "zipf", Aspects: 2,
		ChangeShare: 0.3, RetryShare: 0.2, Seed: 9, Run: "t",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 400 || res.Retries == 0 || res.Rejected != 0 || len(res.Latencies) != 400 {
		t.Fatalf("run: %+v", res.Stats)
	}
	bad, err := loadgen.Check(context.Background(), nil, s.URL, res, 30*time.Second)
	if err != nil || len(bad) != 0 {
		t.Fatalf("check: %+v, %v", bad, err)
	}
	// Tamper with the expectation: the check must notice.
	res.Expected[res.Titles[0]].Add("story", "up", 1)
	bad, err = loadgen.Check(context.Background(), nil, s.URL, res, time.Second)
	if err != nil || len(bad) != 1 || bad[0].TitleID != res.Titles[0] {
		t.Fatalf("a wrong expectation went unnoticed: %+v, %v", bad, err)
	}
}
