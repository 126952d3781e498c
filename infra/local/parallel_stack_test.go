package local_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	"votes/infra/faults"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/projections"
)

// TestParallelProjectionUnderFaultsEqualsTheFold runs the pipeline with the
// stream mapping's parallelization factor at 4 and 8% of the functions' SDK
// calls failing, before or after kumo applied them: several projector
// invocations work on one shard at once, each retried by itself. Once
// idle, every title's tallies equal the fold of the event table.
func TestParallelProjectionUnderFaultsEqualsTheFold(t *testing.T) {
	settings := local.FastSettings()
	settings.Projector.Parallelization = 4
	flaky := faults.New(13)
	s := startStack(t, flaky, settings, false)
	flaky.Set(0.08, 0.08, nil)

	titles := []string{"tt-p", "tt-q"}
	aspects := []string{"overall", "story", "acting"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 13))
			for i := range 30 {
				body := map[string]any{
					"voterId": fmt.Sprintf("u-%d", rng.IntN(40)), "titleId": titles[rng.IntN(len(titles))],
					"votes": []map[string]string{{"aspect": aspects[rng.IntN(len(aspects))], "choice": []string{"up", "down"}[rng.IntN(2)]}},
				}
				key := fmt.Sprintf("p-%d-%d", w, i)
				for attempt := 0; ; attempt++ {
					code, out := post(t, s.URL, key, body)
					if code == http.StatusAccepted {
						break
					}
					if code < 500 || attempt > 50 { // any 5xx is retried under the same key
						t.Errorf("POST gave %d %v after %d attempts", code, out, attempt)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	flaky.Off()
	waitIdle(t, s)
	t.Logf("%d SDK calls, %d failed before sending, %d after kumo applied them; %d projector invocations, at most %d at once",
		flaky.Calls.Load(), flaky.FailedBefore.Load(), flaky.FailedAfter.Load(), s.Usage()["projector"].Invocations, s.StreamProgress().PeakInvocations)
	if flaky.FailedBefore.Load() == 0 || flaky.FailedAfter.Load() == 0 {
		t.Fatal("no faults were injected; the test proves nothing")
	}
	if p := s.StreamProgress().PeakInvocations; p < 2 {
		t.Fatalf("at most %d projector invocation ran at once: the parallelization factor was not played", p)
	}
	if dl := deadLetters(t, s, s.Queues.ProjectorFailed); len(dl) > 0 {
		t.Errorf("projector failures: %v", dl)
	}
	fold := projections.Fold(kumotest.StoredEvents(t, s.Tables.Events))
	for _, title := range titles {
		if got := getTallies(t, s, title); !got.Equal(fold[title]) {
			t.Errorf("%s: tallies %v, fold of the event table %v; diff %v", title, got, fold[title], got.Diff(fold[title]))
		}
	}
}
