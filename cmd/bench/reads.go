package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/middleware"

	"votes/infra/local"
	"votes/internal/loadgen"
	"votes/internal/metering"
)

// readCost is what a run of tally GETs asked of DynamoDB, from the query
// function's own metered calls.
type readCost struct {
	gets, failed int64
	counts       metering.Counts
	took         time.Duration // from the first GET sent to the last answered
}

func (c readCost) rcuPerGet() float64 { return c.counts.RCU / float64(c.gets) }
func (c readCost) wcuPerGet() float64 { return c.counts.WCU / float64(c.gets) }

// readPattern names the titles a run of GETs reads, by the GET's number.
type readPattern struct {
	name  string
	title func(i int) string
}

// readCosts starts a stack of its own, votes on titles titles, waits until
// every vote is tallied, then sends gets GETs of tallies, 16 at a time, in
// each of three patterns: a burst on one title, GETs spread round-robin
// over the titles, and every GET on a title nobody asked for before (the
// cache's worst case).
// cfg names the stage and the emulator; the rest is set here.
func readCosts(ctx context.Context, cfg local.Config, gets, titles int) (map[string]readCost, []string, error) {
	meter := metering.New(nil)
	cfg.Addr, cfg.Settings = "127.0.0.1:0", local.DefaultSettings()
	cfg.FunctionAPIOptions = func(fn string) []func(*middleware.Stack) error {
		if fn != "query" {
			return nil
		}
		return []func(*middleware.Stack) error{meter.APIOption}
	}
	stack, err := local.Start(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer stack.Close(context.Background())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL: stack.URL, Client: client, Count: titles * 200, Concurrency: 32, Voters: titles * 200, Titles: titles,
		Skew: "uniform", Aspects: 1, Run: "reads", Seed: 42,
	})
	if err != nil {
		return nil, nil, err
	}
	if err := stack.WaitIdle(ctx); err != nil {
		return nil, nil, err
	}
	patterns := []readPattern{
		{"burst on one title", func(int) string { return res.Titles[0] }},
		{"spread over " + strconv.Itoa(titles) + " titles", func(i int) string { return res.Titles[i%len(res.Titles)] }},
		{"every GET a new title", func(i int) string { return "unasked-" + strconv.Itoa(i) }},
	}
	out := map[string]readCost{}
	var order []string
	for _, p := range patterns {
		meter.Reset()
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < gets; i = int(next.Add(1)) - 1 {
					if _, err := loadgen.Tallies(ctx, client, stack.URL, p.title(i)); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		out[p.name] = readCost{gets: int64(gets), failed: failed.Load(), counts: meter.Snapshot(), took: time.Since(start)}
		order = append(order, p.name)
	}
	return out, order, nil
}

// printReadCosts prints read_units_per_tally_get, one line per pattern.
func printReadCosts(ctx context.Context, out io.Writer, gets, titles int) error {
	costs, order, err := readCosts(ctx, local.Config{Stage: "bench-reads"}, gets, titles)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "read_units_per_tally_get: %.2f (%d GETs, burst on one title)\n", costs[order[0]].rcuPerGet(), gets)
	for _, name := range order {
		c := costs[name]
		fmt.Fprintf(out, "  %s: %.2f RCU, %.3f WCU, %.2f requests per GET; %d of %d GETs failed\n",
			name, c.rcuPerGet(), c.wcuPerGet(), float64(c.counts.Total())/float64(c.gets), c.failed, c.gets)
	}
	return nil
}
