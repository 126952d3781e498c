package local_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/infra/functions"
	"votes/infra/local"
)

// TestVotesPostedOverHTTPAreTalliedUnderRIE is the end-to-end test with
// every function a bootstrap process of its own under the Lambda Runtime
// Interface Emulator (votes dev --runtime rie), built as the zips are and
// given the environment serverless.yml gives it, every batch going to two
// concurrent invocations. Without aws-lambda-rie it is skipped, except in
// CI, where .ci/run installs it.
func TestVotesPostedOverHTTPAreTalliedUnderRIE(t *testing.T) {
	if _, err := local.FindRIE(); errors.Is(err, local.ErrNoRIE) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v: .ci/run installs it with make rie", err)
		}
		t.Skipf("%v; make rie installs it (go install %s@%s)", err, local.RIEModule, local.RIEVersion)
	}
	s := startConfigured(t, local.Config{Settings: local.FastSettings(), Overlap: true, Runtime: local.RuntimeRIE})
	votesArePostedAndTallied(t, s, nil)
	// The repairer had nothing to repair: an empty batch shows that its
	// bootstrap starts with the environment it is given (one that lacks a
	// variable it needs exits at start-up, a Runtime.ExitError).
	var repaired events.SQSEventResponse
	if err := s.Functions.Repairer.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{}}, &repaired); err != nil {
		t.Errorf("repairer: %v", err)
	}
	if err := s.RankNow(context.Background()); err != nil {
		t.Errorf("ranker: %v", err)
	}

	// Each REPORT line is read as the emulator prints it, just before it
	// answers: give the last ones a moment.
	sb := s.Sandboxes()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); sb = s.Sandboxes() {
		if sb[functions.RepairerName].First.Count > 0 && sb[functions.RankerName].First.Count > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range functions.Names() {
		r := sb[name]
		if r.ColdStarts < 1 || r.First.Count < 1 {
			t.Errorf("%s: %+v, want the invocations in sandboxes the emulator started", name, r)
		}
		t.Logf("%s: %d cold starts (first invocation p50 %.1f ms, Init Duration p50 %.2f ms), %d warm invocations p50 %.1f ms p99 %.1f ms",
			name, r.ColdStarts, r.First.P50, r.Init.P50, r.Warm.Count, r.Warm.P50, r.Warm.P99)
	}
	if r := sb[functions.ReceiverName]; r.Warm.Count < 1 {
		t.Errorf("receiver: %+v, want later votes taken by a warm sandbox", r)
	}
}
