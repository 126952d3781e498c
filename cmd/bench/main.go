// Command bench measures the pipeline on the local stack and prints its
// headline figures, one "name: value" line each, every one beside a floor
// measured in the same run (these machines are noisy: ratios hold where
// absolute times move). make bench runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
	"votes/internal/backoff"
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
	// The catalog run: catalogSubs submissions on catalogTitles titles,
	// each voting on 1 to 5 aspects.
	catalogTitles int
	catalogSubs   int
	// runs are the steps to run, by name (see steps).
	runs map[string]bool
	// projectorWindow and projectorBatch, when set, replace the projector
	// stream mapping's batch window and size; processorWindow and
	// processorBatch the submissions mapping's; readMaxAge the query's
	// ReadLimits.MaxAge. They measure what the deployed settings cost
	// beside others.
	projectorWindow time.Duration
	projectorBatch  int
	processorWindow time.Duration
	processorBatch  int
	readMaxAge      time.Duration
	// lagRate, when set, is the rate of the default run's latency load,
	// in place of half the throughput measured: two runs on a machine whose
	// speed moves then time the lag at the same rate.
	lagRate       float64
	analystTitles int
	analystGets   int
	// devVotes are the submissions sent to a votes dev process whose
	// memory is measured; idleFor is how long the quiet runs last.
	devVotes int
	idleFor  time.Duration
}

// steps are the bench's steps in the order they run; -runs picks some.
var steps = []string{"default", "five", "hot", "catalog", "rebuild", "projector", "analysts", "idle", "devrss"}

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
	flag.IntVar(&o.catalogTitles, "catalog-titles", 10000, "titles in the catalog run (Zipf skew)")
	flag.IntVar(&o.catalogSubs, "catalog-submissions", 6000, "submissions of 1 to 5 aspects in the catalog run")
	flag.IntVar(&o.devVotes, "dev-votes", 20000, "single-aspect submissions sent to a votes dev process to measure its memory")
	flag.DurationVar(&o.idleFor, "idle-for", 20*time.Second, "how long the quiet runs last (idle tally lag, memory after a load)")
	runs := flag.String("runs", strings.Join(steps, ","), "steps to run, of "+strings.Join(steps, ","))
	flag.DurationVar(&o.projectorWindow, "projector-window", 0, "projector stream batch window (0: the deployed one)")
	flag.IntVar(&o.projectorBatch, "projector-batch", 0, "projector stream batch size (0: the deployed one)")
	flag.DurationVar(&o.processorWindow, "processor-window", 0, "submissions queue batch window (0: the deployed one)")
	flag.IntVar(&o.processorBatch, "processor-batch", 0, "submissions queue batch size (0: the deployed one)")
	flag.DurationVar(&o.readMaxAge, "read-max-age", 0, "how old a tally answered may be, the query's ReadLimits.MaxAge (0: the deployed one)")
	flag.Float64Var(&o.lagRate, "lag-rate", 0, "submissions/s of the default run's latency load (0: half the throughput measured)")
	reads := flag.Bool("reads", false, "measure only what a tally GET costs in read units, and exit")
	flag.IntVar(&o.analystTitles, "analyst-titles", 10000, "titles seeded in the analysts step")
	flag.IntVar(&o.analystGets, "analyst-gets", 1000, "GETs of each listing in the analysts step")
	readGets := flag.Int("read-gets", 1000, "GETs in each pattern of the -reads run")
	readTitles := flag.Int("read-titles", 20, "titles voted on in the -reads run")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	o.runs = map[string]bool{}
	for _, r := range strings.Split(*runs, ",") {
		if !slices.Contains(steps, r) {
			fmt.Fprintf(os.Stderr, "bench: -runs: no step %q; steps are %s\n", r, strings.Join(steps, ","))
			os.Exit(2)
		}
		o.runs[r] = true
	}
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

// run prints every figure, one step after another on one local stack.
func run(ctx context.Context, o options, out io.Writer) error {
	b, err := startBench(ctx, o, out)
	if err != nil {
		return err
	}
	defer b.close()
	fmt.Fprintf(out, "machine: %d cores, %s/%s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(out, "projector_stream_batch: %d records or %s\n", b.settings.Projector.BatchSize, b.settings.Projector.Window)
	fmt.Fprintf(out, "processor_queue_batch: %d messages or %s\n", b.settings.Processor.BatchSize, b.settings.Processor.Window)
	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"default", b.defaultRuns}, {"five", b.fiveAspects}, {"hot", b.hotTitle}, {"catalog", b.catalog}, {"rebuild", b.rebuild},
		{"projector", func(ctx context.Context) error { return printProjectorRates(ctx, b.out, b.o, b.ingestPerS) }},
		{"analysts", func(ctx context.Context) error {
			return printAnalystCosts(ctx, b.out, b.o.analystTitles, b.o.analystGets)
		}},
		{"idle", b.idleLag}, {"devrss", b.devRSS},
	} {
		if !o.runs[step.name] {
			continue
		}
		began := time.Now()
		if err := step.run(ctx); err != nil {
			return err
		}
		// On stderr: how long each step takes, to size the runs.
		fmt.Fprintf(os.Stderr, "bench: step %s took %s\n", step.name, time.Since(began).Round(time.Second))
	}
	return nil
}

// defaultRuns prints the throughput, latency and cost of single-aspect
// submissions on o.titles titles, and the same run's bill with a Lambda
// function URL in place of the HTTP API.
func (b *bench) defaultRuns(ctx context.Context) error {
	tp, err := b.throughput(ctx)
	if err != nil {
		return err
	}
	// Latency at half the rate the pipeline took, unless told a rate.
	rate := tp.submissionsPerS / 2
	if b.o.lagRate > 0 {
		rate = b.o.lagRate
	}
	if err := b.printLatency(ctx, "", b.zipfLoad(0, 1, "lat"), rate); err != nil {
		return err
	}
	b.printRequests("", tp)
	printBill(b.out, "usd_per_million_votes", tp, b.stack.Tables)
	b.ingestPerS = tp.votesPerS
	return b.printLean(tp)
}

// bench is a run's local stack, with the meter on its SDK clients and the
// HTTP client its loads go through.
type bench struct {
	o        options
	out      io.Writer
	settings local.Settings
	stack    *local.Stack
	meter    *metering.Meter
	// queryMeter meters the query function alone (meter too), so that a
	// latency run can say what its probes' GETs cost.
	queryMeter *metering.Meter
	client     *http.Client
	// ingestPerS is the pipeline's rate in the default run (votes a
	// second), which the projector's own rate is compared with.
	ingestPerS float64
}

// startBench starts the local stack with a meter on every SDK client.
func startBench(ctx context.Context, o options, out io.Writer) (*bench, error) {
	tables := dynamo.TablesFor("bench")
	meter := metering.New(map[string]string{tables.Events: dynamo.AttrCell, tables.Ballots: dynamo.AttrPK, tables.Tallies: dynamo.AttrPK, tables.Titles: dynamo.AttrPK})
	settings := local.DefaultSettings()
	// The ranker's refresh is a cost per minute, measured on its own in the
	// analysts step; here it would land in whichever run it fell in.
	settings.RankEvery = 0
	if o.projectorWindow > 0 {
		settings.Projector.Window = o.projectorWindow
	}
	if o.projectorBatch > 0 {
		settings.Projector.BatchSize = o.projectorBatch
	}
	if o.processorWindow > 0 {
		settings.Processor.Window = o.processorWindow
	}
	if o.processorBatch > 0 {
		settings.Processor.BatchSize = o.processorBatch
	}
	if o.readMaxAge > 0 {
		settings.Reads.MaxAge = o.readMaxAge
	}
	// The local query function is one container, and the latency probes'
	// GETs (20 new titles a second, each read until it shows its vote)
	// would wait on its budget of sums, not on the pipeline. The deployed
	// function may run as many containers as its reserved concurrency, each
	// with a budget of its own: the bench's one container gets them all.
	settings.Reads.SumsPerSecond *= float64(settings.ReservedConcurrency["query"])
	settings.Reads.SumBurst *= settings.ReservedConcurrency["query"]
	queryMeter := metering.New(nil)
	stack, err := local.Start(ctx, local.Config{
		Addr: "127.0.0.1:0", Stage: "bench", Settings: settings,
		APIOptions: []func(*middleware.Stack) error{meter.APIOption},
		FunctionAPIOptions: func(fn string) []func(*middleware.Stack) error {
			if fn != "query" {
				return nil
			}
			return []func(*middleware.Stack) error{queryMeter.APIOption}
		},
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	return &bench{o: o, out: out, settings: settings, stack: stack, meter: meter, queryMeter: queryMeter, client: client}, nil
}

func (b *bench) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.stack.Close(ctx)
}

// zipfLoad is the throughput and cost runs' load: submissions of aspects
// aspects on o.titles titles (Zipf skew), with some changed and some resent.
func (b *bench) zipfLoad(count, aspects int, run string) loadgen.Config {
	return loadgen.Config{
		Count: count, Concurrency: b.o.concurrency, Voters: b.o.votes * 10, Titles: b.o.titles, Skew: "zipf", Aspects: aspects,
		ChangeShare: 0.1, RetryShare: 0.02, Run: run,
	}
}

// throughput measures single-aspect submissions against the floor of raw
// PutItems on the same emulator, and returns the run for its costs.
func (b *bench) throughput(ctx context.Context) (measured, error) {
	tp, err := measure(ctx, b.stack, b.meter, b.client, b.zipfLoad(b.o.votes, 1, "tp"), b.checker(b.o.titles))
	if err != nil {
		return measured{}, err
	}
	putRate, err := rawPutItem(ctx, b.stack, b.o.concurrency, b.o.votes)
	if err != nil {
		return measured{}, err
	}
	fmt.Fprintf(b.out, "local_votes_per_s: %.0f\n", tp.votesPerS)
	fmt.Fprintf(b.out, "raw_putitem_per_s: %.0f\n", putRate)
	fmt.Fprintf(b.out, "local_ratio: %.2f\n", tp.votesPerS/putRate)
	return tp, nil
}

// printLatency prints the accept and tally-lag latencies of load at rate
// submissions per second; suffix names the run.
func (b *bench) printLatency(ctx context.Context, suffix string, load loadgen.Config, rate float64) error {
	lat, err := latency(ctx, b.stack, b.client, b.queryMeter, load, rate, b.o.latencyFor)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "accept_latency_p99_ms%s: %.1f\n", suffix, lat.acceptP99)
	fmt.Fprintf(b.out, "tally_lag_p99_ms%s: %.1f\n", suffix, lat.lagP99)
	fmt.Fprintf(b.out, "  (at %.0f submissions/s; %d probes, %d of their GETs refused over the read budget, %d failed otherwise)\n",
		rate, lat.probes, lat.refused, lat.run.failed.Load())
	printLagStages(b.out, lat.run, lat.took, lat.query, lat.usage)
	return nil
}

// printRequests prints what a run asked of AWS, per thousand votes;
// suffix names the run.
func (b *bench) printRequests(suffix string, m measured) {
	perK := func(n int64) float64 { return float64(n) / float64(m.votes) * 1000 }
	fmt.Fprintf(b.out, "aws_requests_per_1k_votes%s: %.1f\n", suffix, perK(m.counts.Total()))
	for _, action := range m.counts.Actions() {
		fmt.Fprintf(b.out, "  %s: %.1f\n", action, perK(m.counts.Requests[action]))
	}
	fmt.Fprintf(b.out, "  API Gateway requests: %.1f\n", perK(m.httpRequests))
	for _, name := range []string{"receiver", "processor", "projector"} {
		fmt.Fprintf(b.out, "  Lambda %s invocations: %.1f\n", name, perK(m.lambdas[name].Invocations))
	}
}

// fiveAspects prints the cost of submissions voting on five aspects.
func (b *bench) fiveAspects(ctx context.Context) error {
	five, err := measure(ctx, b.stack, b.meter, b.client, b.zipfLoad(max(b.o.votes/5, 1), 5, "five"), b.checker(b.o.titles))
	if err != nil {
		return err
	}
	printBill(b.out, "usd_per_million_votes_5asp", five, b.stack.Tables)
	return nil
}

// hotTitle prints what every vote on one title costs its busiest partition
// key, and the rate that key allows.
func (b *bench) hotTitle(ctx context.Context) error {
	hot, err := measure(ctx, b.stack, b.meter, b.client, loadgen.Config{
		Count: b.o.votes, Concurrency: b.o.concurrency, Voters: b.o.votes * 10, Titles: 1, Skew: "uniform", Aspects: 1, Run: "hot",
	}, b.checkAPI)
	if err != nil {
		return err
	}
	perVote := hot.counts.HottestWCU / float64(hot.votes)
	fmt.Fprintf(b.out, "hot_title_writes_per_1k_votes: %.1f\n", perVote*1000)
	fmt.Fprintf(b.out, "  busiest key: %s\n", hot.counts.HottestKey)
	fmt.Fprintf(b.out, "hot_title_max_votes_per_s: %.0f\n", 1000/perVote)
	fmt.Fprintf(b.out, "  usd_per_million_votes with every vote on one title: %.2f\n", hot.bill.Scale(float64(hot.votes), 1e6).Total())
	return nil
}

// rebuild seeds events and prints the rebuild's rate against the floor of
// a raw parallel scan of the same table.
func (b *bench) rebuild(ctx context.Context) error {
	a := admin.New(dynamo.NewStage(b.stack.Admin.DynamoDB, b.stack.Tables).Deployment())
	if _, err := a.Seed(ctx, admin.SeedOptions{Events: b.o.rebuildEvents, Titles: b.o.titles, Seed: 7}); err != nil {
		return err
	}
	items, scanTime, err := a.RawScan(ctx, b.o.rebuildSegs, b.o.rebuildPage)
	if err != nil {
		return err
	}
	res, err := a.Rebuild(ctx, admin.RebuildOptions{Segments: b.o.rebuildSegs, PageSize: b.o.rebuildPage, Concurrency: 8})
	if err != nil {
		return err
	}
	scanRate := float64(items) / scanTime.Seconds()
	rebuildRate := float64(res.Events) / res.Elapsed.Seconds()
	fmt.Fprintf(b.out, "rebuild_events_per_s: %.0f\n", rebuildRate)
	fmt.Fprintf(b.out, "raw_scan_items_per_s: %.0f\n", scanRate)
	fmt.Fprintf(b.out, "rebuild_ratio: %.2f\n", rebuildRate/scanRate)
	fmt.Fprintf(b.out, "  (%d events, %d segments, pages of %d)\n", res.Events, b.o.rebuildSegs, b.o.rebuildPage)
	return nil
}

type measured struct {
	votes           int64
	submissions     int64 // accepted, resent ones not counted
	votesPerS       float64
	submissionsPerS float64
	counts          metering.Counts
	httpRequests    int64
	lambdas         map[string]metering.Lambda
	bill            metering.Bill
}

// checker compares every title of a run with what the run must produce,
// and returns the titles that differ.
type checker func(ctx context.Context, res loadgen.Result) ([]loadgen.Mismatch, error)

// checker is how a run on titles titles is checked: through the API, as a
// client would read it, up to 1,000 titles (5 s of the query container's
// sum budget); beyond, from the cells.
func (b *bench) checker(titles int) checker {
	if titles <= 1000 {
		return b.checkAPI
	}
	return b.checkCells
}

// checkAPI reads every title's tallies through the HTTP API, as a client
// would.
func (b *bench) checkAPI(ctx context.Context, res loadgen.Result) ([]loadgen.Mismatch, error) {
	return loadgen.Check(ctx, b.client, b.stack.URL, res, time.Minute)
}

// measure sends a load and waits until every vote is tallied, counting
// every AWS call, HTTP request and Lambda invocation on the way; then
// check must find every title as the run left it.
func measure(ctx context.Context, stack *local.Stack, meter *metering.Meter, client *http.Client, cfg loadgen.Config, check checker) (measured, error) {
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
	// Counted before the check: its reads are not the pipeline's work.
	counts, usage := meter.Snapshot(), stack.Usage()
	bad, err := check(ctx, res)
	if err != nil {
		return measured{}, err
	}
	if len(bad) > 0 {
		return measured{}, fmt.Errorf("run %s: %d titles tally differently from what was accepted, e.g. %s", cfg.Run, len(bad), bad[0].TitleID)
	}
	return measuredOf(res, elapsed, counts, usage), nil
}

// measuredOf is a run's figures: the load's result, how long it took until
// the pipeline was idle, the metered calls and the functions' usage (the
// query function's left out: the check's reads are not the run's work).
func measuredOf(res loadgen.Result, elapsed time.Duration, counts metering.Counts, usage map[string]local.Usage) measured {
	m := measured{
		votes: res.Votes, submissions: res.Accepted, votesPerS: float64(res.Votes) / elapsed.Seconds(), submissionsPerS: float64(res.Accepted) / elapsed.Seconds(),
		counts: counts, httpRequests: res.Sent + res.Retries, lambdas: map[string]metering.Lambda{},
	}
	for name, u := range usage {
		if name == "query" {
			continue
		}
		mb := float64(local.DefaultSettings().MemoryMB[name])
		m.lambdas[name] = metering.Lambda{Invocations: u.Invocations, GBSeconds: u.Duration.Seconds() * mb / 1024}
	}
	m.bill = metering.ListPrices.Price(m.counts, m.httpRequests, m.lambdas)
	return m
}

// printBill prints a run's bill per million votes by service, and its
// write units per vote by table.
func printBill(out io.Writer, name string, m measured, tables dynamo.Tables) {
	b := m.bill.Scale(float64(m.votes), 1e6)
	fmt.Fprintf(out, "%s: %.2f\n", name, b.Total())
	fmt.Fprintf(out, "  api_gateway: %.3f\n  lambda: %.3f\n  sqs: %.3f\n  dynamodb: %.3f (%.2f WCU, %.2f RCU per vote)\n",
		b.APIGateway, b.Lambda, b.SQS, b.DynamoDB, m.counts.WCU/float64(m.votes), m.counts.RCU/float64(m.votes))
	fmt.Fprintf(out, "  wcu_per_vote_by_table: %s\n", wcuByTable(m, tables))
	// The analysts' projections: the title index, kept by the projector
	// (the rankings are refreshed on a schedule, a cost per minute, not per
	// vote: see the analysts step).
	analyst := (m.counts.TableWCU[tables.Titles]*metering.ListPrices.DynamoWritePerMillion +
		m.counts.TableRCU[tables.Titles]*metering.ListPrices.DynamoReadPerMillion) / float64(m.votes)
	fmt.Fprintf(out, "  analyst_usd_per_million_votes: %.3f\n", analyst)
}

// wcuByTable is "events 1.00 ballots 1.00 tallies 1.23": a run's write
// units per vote in each table, and in any other table written.
func wcuByTable(m measured, tables dynamo.Tables) string {
	var parts []string
	named := map[string]bool{}
	for _, t := range []struct{ label, table string }{{"events", tables.Events}, {"ballots", tables.Ballots}, {"tallies", tables.Tallies}} {
		named[t.table] = true
		parts = append(parts, fmt.Sprintf("%s %.2f", t.label, m.counts.TableWCU[t.table]/float64(m.votes)))
	}
	for _, table := range slices.Sorted(maps.Keys(m.counts.TableWCU)) {
		if !named[table] {
			parts = append(parts, fmt.Sprintf("%s %.2f", table, m.counts.TableWCU[table]/float64(m.votes)))
		}
	}
	return strings.Join(parts, " ")
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

// latencies are a latency run's figures.
type latencies struct {
	acceptP99, lagP99 float64 // milliseconds
	probes, refused   int64   // probes timed; their GETs answered 503
	run               *probeRun
	took              time.Duration // from the first probe to the last one's end
	query             metering.Counts
	usage             map[string]local.Usage
}

// latency runs load at rate submissions/s for d and, alongside it, a probe
// every 50 ms: one vote on a title of its own, timed from 202 until GET
// tallies shows it. One probe in followEvery is also followed stage by
// stage. queryMeter meters the query function alone.
func latency(ctx context.Context, stack *local.Stack, client *http.Client, queryMeter *metering.Meter, load loadgen.Config, rate float64, d time.Duration) (latencies, error) {
	if err := stack.WaitIdle(ctx); err != nil {
		return latencies{}, err
	}
	stages, err := newStageReader(ctx, stack)
	if err != nil {
		return latencies{}, err
	}
	run := &probeRun{}
	queryMeter.Reset()
	before := stack.Usage()
	start := time.Now()
	stopProbes := startProbes(ctx, 50*time.Millisecond, func(ctx context.Context, i int) (time.Duration, bool) {
		title := fmt.Sprintf("probe-%s-%d", load.Run, i)
		if i%followEvery != 0 {
			return probe(ctx, client, stack.URL, title, run, nil)
		}
		return probe(ctx, client, stack.URL, title, run, stages)
	})
	load.URL, load.Client, load.Rate, load.Duration, load.Count, load.Voters, load.Seed = stack.URL, client, rate, d, 0, 1000000, 3
	load.ChangeShare, load.RetryShare = 0, 0
	res, err := loadgen.Run(ctx, load)
	_ = backoff.Sleep(ctx, 3*time.Second) // let the last probes land
	lags := stopProbes()
	if err != nil {
		return latencies{}, err
	}
	took, usage := time.Since(start), stack.Usage()
	for name, u := range usage {
		u.Invocations -= before[name].Invocations
		u.Duration -= before[name].Duration
		usage[name] = u
	}
	slices.Sort(lags)
	if len(lags) == 0 {
		return latencies{}, fmt.Errorf("no probe became visible")
	}
	p99 := lags[min(len(lags)-1, int(0.99*float64(len(lags))))]
	return latencies{acceptP99: ms(res.Percentile(0.99)), lagP99: ms(p99), probes: int64(len(lags)), refused: run.refused.Load(),
		run: run, took: took, query: queryMeter.Snapshot(), usage: usage}, nil
}

// startProbes starts probe number i every interval until the returned stop
// is called; stop cancels the probes' context, waits for every probe
// started, and returns the lags of those that succeeded.
//
// The loop that starts probes is itself counted in the WaitGroup, so every
// Add happens while the count is above zero: none can come after Wait has
// seen zero and returned, and no probe can append to the lags once stop has
// handed them back.
func startProbes(ctx context.Context, interval time.Duration, probe func(ctx context.Context, i int) (time.Duration, bool)) (stop func() []time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu     sync.Mutex
		lags   []time.Duration
		probes sync.WaitGroup
	)
	probes.Add(1)
	go func() {
		defer probes.Done()
		for i := 0; ctx.Err() == nil; i++ {
			probes.Add(1)
			go func() {
				defer probes.Done()
				if lag, ok := probe(ctx, i); ok {
					mu.Lock()
					lags = append(lags, lag)
					mu.Unlock()
				}
			}()
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
	}()
	return func() []time.Duration {
		cancel()
		probes.Wait()
		mu.Lock()
		defer mu.Unlock()
		return lags
	}
}

// probeVoter casts every probe's vote.
const probeVoter = "prober"

// postProbe posts the probe's vote (probeVoter, overall up) on title and
// returns its vote ID, or false if it was not accepted.
func postProbe(ctx context.Context, client *http.Client, base, title string) (string, bool) {
	body := strings.NewReader(`{"voterId":"` + probeVoter + `","titleId":"` + title + `","votes":[{"aspect":"overall","choice":"up"}]}`)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/votes", body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var accepted struct {
		VoteIDs []string `json:"voteIds"`
	}
	if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&accepted) != nil || len(accepted.VoteIDs) != 1 {
		return "", false
	}
	return accepted.VoteIDs[0], true
}

// probe votes once on title and waits until its tallies show the vote;
// run counts the GETs sent on the way and those answered 503. With stages,
// the vote is also followed stage by stage into run.
func probe(ctx context.Context, client *http.Client, base, title string, run *probeRun, stages *stageReader) (time.Duration, bool) {
	voteID, posted := postProbe(ctx, client, base, title)
	if !posted {
		return 0, false
	}
	accepted := time.Now()
	if stages != nil {
		// Bounded: a follower that cannot read the tables gives up.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		shown := make(chan time.Duration, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if at, ok := stages.follow(fctx, title, probeVoter, voteID, accepted, shown); ok {
				run.addStages(at)
			}
		}()
		lag, ok := waitShown(ctx, client, base, title, accepted, run)
		if ok {
			shown <- lag // the follower waits for it once it has seen the index
		} else {
			cancel()
		}
		<-done
		cancel()
		return lag, ok
	}
	return waitShown(ctx, client, base, title, accepted, run)
}

// waitShown GETs title's tallies until they show the probe's vote, for at
// least 30 s after accepted.
func waitShown(ctx context.Context, client *http.Client, base, title string, accepted time.Time, run *probeRun) (time.Duration, bool) {
	for ctx.Err() == nil || time.Since(accepted) < 30*time.Second {
		run.gets.Add(1)
		got, err := loadgen.Tallies(context.WithoutCancel(ctx), client, base, title)
		if err == nil && got.Equal(projections.Counts{"overall": {"up": 1}}) {
			return time.Since(accepted), true
		}
		switch {
		case refusedOverBudget(err):
			run.refused.Add(1)
		case err != nil:
			run.failed.Add(1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

// refusedOverBudget says whether a GET's error is the query function's 503,
// which it answers when a tally would need a sum of cells over its budget
// (or the tally cannot be read at all, which it logs): not a timeout or
// another server error on the way.
func refusedOverBudget(err error) bool {
	return errors.Is(err, loadgen.ErrUnavailable) && strings.Contains(err.Error(), "503 Service Unavailable")
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/100) / 10 }
