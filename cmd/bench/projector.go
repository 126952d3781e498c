package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
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

// projectorRun is the projector folding a backlog on one stream shard.
type projectorRun struct {
	parallel int             // the stream mapping's parallelization factor
	events   int64           // events in the backlog
	perS     float64         // events folded into the tallies per second
	putPerS  float64         // the floor: the conditional PutItems that built the backlog, per second
	peak     int64           // the most projector invocations that ran at once
	invokes  int64           // projector invocations
	counts   metering.Counts // the projector's own AWS calls, its mapping's included
}

// printProjectorRates measures the projector's own sustained rate with the
// default parallelization factor and with 1, and prints each beside its
// floor and the pipeline's ingest rate measured earlier in the run; then
// the tally lag at half the projector's rate, a load it keeps up with
// whatever the machine's speed that day.
func printProjectorRates(ctx context.Context, out io.Writer, o options, ingestPerS float64) error {
	if o.projectorEvents <= 0 {
		return nil
	}
	par := local.DefaultSettings().Projector.Parallelization
	runs := map[int]projectorRun{}
	for _, p := range []int{par, 1} {
		r, err := projectorRate(ctx, local.Config{Stage: fmt.Sprintf("bench-projector-%d", p)}, p, o.projectorEvents, o.titles)
		if err != nil {
			return err
		}
		runs[p] = r
	}
	n, one := runs[par], runs[1]
	fmt.Fprintf(out, "projector_votes_per_s: %.0f\n", n.perS)
	printProjectorRun(out, n)
	fmt.Fprintf(out, "projector_votes_per_s_p1: %.0f\n", one.perS)
	printProjectorRun(out, one)
	if ingestPerS > 0 {
		fmt.Fprintf(out, "projector_ingest_ratio: %.2f\n", n.perS/ingestPerS)
	}
	lag, err := lagAt(ctx, n.perS/2, o.latencyFor)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cell_lag_p99_ms_half_projector: %.1f\n", lag)
	fmt.Fprintf(out, "  (from 202 to the tally cells, at %.0f votes/s for %v)\n", n.perS/2, o.latencyFor)
	return nil
}

func printProjectorRun(out io.Writer, r projectorRun) {
	fmt.Fprintf(out, "  (parallelization %d, %d events on one stream shard, %d invocations, at most %d at once)\n", r.parallel, r.events, r.invokes, r.peak)
	fmt.Fprintf(out, "  seed_putitem_per_s: %.0f (the floor, just before; ratio %.2f)\n", r.putPerS, r.perS/r.putPerS)
	fmt.Fprintf(out, "  projector requests per vote: %.2f (%.2f write units)\n", float64(r.counts.Total())/float64(r.events), r.counts.WCU/float64(r.events))
	for _, action := range r.counts.Actions() {
		fmt.Fprintf(out, "    %s: %.3f\n", action, float64(r.counts.Requests[action])/float64(r.events))
	}
}

// lagAt is the 99th percentile of how long a vote takes to reach the tally
// cells, on a fresh stack with the default settings under a load of rate
// votes/s for d. A probe every 200 ms votes on a title of its own, through
// the API, and reads its cells every 50 ms until they count it. It reads
// the cells, not GET tallies: the query function's 2 s cache would add up
// to 2 s, and its sum budget (10 a second) refuses probes of new titles
// beyond it, whose retries then load the machine more the longer the lag.
func lagAt(ctx context.Context, rate float64, d time.Duration) (float64, error) {
	stack, err := local.Start(ctx, local.Config{Addr: "127.0.0.1:0", Stage: "bench-projector-lag", Settings: local.DefaultSettings(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	defer (&backlog{stack: stack}).close()
	reg, err := dynamo.NewRegistries(stack.Admin.DynamoDB, stack.Tables.Tallies).Load(ctx, true)
	if err != nil {
		return 0, err
	}
	cells := dynamo.NewCellStore(stack.Admin.DynamoDB, stack.Tables.Tallies, reg.Active)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

	var (
		mu     sync.Mutex
		lags   []time.Duration
		probes sync.WaitGroup
	)
	probeCtx, stopProbes := context.WithCancel(ctx)
	probes.Go(func() {
		for i := 0; probeCtx.Err() == nil; i++ {
			probes.Go(func() {
				if lag, ok := cellProbe(probeCtx, client, stack.URL, cells, fmt.Sprintf("cell-probe-%d", i)); ok {
					mu.Lock()
					lags = append(lags, lag)
					mu.Unlock()
				}
			})
			select {
			case <-probeCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	_, err = loadgen.Run(ctx, loadgen.Config{
		URL: stack.URL, Client: client, Rate: rate, Duration: d, Concurrency: 64, Voters: 1000000, Titles: 50, Skew: "zipf", Aspects: 1, Run: "plag", Seed: 5,
	})
	time.Sleep(3 * time.Second) // let the last probes land
	stopProbes()
	probes.Wait()
	if err != nil {
		return 0, err
	}
	if len(lags) == 0 {
		return 0, errors.New("no probe reached the tally cells")
	}
	slices.Sort(lags)
	return ms(lags[min(len(lags)-1, int(0.99*float64(len(lags))))]), nil
}

// cellProbe votes once on title and says how long, from the 202, the vote
// took to be counted in title's cells; false if it was not accepted or
// not counted within 30 s.
func cellProbe(ctx context.Context, client *http.Client, base string, cells *dynamo.CellStore, title string) (time.Duration, bool) {
	if _, ok := postProbe(ctx, client, base, title); !ok {
		return 0, false
	}
	accepted := time.Now()
	for time.Since(accepted) < 30*time.Second {
		got, err := cells.Tally(context.WithoutCancel(ctx), title)
		if err == nil && got.Equal(projections.Counts{"overall": {"up": 1}}) {
			return time.Since(accepted), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, false
}

// projectorRate starts a stack of its own with the stream mapping at
// parallelization parallel and held, as a disabled event-source mapping is,
// so that a backlog builds. It writes events events into the event table as
// the processor does, a conditional PutItem each (the seed's events: Zipf
// over titles, and voters who change their votes), releases the mapping and
// times it until the projector has taken every record. The tallies must
// then equal the fold of the event table.
// cfg names the stage and the emulator; the rest is set here.
func projectorRate(ctx context.Context, cfg local.Config, parallel, events, titles int) (projectorRun, error) {
	b, err := startBacklog(ctx, cfg, parallel)
	if err != nil {
		return projectorRun{}, err
	}
	defer b.close()
	run := projectorRun{parallel: parallel}
	if run.events, run.putPerS, err = b.seed(ctx, events, titles); err != nil {
		return run, err
	}
	if run.perS, err = b.fold(ctx, run.events); err != nil {
		return run, err
	}
	run.peak = b.stack.StreamProgress().PeakInvocations
	run.invokes = b.stack.Usage()["projector"].Invocations
	run.counts = b.meter.Snapshot()
	return run, b.check(ctx, run.events)
}

// backlog is a stack whose stream mapping is held while events pile up.
type backlog struct {
	stack    *local.Stack
	admin    *admin.Admin
	meter    *metering.Meter // the projector's calls, from the release on
	parallel int
}

func startBacklog(ctx context.Context, cfg local.Config, parallel int) (*backlog, error) {
	cfg.Settings = local.DefaultSettings()
	cfg.Settings.Projector.Parallelization = parallel
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	tables := dynamo.TablesFor(cfg.Stage)
	meter := metering.New(map[string]string{tables.Events: dynamo.AttrCell, tables.Ballots: dynamo.AttrPK, tables.Tallies: dynamo.AttrPK, tables.Titles: dynamo.AttrPK})
	cfg.FunctionAPIOptions = func(function string) []func(*middleware.Stack) error {
		if function != "projector" {
			return nil
		}
		return []func(*middleware.Stack) error{meter.APIOption}
	}
	stack, err := local.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	stack.HoldStream()
	d := dynamo.NewStage(stack.Admin.DynamoDB, stack.Tables).Deployment()
	d.Loader = appendLoader{dynamo.NewEventStore(stack.Admin.DynamoDB, stack.Tables.Events)}
	return &backlog{stack: stack, admin: admin.New(d), meter: meter, parallel: parallel}, nil
}

// seed writes the backlog and says how many events it wrote, how fast.
func (b *backlog) seed(ctx context.Context, events, titles int) (int64, float64, error) {
	start := time.Now()
	n, err := b.admin.Seed(ctx, admin.SeedOptions{Events: events, Titles: titles, Seed: 11})
	return n, float64(n) / time.Since(start).Seconds(), err
}

// fold releases the stream mapping and returns the records taken per
// second once n of them have been.
func (b *backlog) fold(ctx context.Context, n int64) (float64, error) {
	before := b.stack.StreamProgress().Records
	b.meter.Reset()
	start := time.Now()
	b.stack.ReleaseStream()
	for b.stack.StreamProgress().Records-before < n {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if time.Since(start) > 10*time.Minute {
			return 0, fmt.Errorf("projector (parallelization %d): %d of %d records taken after 10 minutes", b.parallel, b.stack.StreamProgress().Records-before, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// check fails unless no batch was given up on and the tallies equal the
// fold of the event table, which holds the n events seeded.
func (b *backlog) check(ctx context.Context, n int64) error {
	failed, err := b.stack.QueueDepth(ctx, b.stack.Queues.ProjectorFailed)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("projector (parallelization %d): %d stream batches given up on", b.parallel, failed)
	}
	res, err := b.admin.Verify(ctx, "", nil)
	if err != nil {
		return err
	}
	if res.Events != n || len(res.Differences) > 0 {
		return fmt.Errorf("projector (parallelization %d): %d events stored of %d seeded, %d counts differ from the fold of the event table",
			b.parallel, res.Events, n, len(res.Differences))
	}
	return nil
}

// close deletes the stack's tables, so that the emulator's memory (and
// its garbage collection, which the next run pays for) does not grow from
// one run to the next, then stops the stack without waiting for it to go
// idle: there is nothing left to wait for.
func (b *backlog) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, spec := range b.stack.Tables.Specs() {
		_, _ = b.stack.Admin.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(spec.Name)})
	}
	done, stop := context.WithCancel(ctx)
	stop()
	_ = b.stack.Close(done)
}

// appendLoader writes seeded events as the processor does, a conditional
// PutItem each: on kumo BatchWriteItem, the seed's usual path, emits no
// stream records, and the projector must see every event.
type appendLoader struct{ store *dynamo.EventStore }

func (l appendLoader) Load(ctx context.Context, events []domain.VoteCast) error {
	for _, e := range events {
		outcome, err := l.store.Append(ctx, []domain.VoteCast{e})
		if err != nil {
			return err
		}
		if outcome == domain.Conflict {
			return errors.New("seed: a conflicting vote under an existing vote ID")
		}
	}
	return nil
}
