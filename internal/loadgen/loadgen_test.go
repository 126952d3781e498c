package loadgen_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"votes/domain"
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

// TestLoadUsesTheDeploymentsCatalog: against a deployment with its own
// catalog, a run given that catalog sends only its aspects and choices
// (every submission accepted, changes included) and tallies exactly what
// it expects; a run left on the default catalog is refused, which is what
// a load of a deployed catalog did before runs could be given one.
func TestLoadUsesTheDeploymentsCatalog(t *testing.T) {
	catalog, err := domain.ParseCatalog("plot=good|bad|meh;music=loud|soft")
	if err != nil {
		t.Fatal(err)
	}
	opts := kumotest.Options(nil)
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Endpoint: opts.Endpoint,
		Retryer: opts.Retryer, Settings: local.FastSettings(), Catalog: catalog})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	cfg := loadgen.Config{URL: s.URL, Count: 200, Concurrency: 4, Voters: 20, Titles: 3, Skew: "uniform", Aspects: 2,
		ChangeShare: 0.4, Seed: 5, Run: "c", Catalog: catalog}
	res, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 200 || res.Rejected != 0 {
		t.Fatalf("run on the deployment's catalog: %+v", res.Stats)
	}
	allowed := map[string][]string{}
	for _, a := range catalog.Aspects() {
		allowed[a.Name] = a.Choices
	}
	for title, counts := range res.Expected {
		for aspect, choices := range counts {
			for choice := range choices {
				if !slices.Contains(allowed[aspect], choice) {
					t.Errorf("title %s: %s=%s is not in the catalog %s", title, aspect, choice, catalog)
				}
			}
		}
	}
	bad, err := loadgen.Check(context.Background(), nil, s.URL, res, 30*time.Second)
	if err != nil || len(bad) != 0 {
		t.Fatalf("check: %+v, %v", bad, err)
	}

	cfg.Catalog, cfg.Run, cfg.Count, cfg.Aspects = domain.Catalog{}, "d", 20, 1
	res, err = loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || res.Rejected != 20 {
		t.Errorf("run on the default catalog against a deployment of another: %+v, want all 20 refused", res.Stats)
	}

	cfg.Catalog, cfg.Aspects = catalog, 3
	if err := cfg.Validate(); err == nil {
		t.Error("3 aspects per submission from a catalog of 2 passed validation")
	}
}

// TestAspectsRange: with AspectsMax above Aspects, new submissions vote on
// every count of aspects in the range and on none outside it, the run
// counts each vote, and a range beyond the catalog is refused.
func TestAspectsRange(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{} // aspects per submission -> submissions
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s struct {
			Votes []json.RawMessage `json:"votes"`
		}
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[len(s.Votes)]++
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer api.Close()

	cfg := loadgen.Config{URL: api.URL, Count: 500, Concurrency: 4, Voters: 1000, Titles: 10, Skew: "zipf", Aspects: 1, AspectsMax: 5, Seed: 1, Run: "r"}
	res, err := loadgen.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	votes := int64(0)
	for n, subs := range seen {
		if n < 1 || n > 5 {
			t.Errorf("%d submissions voted on %d aspects, outside 1 to 5", subs, n)
		}
		votes += int64(n * subs)
	}
	for n := 1; n <= 5; n++ {
		if seen[n] < 50 {
			t.Errorf("only %d of 500 submissions voted on %d aspects: %v", seen[n], n, seen)
		}
	}
	if res.Accepted != 500 || res.Votes != votes {
		t.Errorf("run counted %d submissions and %d votes; the API took 500 and %d", res.Accepted, res.Votes, votes)
	}
	cfg.AspectsMax = 6
	if err := cfg.Validate(); err == nil {
		t.Error("up to 6 aspects per submission from a catalog of 5 passed validation")
	}
}
