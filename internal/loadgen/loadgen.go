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
	Skew        string  // "uniform", or "zipf": a few titles get most votes
	Aspects     int     // aspects per submission, 1 to 5
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
	case c.Aspects < 1 || c.Aspects > domain.MaxVotes:
		return fmt.Errorf("aspects per submission must be 1 to %d", domain.MaxVotes)
	case c.Skew != "uniform" && c.Skew != "zipf":
		return errors.New(`skew must be "uniform" or "zipf"`)
	case c.ChangeShare < 0 || c.ChangeShare > 1 || c.RetryShare < 0 || c.RetryShare > 1:
		return errors.New("shares must be between 0 and 1")
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	}
	return nil
}

type ballotKey struct{ voter, title string }

// worker owns the voters v with v % concurrency == id, so that one voter's
// submissions are sent one after another and the receiver orders them as
// they were sent.
type worker struct {
	id, of  int
	cfg     *Config
	rng     *rand.Rand
	zipf    *rand.Zipf
	ballots map[ballotKey]map[string]string // what this worker's voters hold
	history []ballotKey
	votes   int64
	lat     []time.Duration
	voter   string // of the submission being sent, for its token
}

var aspects = domain.DefaultCatalog().Aspects()

// Run sends submissions until the count or duration is reached or ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency}}
	}
	if cfg.Run == "" {
		cfg.Run = fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	limiter := rate.NewLimiter(rate.Inf, 1)
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/100)))
	}
	var (
		stats                                   Stats
		sent, accepted, rejected, failed, retry atomic.Int64
		remaining                               atomic.Int64
	)
	remaining.Store(int64(cfg.Count))
	start := time.Now()
	snapshot := func() Stats {
		return Stats{Sent: sent.Load(), Accepted: accepted.Load(), Rejected: rejected.Load(), Failed: failed.Load(), Retries: retry.Load(), Elapsed: time.Since(start)}
	}
	tickDone := make(chan struct{})
	if cfg.Tick != nil {
		go func() {
			for {
				select {
				case <-tickDone:
					return
				case <-time.After(time.Second):
					cfg.Tick(snapshot())
				}
			}
		}()
	}
	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{id: i, of: cfg.Concurrency, cfg: &cfg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))), ballots: map[ballotKey]map[string]string{}}
		if cfg.Skew == "zipf" && cfg.Titles > 1 {
			w.zipf = rand.NewZipf(w.rng, 1.1, 1, uint64(cfg.Titles-1))
		}
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
				w.submit(ctx, &sent, &accepted, &rejected, &failed, &retry)
			}
		}()
	}
	wg.Wait()
	close(tickDone)
	stats = snapshot()

	res := Result{Stats: stats, Expected: map[string]projections.Counts{}}
	res.Rate = float64(stats.Accepted) / stats.Elapsed.Seconds()
	for i := range cfg.Titles {
		res.Titles = append(res.Titles, cfg.title(i))
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
	return res, nil
}

func (c *Config) title(i int) string { return fmt.Sprintf("load-%s-%d", c.Run, i) }

func (w *worker) submit(ctx context.Context, sent, accepted, rejected, failed, retries *atomic.Int64) {
	cfg := w.cfg
	var k ballotKey
	var votes []map[string]string
	if len(w.history) > 0 && w.rng.Float64() < cfg.ChangeShare {
		// Change an earlier ballot: flip one of its aspects.
		k = w.history[w.rng.IntN(len(w.history))]
		for aspect, choice := range w.ballots[k] {
			flip := "down"
			if choice == "down" {
				flip = "up"
			}
			votes = append(votes, map[string]string{"aspect": aspect, "choice": flip})
			break
		}
	} else {
		voter := w.id + w.of*w.rng.IntN(max(1, (cfg.Voters-w.id+w.of-1)/w.of))
		t := w.rng.IntN(cfg.Titles)
		if w.zipf != nil {
			t = int(w.zipf.Uint64())
		}
		k = ballotKey{voter: fmt.Sprintf("load-%d", voter), title: cfg.title(t)}
		for _, a := range w.rng.Perm(len(aspects))[:cfg.Aspects] {
			votes = append(votes, map[string]string{"aspect": aspects[a].Name, "choice": []string{"up", "down"}[w.rng.IntN(2)]})
		}
	}
	body, _ := json.Marshal(map[string]any{"voterId": k.voter, "titleId": k.title, "votes": votes})
	key := fmt.Sprintf("%s-%d-%d", cfg.Run, w.id, sent.Add(1))
	w.voter = k.voter
	ok := w.post(ctx, body, key, true, accepted, rejected, failed, retries)
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
		retries.Add(1)
		w.post(ctx, body, key, false, accepted, rejected, failed, retries)
	}
}

// postRetry paces the retries of a submission: ten attempts in all.
var postRetry = backoff.Policy{Base: 20 * time.Millisecond, Max: 500 * time.Millisecond, Attempts: 10}

// post sends one submission, retrying a 5xx or a lost connection with the
// same Idempotency-Key as the contract asks, and reports whether it was
// accepted. A request under way finishes when ctx ends; no retry follows.
func (w *worker) post(ctx context.Context, body []byte, key string, timed bool, accepted, rejected, failed, retries *atomic.Int64) bool {
	if ctx.Err() != nil {
		return false
	}
	for attempt := 1; ; attempt++ {
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, strings.TrimRight(w.cfg.URL, "/")+"/votes", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		if err := w.authorize(req); err != nil {
			failed.Add(1)
			return false
		}
		began := time.Now()
		resp, err := w.cfg.Client.Do(req)
		if err != nil {
			failed.Add(1)
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusAccepted:
				if timed {
					accepted.Add(1)
					w.lat = append(w.lat, time.Since(began))
				}
				return true
			case resp.StatusCode >= 500:
				rejected.Add(1)
			default:
				rejected.Add(1)
				return false
			}
		}
		if postRetry.Wait(ctx, attempt) != nil {
			return false
		}
	}
}
