package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"votes/domain"
	"votes/infra/faults"
	"votes/infra/functions"
	"votes/infra/local"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address the HTTP API listens on (127.0.0.1:0: any free port)")
	name := fs.String("name", "", "the name other commands pick this stack by with --stack (default: its port, as 8080)")
	catalogSpec := fs.String("catalog", os.Getenv("VOTES_CATALOG"), `aspects and choices, as "overall=up|down;story=up|down" (default: the standard five, up or down)`)
	verbose := fs.Bool("v", false, "log every batch the functions process")
	overlap := fs.Bool("overlap", false, "deliver every SQS and stream batch to two concurrent invocations, as AWS may")
	parallel := fs.Int("parallel", local.DefaultSettings().Projector.Parallelization, "projector invocations per stream shard at once (1 to 10), the stream mapping's parallelization factor")
	faultRate := fs.Float64("faults", 0, "fraction (0 to 1) of the functions' SDK calls that fail, half before sending and half after the emulator applied them")
	auth := fs.String("auth", "none", `"none" (the body's voterId is taken on trust) or "jwt" (POST /votes needs a token, as API Gateway's JWT authorizer)`)
	jwtKey := fs.String("jwt-key", "", "with --auth jwt: file of an HMAC secret (HS256, at least 32 bytes) or a PEM RSA public or private key (RS256)")
	jwks := fs.String("jwks", "", "with --auth jwt: JSON Web Key Set file, instead of --jwt-key")
	issuer := fs.String("jwt-issuer", defaultIssuer, "with --auth jwt: the issuer tokens must have")
	audience := fs.String("jwt-audience", defaultAudience, "with --auth jwt: the audience tokens must have")
	awsAddr := fs.String("aws-addr", "", "address the AWS emulator listens on, as 127.0.0.1:4566 (default: a free port, printed)")
	dataDir := fs.String("data", os.Getenv("KUMO_DATA_DIR"), "keep the tables, queues and stream position in this directory across restarts (default: in memory only)")
	demo := fs.Bool("demo", false, "fill the stack with three days of votes over a dozen titles, to look at the dashboard and the CLI at once")
	ingest := fs.String("ingest", local.IngestAPI, `how POST /votes reaches the receiver: "api" (the HTTP API's route, its JWT authorizer in front) or "url" (the receiver's function URL, which verifies tokens itself)`)
	runtimeName := fs.String("runtime", local.RuntimeInProcess, `what runs the functions: "inproc" (their handlers in this process) or "rie" (each function's bootstrap, built as the zips are, in processes of its own under AWS's Lambda Runtime Interface Emulator: cold starts, isolation and timeouts as in Lambda, slower)`)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	if err := checkDevAddr(*addr, *name); err != nil {
		return err
	}
	if err := checkAWSAddr(*awsAddr); err != nil {
		return err
	}
	var unlock func()
	if *dataDir != "" {
		var err error
		if unlock, err = useDataDir(*dataDir); err != nil {
			return err
		}
		defer unlock()
	}
	if *faultRate < 0 || *faultRate >= 1 {
		return usageError{fmt.Errorf("--faults %v: want a fraction from 0 to below 1", *faultRate)}
	}
	if *parallel < 1 || *parallel > 10 {
		return usageError{fmt.Errorf("--parallel %d: want 1 to 10, as Lambda's parallelization factor", *parallel)}
	}
	catalog, err := domain.ParseCatalog(*catalogSpec)
	if err != nil {
		return usageError{err}
	}
	if *ingest != local.IngestAPI && *ingest != local.IngestURL {
		return usageError{fmt.Errorf(`--ingest %q: want "api" or "url"`, *ingest)}
	}
	if err := checkRuntime(*runtimeName, *faultRate, *ingest, *auth); err != nil {
		return err
	}
	authorizer, err := devAuthorizer(*auth, *jwtKey, *jwks, *issuer, *audience)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	var stopping atomic.Bool
	log := slog.New(quietStop{slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}), &stopping})

	tuneDevMemory()
	cfg := local.Config{Addr: *addr, AWSAddr: *awsAddr, DataDir: os.Getenv("KUMO_DATA_DIR"), Stage: "local", Settings: local.DefaultSettings(), Catalog: catalog, Log: log, Overlap: *overlap, Authorizer: authorizer, Ingest: *ingest}
	cfg.Settings.Projector.Parallelization = *parallel
	cfg.Runtime = *runtimeName
	if cfg.Runtime == local.RuntimeRIE {
		fmt.Fprintf(stdout, "runtime rie: building the functions' bootstraps as make build does, for linux/%s\n", runtime.GOARCH)
	}
	var seed uint64
	if *faultRate > 0 {
		seed = uint64(time.Now().UnixNano())
		cfg.Faults = faults.New(seed)
		cfg.Faults.SetRate(*faultRate)
	}
	stack, err := local.Start(ctx, cfg)
	if le := (*local.ListenError)(nil); errors.As(err, &le) && errors.Is(err, syscall.EADDRINUSE) {
		if le.Role == "emulator" {
			return awsAddrTaken(*awsAddr)
		}
		return portTaken(*addr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "aws endpoint %s (DynamoDB, DynamoDB Streams, SQS; any access key, region us-east-1)\n", stack.Endpoint)
	fmt.Fprintf(stdout, "tables %s, %s, %s; queues %s, %s, %s, %s\n", stack.Tables.Events, stack.Tables.Ballots, stack.Tables.Tallies,
		stack.Queues.Submissions, stack.Queues.DeadLetters, stack.Queues.ProjectorFailed, stack.Queues.RepairFailed)
	fmt.Fprintf(stdout, "submissions queue %s\n", stack.QueueURLs[stack.Queues.Submissions])
	if cfg.DataDir != "" {
		printRestored(stdout, cfg.DataDir, stack.Restored)
	}
	unregister, err := registerDev(devState{Name: *name, Endpoint: stack.Endpoint, API: stack.URL, Stage: "local", PID: os.Getpid(), Started: time.Now(), Catalog: catalog.String()}, log)
	if err != nil {
		stack.Close(context.Background())
		return err
	}
	defer unregister()
	fmt.Fprintf(stdout, "stream parallelization %d: up to %d projector invocations per shard at once, records dealt by partition key\n", *parallel, *parallel)
	if *overlap {
		fmt.Fprintln(stdout, "overlap on: every SQS and stream batch goes to two concurrent invocations")
	}
	if *faultRate > 0 {
		fmt.Fprintf(stdout, "faults on: %g%% of the functions' SDK calls fail, half before sending, half after the emulator applied them (seed %d)\n",
			100**faultRate, seed)
	}
	if *ingest == local.IngestURL {
		fmt.Fprintln(stdout, "ingest url: POST /votes reaches the receiver as through its function URL, with no authorizer in front")
	}
	switch {
	case authorizer != nil && *ingest == local.IngestURL:
		fmt.Fprintf(stdout, "auth jwt: the receiver verifies POST /votes' token itself, from issuer %s for audience %s; its sub is the voter\n", *issuer, *audience)
	case authorizer != nil:
		fmt.Fprintf(stdout, "auth jwt: POST /votes needs a token from issuer %s for audience %s; its sub is the voter\n", *issuer, *audience)
	}
	fmt.Fprintf(stdout, "stack %s: other votes commands reach it with --stack %[1]s (or on their own while it is the only one)\n", stackName(*name, stack.URL))
	if *demo {
		began := time.Now()
		votes, err := seedDemo(ctx, stack.Admin.DynamoDB, stack.Tables.Events, began, catalog)
		if err == nil {
			err = stack.RankNow(ctx)
		}
		if err != nil {
			stack.Close(context.Background())
			return err
		}
		fmt.Fprintf(stdout, "demo: %d votes over the last three days on %d titles, projected and ranked in %s; the dashboard is at %s/\n",
			len(votes), len(demoTitles), time.Since(began).Round(100*time.Millisecond), stack.URL)
	}
	// Ctrl-C ends ctx and starts the stop; a second one ends the stop's
	// wait. The signals are counted from here, not from the stop's start:
	// two sent at once under load can both arrive before the first has
	// ended ctx.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	force, forced := context.WithCancel(context.Background())
	defer forced()
	go func() {
		for n := 0; ; {
			select {
			case <-signals:
				if n++; n == 2 {
					forced()
					return
				}
			case <-force.Done():
				return
			}
		}
	}()
	fmt.Fprintf(stdout, "listening on %s\n", stack.URL)
	go releaseWhenQuiet(ctx, stack)

	<-ctx.Done()
	stopping.Store(true)
	fmt.Fprintf(stdout, "stopping: no new votes taken; the batches in flight get %s to finish (Ctrl-C again stops at once)\n", stopGrace)
	rep := stack.Stop(force, stopGrace)
	if cfg.Faults != nil {
		f := cfg.Faults
		fmt.Fprintf(stdout, "faults injected: %d of %d SDK calls failed before sending, %d after the emulator applied them\n",
			f.FailedBefore.Load(), f.Calls.Load(), f.FailedAfter.Load())
	}
	for _, line := range stopLines(rep) {
		fmt.Fprintln(stdout, line)
	}
	for _, line := range sandboxLines(stack.Sandboxes()) {
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// checkRuntime checks --runtime and what the rie runtime cannot do: its
// functions run in processes of their own.
func checkRuntime(name string, faultRate float64, ingest, auth string) error {
	switch {
	case name != local.RuntimeInProcess && name != local.RuntimeRIE:
		return usageError{fmt.Errorf(`--runtime %q: want "inproc" or "rie"`, name)}
	case name == local.RuntimeInProcess:
		return nil
	case faultRate > 0:
		return usageError{errors.New("--faults fails the functions' SDK calls in this process: it needs --runtime inproc")}
	case ingest == local.IngestURL && auth == "jwt":
		return usageError{errors.New("--ingest url with --auth jwt has the receiver fetch the issuer's keys itself, which a bootstrap cannot from a local key: it needs --runtime inproc")}
	}
	if _, err := local.FindRIE(); err != nil {
		return fmt.Errorf("--runtime rie: %w (go install %s@%s)", err, local.RIEModule, local.RIEVersion)
	}
	return nil
}

// sandboxLines word what the rie runtime's sandboxes did, one line per
// function that ran, from the emulator's REPORT lines: its cold starts
// (the emulator's Init Duration, and the first invocation, which waits for
// the bootstrap to start) and its warm invocations.
func sandboxLines(reports map[string]local.SandboxReport) []string {
	var out []string
	for _, name := range functions.Names() {
		r, ok := reports[name]
		if !ok || r.ColdStarts == 0 {
			continue
		}
		line := fmt.Sprintf("rie %-10s %3d cold starts (at most %d at once): Init Duration p50 %.2f ms, first invocation p50 %.1f ms, max %.1f ms; ",
			name+":", r.ColdStarts, r.Peak, r.Init.P50, r.First.P50, r.First.Max)
		if r.Warm.Count == 0 {
			line += "no warm invocation"
		} else {
			line += fmt.Sprintf("%d warm invocations p50 %.1f ms, p99 %.1f ms, max %.1f ms", r.Warm.Count, r.Warm.P50, r.Warm.P99, r.Warm.Max)
		}
		if r.Timeouts > 0 {
			line += fmt.Sprintf("; %d timed out", r.Timeouts)
		}
		out = append(out, line)
	}
	return out
}

// stopGrace is how long Ctrl-C lets the batches in flight finish (the
// gateway's last answers included): the stop then takes at most a second
// more, under 3 s in all. A projector round of a second's records can take
// longer than the grace under load; its records stay in the stream.
const stopGrace = time.Second

// stopLines words a stop's report: one line per kind of thing left
// undone, then "stopped".
func stopLines(rep local.StopReport) []string {
	var out, cut []string
	for _, k := range []struct{ fn, what string }{
		{functions.ProcessorName, "their submissions stay queued"},
		{functions.ProjectorName, "their events stay in the stream"},
		{functions.RepairerName, "their failures stay queued"},
	} {
		if n := rep.Interrupted[k.fn]; n > 0 {
			cut = append(cut, fmt.Sprintf("%d %s %s (%s)", n, k.fn, plural(n, "batch", "batches"), k.what))
		}
	}
	if len(cut) > 0 {
		out = append(out, "interrupted: "+strings.Join(cut, ", "))
	}
	left := rep.Queued > 0 || len(cut) > 0
	took := rep.Elapsed.Round(10 * time.Millisecond)
	switch {
	case rep.Forced:
		out = append(out, fmt.Sprintf("stopped at once after %s (Ctrl-C again): %d submissions processed since the start; this stack kept its data in memory only", took, rep.Processed))
	case rep.KeepErr != nil:
		out = append(out, fmt.Sprintf("stopped in %s: %d submissions processed since the start, %d still queued; saving the data in %s failed (%v): the next start folds every event it finds there again", took, rep.Processed, max(rep.Queued, 0), rep.KeptIn, rep.KeepErr))
	case left && rep.KeptIn != "":
		out = append(out, fmt.Sprintf("stopped in %s: %d submissions processed since the start, %d still queued, kept in %s for the next start", took, rep.Processed, max(rep.Queued, 0), rep.KeptIn))
	case left:
		out = append(out, fmt.Sprintf("stopped in %s: %d submissions processed since the start, %d still queued; this stack kept them in memory only, so they are gone (votes dev --data DIR keeps them for the next start)", took, rep.Processed, max(rep.Queued, 0)))
	default:
		out = append(out, fmt.Sprintf("stopped in %s: %d submissions processed since the start, none left queued", took, rep.Processed))
	}
	return out
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// quietStop drops what the functions log about calls the stop cut off
// (their context canceled once stopping is set): the stop's report counts
// them in one line instead of a warning per message and cell.
type quietStop struct {
	slog.Handler
	stopping *atomic.Bool
}

func (q quietStop) Handle(ctx context.Context, r slog.Record) error {
	if q.stopping.Load() && errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietStop) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietStop{q.Handler.WithAttrs(attrs), q.stopping}
}

func (q quietStop) WithGroup(name string) slog.Handler {
	return quietStop{q.Handler.WithGroup(name), q.stopping}
}

// Tokens signed by votes token and votes load, and checked by votes dev
// --auth jwt, have this issuer and audience unless told otherwise.
const (
	defaultIssuer   = "https://votes.local"
	defaultAudience = "votes"
)

// devAuthorizer builds the local JWT authorizer from the --auth flags; nil
// for --auth none.
func devAuthorizer(auth, keyFile, jwksFile, issuer, audience string) (*local.Authorizer, error) {
	switch auth {
	case "none":
		if keyFile != "" || jwksFile != "" {
			return nil, usageError{errors.New("--jwt-key and --jwks need --auth jwt")}
		}
		return nil, nil
	case "jwt":
	default:
		return nil, usageError{fmt.Errorf(`--auth %q: want "none" or "jwt"`, auth)}
	}
	if (keyFile == "") == (jwksFile == "") {
		return nil, usageError{errors.New("--auth jwt needs --jwt-key FILE or --jwks FILE")}
	}
	cfg := local.JWTConfig{Issuer: issuer, Audience: audience}
	var err error
	if keyFile != "" {
		cfg.Key, err = os.ReadFile(keyFile)
	} else {
		cfg.JWKS, err = os.ReadFile(jwksFile)
	}
	if err != nil {
		return nil, usageError{err}
	}
	a, err := local.NewAuthorizer(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return a, nil
}
