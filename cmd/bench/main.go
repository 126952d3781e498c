// Command bench measures the pipeline on the local stack and prints its
// headline figures, one "name: value" line each, every one beside a floor
// measured in the same run (these machines are noisy: ratios hold where
// absolute times move). make bench runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"votes/admin"
	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/loadgen"
	"votes/internal/metering"
	"votes/projections"
)

type options struct {
	votes         int
	concurrency   int
	latencyFor    time.Duration
	rebuildEvents int
	rebuildSegs   int
	rebuildPage   int
	titles        int
	// projectorEvents is the backlog the projector's own rate is measured
	// on; 0 skips it.
	projectorEvents int
}

func main() {
	var o options
	flag.IntVar(&o.votes, "votes", 20000, "single-aspect submissions in the throughput and cost runs")
	flag.IntVar(&o.concurrency, "concurrency", 64, "submissions in flight when measuring throughput")
	flag.DurationVar(&o.latencyFor, "latency-for", 10*time.Second, "how long the half-rate latency run lasts")
	flag.IntVar(&o.rebuildEvents, "rebuild-events", 200000, "events seeded for the rebuild figures")
	flag.IntVar(&o.rebuildSegs, "rebuild-segments", 8, "parallel scan segments")
	flag.IntVar(&o.rebuildPage, "rebuild-page", 20000, "scan page size")
	flag.IntVar(&o.titles, "titles", 50, "titles in the throughput and cost runs (Zipf skew)")
	flag.IntVar(&o.projectorEvents, "projector-events", 20000, "events in the backlog the projector's own rate is measured on (0: skip)")
	reads := flag.Bool("reads", false, "measure only what a tally GET costs in read units, and exit")
	readGets := flag.Int("read-gets", 1000, "GETs in each pattern of the -reads run")
	readTitles := flag.Int("read-titles", 20, "titles voted on in the -reads run")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *reads {
		if err := printReadCosts(ctx, os.Stdout, *readGets, *readTitles); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, o, os.Stdout); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	tables := dynamo.TablesFor("bench")
	meter := metering.New(map[string]string{tables.Events: dynamo.AttrCell, tables.Ballots: dynamo.AttrPK, tables.Tallies: dynamo.AttrPK})
	settings := local.DefaultSettings()
	stack, err := local.Start(ctx, local.Config{
		Addr: "127.0.0.1:0", Stage: "bench", Settings: settings,
		APIOptions: []func(*middleware.Stack) error{meter.APIOption},
		Log:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stack.Close(cctx)
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	fmt.Fprintf(out, "machine: %d cores, %s/%s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())

	// Throughput and cost, single-aspect submissions.
	tp, err := measure(ctx, stack, meter, client, loadgen.Config{
		Count: o.votes, Concurrency: o.concurrency, Voters: o.votes * 10, Titles: o.titles, Skew: "zipf", Aspects: 1,
		ChangeShare: 0.1, RetryShare: 0.02, Run: "tp",
	})
	if err != nil {
		return err
	}
	putRate, err := rawPutItem(ctx, stack, o.concurrency, o.votes)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "local_votes_per_s: %.0f\n", tp.votesPerS)
	fmt.Fprintf(out, "raw_putitem_per_s: %.0f\n", putRate)
	fmt.Fprintf(out, "local_ratio: %.2f\n", tp.votesPerS/putRate)

	// Latency at half the rate the pipeline took.
	acceptP99, lagP99, err := latency(ctx, stack, client, tp.votesPerS/2, o.latencyFor)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "accept_latency_p99_ms: %.1f\n", acceptP99)
	fmt.Fprintf(out, "tally_lag_p99_ms: %.1f\n", lagP99)

	fmt.Fprintf(out, "aws_requests_per_1k_votes: %.1f\n", float64(tp.counts.Total())/float64(tp.votes)*1000)
	for _, action := range tp.counts.Actions() {
		fmt.Fprintf(out, "  %s: %.1f\n", action, float64(tp.counts.Requests[action])/float64(tp.votes)*1000)
	}
	fmt.Fprintf(out, "  API Gateway requests: %.1f\n", float64(tp.httpRequests)/float64(tp.votes)*1000)
	for _, name := range []string{"receiver", "processor", "projector"} {
		fmt.Fprintf(out, "  Lambda %s invocations: %.1f\n", name, float64(tp.lambdas[name].Invocations)/float64(tp.votes)*1000)
	}
	printBill(out, "usd_per_million_votes", tp)

	five, err := measure(ctx, stack, meter, client, loadgen.Config{
		Count: max(o.votes/5, 1), Concurrency: o.concurrency, Voters: o.votes * 10, Titles: o.titles, Skew: "zipf", Aspects: 5,
		ChangeShare: 0.1, RetryShare: 0.02, Run: "five",
	})
	if err != nil {
		return err
	}
	printBill(out, "usd_per_million_votes_5asp", five)

	hot, err := measure(ctx, stack, meter, client, loadgen.Config{
		Count: o.votes, Concurrency: o.concurrency, Voters: o.votes * 10, Titles: 1, Skew: "uniform", Aspects: 1, Run: "hot",
	})
	if err != nil {
		return err
	}
	perVote := hot.counts.HottestWCU / float64(hot.votes)
	fmt.Fprintf(out, "hot_title_writes_per_1k_votes: %.1f\n", perVote*1000)
	fmt.Fprintf(out, "  busiest key: %s\n", hot.counts.HottestKey)
	fmt.Fprintf(out, "hot_title_max_votes_per_s: %.0f\n", 1000/perVote)
	fmt.Fprintf(out, "  usd_per_million_votes with every vote on one title: %.2f\n", hot.bill.Scale(float64(hot.votes), 1e6).Total())

	a := admin.New(dynamo.NewStage(stack.Admin.DynamoDB, stack.Tables).Deployment())
	if _, err := a.Seed(ctx, admin.SeedOptions{Events: o.rebuildEvents, Titles: o.titles, Seed: 7}); err != nil {
		return err
	}
	items, scanTime, err := a.RawScan(ctx, o.rebuildSegs, o.rebuildPage)
	if err != nil {
		return err
	}
	res, err := a.Rebuild(ctx, admin.RebuildOptions{Segments: o.rebuildSegs, PageSize: o.rebuildPage, Concurrency: 8})
	if err != nil {
		return err
	}
	scanRate := float64(items) / scanTime.Seconds()
	rebuildRate := float64(res.Events) / res.Elapsed.Seconds()
	fmt.Fprintf(out, "rebuild_events_per_s: %.0f\n", rebuildRate)
	fmt.Fprintf(out, "raw_scan_items_per_s: %.0f\n", scanRate)
	fmt.Fprintf(out, "rebuild_ratio: %.2f\n", rebuildRate/scanRate)
	fmt.Fprintf(out, "  (%d events, %d segments, pages of %d)\n", res.Events, o.rebuildSegs, o.rebuildPage)
	return printProjectorRates(ctx, out, o, tp.votesPerS)
}

type measured struct {
	votes        int64
	votesPerS    float64
	counts       metering.Counts
	httpRequests int64
	lambdas      map[string]metering.Lambda
	bill         metering.Bill
}

// measure sends a load and waits until every vote is tallied, counting
// every AWS call, HTTP request and Lambda invocation on the way.
func measure(ctx context.Context, stack *local.Stack, meter *metering.Meter, client *http.Client, cfg loadgen.Config) (measured, error) {
	if err := stack.WaitIdle(ctx); err != nil {
		return measured{}, err
	}
	meter.Reset()
	stack.ResetUsage()
	cfg.URL, cfg.Client, cfg.Seed = stack.URL, client, 42
	start := time.Now()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return measured{}, err
	}
	if err := stack.WaitIdle(ctx); err != nil {
		return measured{}, err
	}
	elapsed := time.Since(start)
	bad, err := loadgen.Check(ctx, client, stack.URL, res, time.Minute)
	if err != nil {
		return measured{}, err
	}
	if len(bad) > 0 {
		return measured{}, fmt.Errorf("run %s: %d titles tally differently from what was accepted, e.g. %s", cfg.Run, len(bad), bad[0].TitleID)
	}
	m := measured{votes: res.Votes, votesPerS: float64(res.Votes) / elapsed.Seconds(), counts: meter.Snapshot(), httpRequests: stack.Requests.Load(), lambdas: map[string]metering.Lambda{}}
	// The check's own GETs are not the pipeline's work.
	m.httpRequests = res.Sent + res.Retries
	for name, u := range stack.Usage() {
		if name == "query" {
			continue
		}
		mb := float64(local.DefaultSettings().MemoryMB[name])
		m.lambdas[name] = metering.Lambda{Invocations: u.Invocations, GBSeconds: u.Duration.Seconds() * mb / 1024}
	}
	m.bill = metering.ListPrices.Price(m.counts, m.httpRequests, m.lambdas)
	return m, nil
}

func printBill(out io.Writer, name string, m measured) {
	b := m.bill.Scale(float64(m.votes), 1e6)
	fmt.Fprintf(out, "%s: %.2f\n", name, b.Total())
	fmt.Fprintf(out, "  api_gateway: %.3f\n  lambda: %.3f\n  sqs: %.3f\n  dynamodb: %.3f (%.2f WCU, %.2f RCU per vote)\n",
		b.APIGateway, b.Lambda, b.SQS, b.DynamoDB, m.counts.WCU/float64(m.votes), m.counts.RCU/float64(m.votes))
}

// rawPutItem is the floor: conditional PutItem of event-sized items into a
// table of the event table's shape, on the same kumo, with the same client
// setup and concurrency.
func rawPutItem(ctx context.Context, stack *local.Stack, concurrency, n int) (float64, error) {
	db := stack.Admin.DynamoDB
	spec := dynamo.TablesFor("bench-raw").Specs()[0]
	spec.StreamView = ""
	if _, err := db.CreateTable(ctx, spec.CreateInput()); err != nil {
		return 0, err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, concurrency)
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				s := domain.Submission{VoterID: fmt.Sprintf("raw-%d", i), TitleID: "tt-raw", Votes: []domain.Choice{{Aspect: "story", Choice: "up"}}}
				e := s.Accept(fmt.Sprint(i), time.Now()).Events()[0]
				if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{
					TableName: aws.String(spec.Name), Item: dynamo.EventItem(e),
					ConditionExpression: aws.String("attribute_not_exists(#id)"), ExpressionAttributeNames: map[string]string{"#id": dynamo.AttrVoteID},
				}); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// latency runs a load at rate votes/s and, alongside it, a probe every
// 50 ms: one vote on a title of its own, timed from 202 until GET tallies
// shows it.
func latency(ctx context.Context, stack *local.Stack, client *http.Client, rate float64, d time.Duration) (acceptP99, lagP99 float64, err error) {
	if err := stack.WaitIdle(ctx); err != nil {
		return 0, 0, err
	}
	var lags []time.Duration
	var mu sync.Mutex
	probeCtx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	go func() {
		for i := 0; probeCtx.Err() == nil; i++ {
			probes.Add(1)
			go func() {
				defer probes.Done()
				if lag, ok := probe(probeCtx, client, stack.URL, fmt.Sprintf("probe-%d", i)); ok {
					mu.Lock()
					lags = append(lags, lag)
					mu.Unlock()
				}
			}()
			select {
			case <-probeCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL: stack.URL, Client: client, Rate: rate, Duration: d, Concurrency: 64, Voters: 1000000, Titles: 50, Skew: "zipf", Aspects: 1, Run: "lat", Seed: 3,
	})
	time.Sleep(3 * time.Second) // let the last probes land
	stopProbes()
	probes.Wait()
	if err != nil {
		return 0, 0, err
	}
	slices.Sort(lags)
	if len(lags) == 0 {
		return 0, 0, fmt.Errorf("no probe became visible")
	}
	p99 := lags[min(len(lags)-1, int(0.99*float64(len(lags))))]
	return ms(res.Percentile(0.99)), ms(p99), nil
}

func probe(ctx context.Context, client *http.Client, base, title string) (time.Duration, bool) {
	body := strings.NewReader(`{"voterId":"prober","titleId":"` + title + `","votes":[{"aspect":"overall","choice":"up"}]}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/votes", body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return 0, false
	}
	accepted := time.Now()
	for ctx.Err() == nil || time.Since(accepted) < 30*time.Second {
		got, err := loadgen.Tallies(context.WithoutCancel(ctx), client, base, title)
		if err == nil && got.Equal(projections.Counts{"overall": {"up": 1}}) {
			return time.Since(accepted), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/100) / 10 }
