// Package loadgen sends vote submissions to the HTTP API of any
// deployment, as a crowd of viewers would, and keeps the tallies the run
// must produce, so that a deployment can be checked for lost or
// double-counted votes.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"votes/domain"
	"votes/internal/backoff"
	"votes/projections"
)

// Config describes a run.
type Config struct {
	URL         string        // base URL of the HTTP API
	Rate        float64       // submissions per second; 0 is as fast as the API answers
	Duration    time.Duration // stop after this long (when Count is 0)
	Count       int           // stop after this many submissions
	Concurrency int           // submissions in flight
	Voters      int
	Titles      int
	Skew        string // "uniform", or "zipf": a few titles get most votes
	Aspects     int    // aspects per submission, 1 to 5 and at most the catalog's
	// AspectsMax, when above Aspects, makes the aspects per submission
	// vary: each new submission draws its count uniformly from Aspects to
	// AspectsMax, as viewers vote on one aspect or on several.
	AspectsMax  int
	ChangeShare float64 // share of submissions that change an earlier vote
	RetryShare  float64 // share of submissions sent again with the same Idempotency-Key
	Seed        uint64
	// Run names the titles of this run (load-RUN-N), so that its tallies
	// are its own; empty picks one.
	Run    string
	Client *http.Client
	// Tick, when set, is called about once a second with the counts so far.
	Tick func(Stats)
	// Tokens, when set, gives each submission a bearer token naming its
	// voter, for an API behind a JWT authorizer.
	Tokens TokenSource
	// Catalog is the aspects and choices the deployment accepts (its
	// VOTES_CATALOG); the zero value is domain.DefaultCatalog.
	Catalog domain.Catalog
}

// Stats are counts so far.
type Stats struct {
	Sent, Accepted, Rejected, Failed, Retries int64
	Elapsed                                   time.Duration
}

// Result is what a run did and what it must produce.
type Result struct {
	Stats
	Rate      float64         // accepted submissions per second
	Votes     int64           // votes in accepted submissions (duplicates not counted)
	Latencies []time.Duration // POST to 202, sorted
	// Expected is every title's tallies once the pipeline has taken every
	// accepted vote: each voter's latest choice per aspect, in the order
	// the voter sent them (one voter's submissions go out one at a time).
	Expected map[string]projections.Counts
	Titles   []string
}

// Percentile of the accept latencies, p in [0,1].
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(len(r.Latencies)-1, int(p*float64(len(r.Latencies))))]
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("a URL is required")
	case c.Count <= 0 && c.Duration <= 0:
		return errors.New("give a count or a duration")
	case c.Concurrency < 1 || c.Voters < 1 || c.Titles < 1:
		return errors.New("concurrency, voters and titles must be at least 1")
	case c.Aspects < 1 || max(c.Aspects, c.AspectsMax) > min(domain.MaxVotes, len(c.aspects())):
		return fmt.Errorf("aspects per submission must be 1 to %d", min(domain.MaxVotes, len(c.aspects())))
	case c.Skew != "uniform" && c.Skew != "zipf":
		return errors.New(`skew must be "uniform" or "zipf"`)
	case c.ChangeShare < 0 || c.ChangeShare > 1 || c.RetryShare < 0 || c.RetryShare > 1:
		return errors.New("shares must be between 0 and 1")
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	}
	return nil
}

// aspects are the catalog's, or the default catalog's when none is set.
func (c *Config) aspects() []domain.Aspect {
	if a := c.Catalog.Aspects(); len(a) > 0 {
		return a
	}
	return domain.DefaultCatalog().Aspects()
}

type ballotKey struct{ voter, title string }

// worker owns the voters v with v % concurrency == id, so that one voter's
// submissions are sent one after another and the receiver orders them as
// they were sent.
type worker struct {
	id, of  int
	cfg     *Config
	counts  *counters
	aspects []domain.Aspect
	rng     *rand.Rand
	zipf    *rand.Zipf
	ballots map[ballotKey]map[string]string // what this worker's voters hold
	history []ballotKey
	votes   int64
	lat     []time.Duration
	voter   string // of the submission being sent, for its token
}

// counters are a run's counts so far, shared by its workers.
type counters struct {
	sent, accepted, rejected, failed, retries atomic.Int64
}

func (c *counters) snapshot(start time.Time) Stats {
	return Stats{Sent: c.sent.Load(), Accepted: c.accepted.Load(), Rejected: c.rejected.Load(), Failed: c.failed.Load(),
		Retries: c.retries.Load(), Elapsed: time.Since(start)}
}

// Run sends submissions until the count or duration is reached or ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg.fillDefaults()
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var counts counters
	start := time.Now()
	stopTicks := tickEverySecond(cfg.Tick, func() Stats { return counts.snapshot(start) })
	workers := runWorkers(ctx, &cfg, &counts)
	stopTicks()
	return cfg.result(counts.snapshot(start), workers), nil
}

// fillDefaults gives a run without a client, a name or a catalog its own.
func (c *Config) fillDefaults() {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c.Concurrency}}
	}
	if c.Run == "" {
		c.Run = fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	}
	if len(c.Catalog.Aspects()) == 0 {
		c.Catalog = domain.DefaultCatalog()
	}
}

// tickEverySecond calls fn about once a second with stats() until the
// returned stop, which waits for a call under way. A nil fn is never
// called.
func tickEverySecond(fn func(Stats), stats func() Stats) (stop func()) {
	if fn == nil {
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Second):
				fn(stats())
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// runWorkers sends the run's submissions from cfg.Concurrency workers,
// paced by cfg.Rate, until the count is sent or ctx ends, and returns the
// workers with what each sent.
func runWorkers(ctx context.Context, cfg *Config, counts *counters) []*worker {
	limiter := rate.NewLimiter(rate.Inf, 1)
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/100)))
	}
	var remaining atomic.Int64
	remaining.Store(int64(cfg.Count))
	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := newWorker(i, cfg, counts)
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if cfg.Count > 0 && remaining.Add(-1) < 0 {
					return
				}
				if limiter.Wait(ctx) != nil {
					return
				}
				w.submit(ctx)
			}
		}()
	}
	wg.Wait()
	return workers
}

func newWorker(id int, cfg *Config, counts *counters) *worker {
	w := &worker{id: id, of: cfg.Concurrency, cfg: cfg, counts: counts, aspects: cfg.aspects(),
		rng: rand.New(rand.NewPCG(cfg.Seed, uint64(id))), ballots: map[ballotKey]map[string]string{}}
	if cfg.Skew == "zipf" && cfg.Titles > 1 {
		w.zipf = rand.NewZipf(w.rng, 1.1, 1, uint64(cfg.Titles-1))
	}
	return w
}

// result gathers what the workers sent: the votes, the latencies, and the
// tallies every title must come to.
func (c *Config) result(stats Stats, workers []*worker) Result {
	res := Result{Stats: stats, Expected: map[string]projections.Counts{}}
	res.Rate = float64(stats.Accepted) / stats.Elapsed.Seconds()
	for i := range c.Titles {
		res.Titles = append(res.Titles, c.title(i))
	}
	for _, w := range workers {
		res.Votes += w.votes
		res.Latencies = append(res.Latencies, w.lat...)
		for k, choices := range w.ballots {
			if res.Expected[k.title] == nil {
				res.Expected[k.title] = projections.Counts{}
			}
			for aspect, choice := range choices {
				res.Expected[k.title].Add(aspect, choice, 1)
			}
		}
	}
	slices.Sort(res.Latencies)
	return res
}

func (c *Config) title(i int) string { return fmt.Sprintf("load-%s-%d", c.Run, i) }

func (w *worker) submit(ctx context.Context) {
	cfg := w.cfg
	var k ballotKey
	var votes []map[string]string
	if len(w.history) > 0 && w.rng.Float64() < cfg.ChangeShare {
		// Change an earlier ballot: one of its aspects to the catalog's
		// next choice (up to down and back, in the default catalog).
		k = w.history[w.rng.IntN(len(w.history))]
		for aspect, choice := range w.ballots[k] {
			votes = append(votes, map[string]string{"aspect": aspect, "choice": w.nextChoice(aspect, choice)})
			break
		}
	} else {
		voter := w.id + w.of*w.rng.IntN(max(1, (cfg.Voters-w.id+w.of-1)/w.of))
		t := w.rng.IntN(cfg.Titles)
		if w.zipf != nil {
			t = int(w.zipf.Uint64())
		}
		k = ballotKey{voter: fmt.Sprintf("load-%d", voter), title: cfg.title(t)}
		for _, i := range w.rng.Perm(len(w.aspects))[:w.aspectCount()] {
			a := w.aspects[i]
			votes = append(votes, map[string]string{"aspect": a.Name, "choice": a.Choices[w.rng.IntN(len(a.Choices))]})
		}
	}
	body, _ := json.Marshal(map[string]any{"voterId": k.voter, "titleId": k.title, "votes": votes})
	key := fmt.Sprintf("%s-%d-%d", cfg.Run, w.id, w.counts.sent.Add(1))
	w.voter = k.voter
	ok := w.post(ctx, body, key, true)
	if !ok {
		return
	}
	if w.ballots[k] == nil {
		w.ballots[k] = map[string]string{}
		w.history = append(w.history, k)
	}
	for _, v := range votes {
		w.ballots[k][v["aspect"]] = v["choice"]
	}
	w.votes += int64(len(votes))
	if w.rng.Float64() < cfg.RetryShare {
		// The client did not hear the 202 and sends it again: the same
		// submission, which must be counted once.
		w.counts.retries.Add(1)
		w.post(ctx, body, key, false)
	}
}

// aspectCount is how many aspects a new submission votes on. A fixed
// count draws nothing, so that a run without a range sends what it sent
// before ranges existed, for the same seed.
func (w *worker) aspectCount() int {
	if w.cfg.AspectsMax <= w.cfg.Aspects {
		return w.cfg.Aspects
	}
	return w.cfg.Aspects + w.rng.IntN(w.cfg.AspectsMax-w.cfg.Aspects+1)
}

// nextChoice is the choice after choice in aspect's list, round to the
// first; an aspect of one choice keeps it.
func (w *worker) nextChoice(aspect, choice string) string {
	i := slices.IndexFunc(w.aspects, func(a domain.Aspect) bool { return a.Name == aspect })
	choices := w.aspects[i].Choices
	return choices[(slices.Index(choices, choice)+1)%len(choices)]
}

// postRetry paces the retries of a submission: ten attempts in all.
var postRetry = backoff.Policy{Base: 20 * time.Millisecond, Max: 500 * time.Millisecond, Attempts: 10}

// post sends one submission, retrying a 5xx or a lost connection with the
// same Idempotency-Key as the contract asks, and reports whether it was
// accepted. A request under way finishes when ctx ends; no retry follows.
func (w *worker) post(ctx context.Context, body []byte, key string, timed bool) bool {
	c := w.counts
	if ctx.Err() != nil {
		return false
	}
	for attempt := 1; ; attempt++ {
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, strings.TrimRight(w.cfg.URL, "/")+"/votes", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		if err := w.authorize(req); err != nil {
			c.failed.Add(1)
			return false
		}
		began := time.Now()
		resp, err := w.cfg.Client.Do(req)
		if err != nil {
			c.failed.Add(1)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusAccepted:
				if timed {
					c.accepted.Add(1)
					w.lat = append(w.lat, time.Since(began))
				}
				return true
			case resp.StatusCode >= 500:
				c.rejected.Add(1)
			default:
				c.rejected.Add(1)
				return false
			}
		}
		if postRetry.Wait(ctx, attempt) != nil {
			return false
		}
	}
}
