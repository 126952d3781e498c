// Package local runs the whole pipeline in one process: the kumo emulator
// serves DynamoDB, DynamoDB Streams and SQS over the real AWS protocols, and
// a small runtime plays API Gateway and Lambda's event-source mappings,
// invoking the same handlers, through the same aws-lambda-go wrapper and
// aws-sdk-go-v2 adapters, as in AWS.
package local

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	stypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/sivchari/kumo"

	"votes/domain"
	"votes/handlers"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/infra/functions"
	"votes/infra/queue"
)

// Settings are the deployment's queue and event-source mapping settings;
// DefaultSettings matches serverless.yml.
type Settings struct {
	Processor         SQSMapping
	Projector         StreamMapping
	VisibilityTimeout time.Duration
	// MaxReceiveCount is the submissions queue's redrive backstop, far
	// above what Retry lets the processor take: SQS moves a message to the
	// dead-letter queue by itself (without a reason) only if the processor
	// never got to give up on it.
	MaxReceiveCount int
	// Retry bounds how long the processor retries a message before it
	// dead-letters it itself, with the reason.
	Retry handlers.RetryLimits
	// Retention is how long the submissions queue keeps a message;
	// DeadLetterRetention, longer, how long the dead-letter and failure
	// queues do. SQS counts a dead letter's age from when it was first
	// sent, so a dead-letter queue keeping messages no longer than its
	// source would lose the ones that failed late.
	Retention, DeadLetterRetention time.Duration
	// ReservedConcurrency is each function's reserved concurrency in the
	// deployment. The local stack does not throttle.
	ReservedConcurrency map[string]int
	Concurrency         int // SDK calls in flight within one invocation
	// Repairer is the failure queue's mapping to the repairer; the failure
	// queue's visibility timeout and maxReceiveCount (then the repair
	// dead-letter queue) follow.
	Repairer              SQSMapping
	RepairVisibility      time.Duration
	RepairMaxReceiveCount int
	// MemoryMB is each function's memory size, for billing estimates.
	MemoryMB map[string]int
	// Timeouts are each function's Lambda timeout: an invocation is cut
	// off at it.
	Timeouts map[string]time.Duration
	// RankEvery is how often the schedule runs the ranker: every minute,
	// as EventBridge's rate(1 minute).
	RankEvery time.Duration
	// Reads bound how far behind the cells a tally GET may be, and what it
	// may cost. The local query function is one container: its memory and
	// sum budget are shared by every GET.
	Reads handlers.ReadLimits
}

// DefaultSettings are the values serverless.yml deploys.
func DefaultSettings() Settings {
	fc := functions.DefaultConfig()
	return Settings{
		// No batching windows: a window delays a lone record by all of it
		// (README, "Tally lag on a quiet stack"); SQS takes batches above 10
		// only with a window.
		Processor:           SQSMapping{BatchSize: 10, MaxConcurrency: 10, Pollers: 4},
		Projector:           StreamMapping{BatchSize: 1000, Window: time.Second, MaxRetryAttempts: 10, Bisect: true, PollInterval: 250 * time.Millisecond, RetryBackoff: 100 * time.Millisecond, Parallelization: 4},
		VisibilityTimeout:   180 * time.Second,
		MaxReceiveCount:     100,
		Retry:               fc.Retry,
		Retention:           4 * 24 * time.Hour,
		DeadLetterRetention: 14 * 24 * time.Hour,
		ReservedConcurrency: map[string]int{"receiver": 100, "processor": 10, "projector": 20, "query": 20, "repairer": 5, "ranker": 1},
		Concurrency:         fc.Concurrency,
		MemoryMB:            map[string]int{"receiver": 128, "processor": 256, "projector": 256, "query": 128, "repairer": 256, "ranker": 256},
		Timeouts:            map[string]time.Duration{"receiver": 10 * time.Second, "processor": 30 * time.Second, "projector": 60 * time.Second, "query": 10 * time.Second, "repairer": 60 * time.Second, "ranker": 60 * time.Second},
		// One failure per invocation; six times the repairer's 60 s timeout.
		Repairer:              SQSMapping{BatchSize: 1, Pollers: 1, MaxConcurrency: 2},
		RepairVisibility:      360 * time.Second,
		RepairMaxReceiveCount: fc.RepairMaxReceives,
		RankEvery:             time.Minute,
		Reads:                 fc.Reads,
	}
}

// FastSettings are DefaultSettings with polls and timeouts cut to
// milliseconds, and batching windows of milliseconds (batches of several
// records), so that tests see retries and redeliveries quickly, and
// function timeouts cut to seconds, so that a stuck invocation shows soon.
func FastSettings() Settings {
	s := DefaultSettings()
	s.Timeouts = map[string]time.Duration{"receiver": 5 * time.Second, "processor": 5 * time.Second, "projector": 10 * time.Second, "query": 5 * time.Second, "repairer": 10 * time.Second, "ranker": 10 * time.Second}
	s.Processor.Window = 20 * time.Millisecond
	s.Projector.Window = 10 * time.Millisecond
	s.Projector.PollInterval = 10 * time.Millisecond
	s.Projector.RetryBackoff = 10 * time.Millisecond
	s.VisibilityTimeout = time.Second
	s.RepairVisibility = time.Second
	s.Retry.Failing = 30 * time.Second // well past a burst of injected faults
	// Tallies at most 100 ms behind: tests wait that long after the
	// pipeline is idle to read exact tallies.
	s.Reads.MaxAge, s.Reads.VersionMaxAge = 100*time.Millisecond, 100*time.Millisecond
	s.RankEvery = 50 * time.Millisecond
	return s
}

// Config says how to run the stack.
type Config struct {
	// Addr is where the gateway listens ("127.0.0.1:0" for any free port);
	// empty runs no gateway.
	Addr string
	// Stage names the tables and queues; tests give each its own.
	Stage string
	// Endpoint is an AWS endpoint to use; empty starts kumo in this process.
	Endpoint string
	// AWSAddr, with no Endpoint, is the address the emulator is served on
	// ("127.0.0.1:4566"); empty takes the random port kumo picks.
	AWSAddr string
	// DataDir is the directory this process's kumo keeps its snapshots
	// in (KUMO_DATA_DIR, which kumo reads when the process starts); empty
	// when it keeps nothing. The stack then gives a reloaded event table
	// its stream again at start, and waits at Close until the directory
	// holds the final state (see persist.go).
	DataDir string
	// Faults, when set, carries the SDK calls of the functions and of their
	// event-source mappings, to fail some on purpose as a network and AWS
	// may. The stack's own bookkeeping (Admin) never goes through it.
	Faults *faults.Transport
	// Overlap delivers every SQS batch to two concurrent invocations of the
	// processor, and every stream batch to two of the projector, as AWS may:
	// duplicate deliveries, sibling shards after a partition split, two
	// mappings while CloudFormation replaces one.
	Overlap bool
	// Retryer, when set, replaces the SDK's standard retryer.
	Retryer func() aws.Retryer
	// APIOptions are added to the functions' SDK clients (to meter them).
	APIOptions []func(*middleware.Stack) error
	// FunctionAPIOptions, when set, add options to one function's clients
	// only: the function's own calls and its event-source mapping's, which
	// AWS makes with the function's role.
	FunctionAPIOptions func(function string) []func(*middleware.Stack) error
	Settings           Settings
	Catalog            domain.Catalog
	// Limits bound the gateway's connections; zero fields take
	// DefaultGatewayLimits.
	Limits GatewayLimits
	// Authorizer, when set, guards POST /votes as the JWT authorizer does
	// in serverless.yml with auth=jwt; nil is auth=none. With Ingest
	// IngestURL the receiver checks tokens itself, with its verifier.
	Authorizer *Authorizer
	// Ingest is how POST /votes reaches the receiver, as serverless.yml's
	// ingest parameter: IngestAPI (the default) through the HTTP API's
	// route, IngestURL through the function's own URL, with no authorizer
	// in front.
	Ingest string
	// Runtime is what runs the functions: RuntimeInProcess (the default)
	// or RuntimeRIE, with RIE saying where its parts are (rie.go).
	Runtime string
	RIE     RIEConfig
	Log     *slog.Logger
}

// The ways POST /votes can reach the receiver (serverless.yml's ingest
// parameter).
const (
	IngestAPI = "api"
	IngestURL = "url"
)

// Stack is a running local pipeline.
type Stack struct {
	// Endpoint serves DynamoDB, DynamoDB Streams and SQS.
	Endpoint string
	// URL is the gateway's base URL, when it runs.
	URL       string
	Tables    dynamo.Tables
	Queues    queue.Names
	QueueURLs map[string]string // by queue name
	// Clients are SDK clients made as the functions' are (with APIOptions
	// and through Faults), for tests; each function has its own. Admin are
	// the same without APIOptions and Faults, for the stack's own
	// bookkeeping and tests.
	Clients   awscfg.Clients
	Admin     awscfg.Clients
	Functions struct{ Receiver, Processor, Projector, Query, Repairer, Ranker *Function }
	// Gateway serves the HTTP API, for tests that do not listen.
	Gateway http.Handler
	// Requests counts the HTTP requests the gateway served.
	Requests atomic.Int64
	// Restored says what the stack found in Config.DataDir.
	Restored Restored
	// ReadBound is how far behind the cells and the registry a tally GET
	// may be (Settings.Reads): a GET sent ReadBound after the pipeline
	// went idle, or after a promote, reads every vote of the version then
	// active.
	ReadBound time.Duration

	kumo    *kumo.Server
	dataDir string
	front   *emulatorFront // serves kumo on Endpoint
	rie     *rieRuntime    // runs the functions, with Config.Runtime RuntimeRIE
	direct  string         // where the stack's own clients reach the emulator
	server  *http.Server
	cancel  context.CancelFunc // ends the pollers, their receives and invocations
	take    context.CancelFunc // ends the pollers' loops: no new receive
	cut     context.CancelFunc // ends the invocations
	wg      sync.WaitGroup
	streams *streamPoller
	// submissions and repairs count what the SQS mappings did.
	submissions, repairs mappingStats
	// submissionsHeld disables the submissions queue's mapping.
	submissionsHeld atomic.Bool
	// stopped: Stop ran, and Close has nothing left to do.
	stopped atomic.Bool
}

// Start creates the tables and queues and runs the gateway and pollers until
// Close.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Stack{ReadBound: max(cfg.Settings.Reads.MaxAge, cfg.Settings.Reads.VersionMaxAge), Endpoint: cfg.Endpoint, Tables: dynamo.TablesFor(cfg.Stage), Queues: queue.NamesFor(cfg.Stage), QueueURLs: map[string]string{}}
	if s.Endpoint == "" {
		s.kumo = kumo.NewServer()
		s.Endpoint = s.kumo.URL
	}
	s.direct = s.Endpoint
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if s.kumo != nil {
		addr := cmp.Or(cfg.AWSAddr, "127.0.0.1:0")
		if s.front, err = frontFor(addr, s.direct); err != nil {
			return nil, err
		}
		s.Endpoint = s.front.URL()
	}
	if err := s.connect(ctx, cfg); err != nil {
		return nil, err
	}
	streamARN, err := s.createResources(ctx, cfg.Settings)
	if err != nil {
		return nil, err
	}
	if s.dataDir = cfg.DataDir; s.dataDir != "" {
		if streamARN, err = s.reattachStream(ctx, s.dataDir, streamARN); err != nil {
			return nil, err
		}
	}
	fc := s.functionConfig(cfg)
	if err := fc.Validate(); err != nil {
		return nil, err
	}
	awsFor, err := s.functionClients(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Runtime == RuntimeRIE {
		if s.rie, err = s.startRIE(ctx, cfg, fc); err != nil {
			return nil, err
		}
	}
	s.startFunctions(cfg, fc, awsFor)
	s.startMappings(ctx, cfg, fc, awsFor, streamARN)
	if err := s.listen(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// withDefaults fills what cfg leaves out and checks that every function
// has a timeout.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Stage == "" {
		cfg.Stage = "local"
	}
	if cfg.AWSAddr != "" && cfg.Endpoint != "" {
		return cfg, errors.New("local: an emulator address needs the stack's own emulator, not an endpoint")
	}
	switch cfg.Ingest {
	case "":
		cfg.Ingest = IngestAPI
	case IngestAPI, IngestURL:
	default:
		return cfg, fmt.Errorf("local: ingest %q is neither %q nor %q", cfg.Ingest, IngestAPI, IngestURL)
	}
	if len(cfg.Catalog.Aspects()) == 0 {
		cfg.Catalog = functions.DefaultConfig().Catalog
	}
	for _, name := range functions.Names() {
		if cfg.Settings.Timeouts[name] <= 0 {
			return cfg, fmt.Errorf("local: settings give function %s no timeout", name)
		}
	}
	return cfg, cfg.checkRuntime()
}

// connect makes the stack's own clients: Clients as the functions' are,
// Admin without options or faults.
func (s *Stack) connect(ctx context.Context, cfg Config) (err error) {
	s.Clients, err = awscfg.New(ctx, awscfg.Options{Endpoint: s.direct, HTTPClient: cfg.httpClient(), Retryer: cfg.Retryer, APIOptions: cfg.APIOptions})
	if err != nil {
		return err
	}
	s.Admin, err = awscfg.New(ctx, awscfg.Options{Endpoint: s.direct, Retryer: cfg.Retryer})
	return err
}

func (cfg Config) httpClient() aws.HTTPClient {
	if cfg.Faults == nil {
		return nil
	}
	return cfg.Faults.Client()
}

// functionConfig is the functions' configuration for this stack, on
// functions.DefaultConfig as in Lambda.
func (s *Stack) functionConfig(cfg Config) functions.Config {
	fc := functions.DefaultConfig()
	fc.Tables = s.Tables
	fc.SubmissionsURL = s.QueueURLs[s.Queues.Submissions]
	fc.DeadLettersURL = s.QueueURLs[s.Queues.DeadLetters]
	fc.FailuresURL = s.QueueURLs[s.Queues.ProjectorFailed]
	fc.RepairFailedURL = s.QueueURLs[s.Queues.RepairFailed]
	fc.Catalog = cfg.Catalog
	fc.Retry = cfg.Settings.Retry
	fc.RepairMaxReceives = cfg.Settings.RepairMaxReceiveCount
	fc.Concurrency = cfg.Settings.Concurrency
	fc.Reads = cfg.Settings.Reads
	return fc
}

// functionClients loads an AWS configuration for each function, from
// which it and its event-source mapping build their clients, as each runs
// in its own sandboxes in AWS: one function's retries do not spend
// another's retry budget.
func (s *Stack) functionClients(ctx context.Context, cfg Config) (map[string]awscfg.Config, error) {
	out := map[string]awscfg.Config{}
	for _, name := range functions.Names() {
		opts := slices.Clone(cfg.APIOptions)
		if cfg.FunctionAPIOptions != nil {
			opts = append(opts, cfg.FunctionAPIOptions(name)...)
		}
		c, err := awscfg.Load(ctx, awscfg.Options{Endpoint: s.direct, HTTPClient: cfg.httpClient(), Retryer: cfg.Retryer, APIOptions: opts})
		if err != nil {
			return nil, err
		}
		out[name] = c
	}
	return out, nil
}

// startFunctions builds each function with the clients it calls, and the
// gateway's routes to them.
func (s *Stack) startFunctions(cfg Config, fc functions.Config, awsFor map[string]awscfg.Config) {
	timeouts := cfg.Settings.Timeouts
	function := func(name string, handler func(awscfg.Config, *slog.Logger) any) *Function {
		if s.rie != nil {
			return s.rie.function(name)
		}
		return NewFunction(name, timeouts[name], handler(awsFor[name], cfg.Log.With("function", name)))
	}
	// Behind its URL no authorizer checks the token: the receiver does.
	var tokens handlers.TokenVerifier
	if cfg.Ingest == IngestURL && cfg.Authorizer != nil {
		tokens = cfg.Authorizer.Verifier()
	}
	s.Functions.Receiver = function(functions.ReceiverName, func(c awscfg.Config, log *slog.Logger) any {
		return functions.Receiver(fc, c.SQS(), tokens, log).Handle
	})
	s.Functions.Processor = function(functions.ProcessorName, func(c awscfg.Config, log *slog.Logger) any {
		return functions.Processor(fc, c.DynamoDB(), c.SQS(), log).Handle
	})
	s.Functions.Projector = function(functions.ProjectorName, func(c awscfg.Config, log *slog.Logger) any {
		return functions.Projector(fc, c.DynamoDB(), c.SQS(), log).Handle
	})
	s.Functions.Query = function(functions.QueryName, func(c awscfg.Config, log *slog.Logger) any {
		return functions.Query(fc, c.DynamoDB(), log).Handle
	})
	s.Functions.Repairer = function(functions.RepairerName, func(c awscfg.Config, log *slog.Logger) any {
		return functions.Repairer(fc, c.DynamoDB(), c.Streams(), c.SQS(), log).Handle
	})
	s.Functions.Ranker = function(functions.RankerName, func(c awscfg.Config, log *slog.Logger) any {
		return functions.Ranker(fc, c.DynamoDB(), log).Handle
	})
	// The routes serverless.yml deploys, each naming its method; the
	// gateway answers other methods on these paths itself (405). Only a
	// submission needs a voter's token.
	votes := Route{Pattern: "POST /votes", RouteKey: "POST /votes", Function: s.Functions.Receiver, Authorizer: cfg.Authorizer}
	if cfg.Ingest == IngestURL {
		votes = Route{Pattern: "POST /votes", Function: s.Functions.Receiver, FunctionURL: true}
	}
	routes := []Route{votes}
	for _, key := range functions.QueryRoutes() {
		// API Gateway's greedy {name+} is ServeMux's {name...}; "GET /"
		// alone must not match every path.
		pattern := strings.ReplaceAll(key, "+}", "...}")
		if key == "GET /" {
			pattern = "GET /{$}"
		}
		routes = append(routes, Route{Pattern: pattern, RouteKey: key, Params: pathParams(key), Function: s.Functions.Query})
	}
	s.Gateway = Gateway(routes, &s.Requests)
}

// startMappings runs the event-source mappings until Close: the
// submissions queue's pollers, the event stream's, and the failure
// queue's. Each calls with its function's clients, as AWS does with the
// function's role.
func (s *Stack) startMappings(ctx context.Context, cfg Config, fc functions.Config, awsFor map[string]awscfg.Config, streamARN string) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	takeCtx, take := context.WithCancel(runCtx)
	invokeCtx, cut := context.WithCancel(runCtx)
	s.cancel, s.take, s.cut = cancel, take, cut
	region := s.Clients.Config.Region
	processorSQS := awsFor[functions.ProcessorName].SQS()
	for range max(min(cfg.Settings.Processor.Pollers, cfg.Settings.Processor.MaxConcurrency), 1) {
		p := &sqsPoller{
			client: processorSQS, queueURL: fc.SubmissionsURL, queueARN: s.queueARN(region, s.Queues.Submissions),
			region: region, mapping: cfg.Settings.Processor, fn: s.Functions.Processor, overlap: cfg.Overlap, log: cfg.Log.With("mapping", "submissions"),
			held: &s.submissionsHeld, stats: &s.submissions,
		}
		s.goRun(func() { p.serve(takeCtx, runCtx, invokeCtx) })
	}
	sm := cfg.Settings.Projector
	sm.FailureQueueURL = fc.FailuresURL
	projector := awsFor[functions.ProjectorName]
	s.streams = &streamPoller{
		streams: projector.Streams(), sqs: projector.SQS(), streamARN: streamARN, region: region,
		mapping: sm, fn: s.Functions.Projector, overlap: cfg.Overlap, log: cfg.Log.With("mapping", "events-stream"),
	}
	if kumo.HasStream(streamARN) {
		// The emulator runs in this process (the stack's own, or a test
		// binary's), and keeps every stream record for its 24 hours: drop
		// them once projected, so that memory follows what the tables hold.
		s.streams.trim = func(shardID, through string) error {
			_, err := kumo.TrimStream(streamARN, shardID, through)
			return err
		}
		s.streams.repairsPending = s.repairsPending
	}
	s.goRun(func() { s.streams.serve(takeCtx, invokeCtx) })
	repairerSQS := awsFor[functions.RepairerName].SQS()
	for range max(cfg.Settings.Repairer.Pollers, 1) {
		p := &sqsPoller{
			client: repairerSQS, queueURL: fc.FailuresURL, queueARN: s.queueARN(region, s.Queues.ProjectorFailed),
			region: region, mapping: cfg.Settings.Repairer, fn: s.Functions.Repairer, overlap: cfg.Overlap, log: cfg.Log.With("mapping", "projector-failures"),
			stats: &s.repairs,
		}
		s.goRun(func() { p.serve(takeCtx, runCtx, invokeCtx) })
	}
	s.goRun(func() {
		s.schedule(runCtx, cfg.Settings.RankEvery, s.Functions.Ranker, cfg.Log.With("schedule", "rankings"))
	})
}

// RankNow waits until the pipeline is idle, then runs the ranker once, as
// its schedule would: the title index ranked as it stands.
func (s *Stack) RankNow(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		return fmt.Errorf("local: wait for the pipeline: %w", err)
	}
	return s.Functions.Ranker.Invoke(ctx, s.scheduledEvent(time.Now()), nil)
}

// scheduledEvent is the event EventBridge's schedule gives a function.
func (s *Stack) scheduledEvent(now time.Time) events.EventBridgeEvent {
	return events.EventBridgeEvent{Version: "0", ID: strconv.FormatInt(now.UnixNano(), 10), DetailType: "Scheduled Event", Source: "aws.events",
		AccountID: "000000000000", Time: now.UTC(), Region: s.Clients.Config.Region, Detail: json.RawMessage("{}")}
}

// schedule invokes fn with an EventBridge scheduled event every interval
// until ctx ends, as serverless.yml's schedule event does; one invocation
// at a time.
func (s *Stack) schedule(ctx context.Context, every time.Duration, fn *Function, log *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := fn.Invoke(ctx, s.scheduledEvent(now), nil); err != nil && ctx.Err() == nil {
				log.Warn("scheduled invocation failed", "err", err)
			}
		}
	}
}

// listen serves the gateway on cfg.Addr until Close, when one is given.
func (s *Stack) listen(cfg Config) error {
	if cfg.Addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return &ListenError{Role: "gateway", Addr: cfg.Addr, Err: err}
	}
	s.URL = "http://" + ln.Addr().String()
	var serve func() error
	s.server, serve = cfg.Limits.serve(s.Gateway, ln)
	s.goRun(func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("gateway", "err", err)
		}
	})
	return nil
}

func (s *Stack) goRun(f func()) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); f() }()
}

func (s *Stack) queueARN(region, name string) string {
	return "arn:aws:sqs:" + region + ":000000000000:" + name
}

// createResources creates the tables and queues as serverless.yml defines
// them and returns the event table's stream ARN.
func (s *Stack) createResources(ctx context.Context, st Settings) (string, error) {
	db := s.Admin.DynamoDB
	for _, spec := range s.Tables.Specs() {
		if _, err := db.CreateTable(ctx, spec.CreateInput()); err != nil {
			var inUse *dtypes.ResourceInUseException
			if !errors.As(err, &inUse) {
				return "", fmt.Errorf("dynamodb: create table %s: %w", spec.Name, err)
			}
		}
	}
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.Tables.Events)})
	if err != nil {
		return "", fmt.Errorf("dynamodb: describe table %s: %w", s.Tables.Events, err)
	}
	streamARN := aws.ToString(desc.Table.LatestStreamArn)
	if streamARN == "" {
		return "", fmt.Errorf("dynamodb: table %s has no stream", s.Tables.Events)
	}

	create := func(name string, attrs map[string]string) error {
		out, err := s.Admin.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			return fmt.Errorf("sqs: create queue %s: %w", name, err)
		}
		s.QueueURLs[name] = aws.ToString(out.QueueUrl)
		if s.front != nil {
			s.QueueURLs[name] = queueURL(s.Endpoint, s.QueueURLs[name])
		}
		return nil
	}
	retention := strconv.Itoa(int(st.Retention.Seconds()))
	dlRetention := strconv.Itoa(int(st.DeadLetterRetention.Seconds()))
	if err := create(s.Queues.DeadLetters, map[string]string{string(stypes.QueueAttributeNameMessageRetentionPeriod): dlRetention}); err != nil {
		return "", err
	}
	if err := create(s.Queues.RepairFailed, map[string]string{string(stypes.QueueAttributeNameMessageRetentionPeriod): dlRetention}); err != nil {
		return "", err
	}
	if err := create(s.Queues.ProjectorFailed, map[string]string{
		string(stypes.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(int(st.RepairVisibility.Seconds())),
		string(stypes.QueueAttributeNameMessageRetentionPeriod): dlRetention,
		string(stypes.QueueAttributeNameRedrivePolicy): fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`,
			s.queueARN(s.Clients.Config.Region, s.Queues.RepairFailed), st.RepairMaxReceiveCount),
	}); err != nil {
		return "", err
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, s.queueARN(s.Clients.Config.Region, s.Queues.DeadLetters), st.MaxReceiveCount)
	if err := create(s.Queues.Submissions, map[string]string{
		string(stypes.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(int(st.VisibilityTimeout.Seconds())),
		string(stypes.QueueAttributeNameMessageRetentionPeriod): retention,
		string(stypes.QueueAttributeNameRedrivePolicy):          redrive,
	}); err != nil {
		return "", err
	}
	return streamARN, nil
}

// WaitIdle returns once every queued submission is processed and every
// stream record projected: the tallies then show every accepted vote.
func (s *Stack) WaitIdle(ctx context.Context) error {
	for {
		n, err := s.QueueDepth(ctx, s.Queues.Submissions)
		if err != nil {
			return err
		}
		if n == 0 {
			// Two empty polls of the stream after the queue drained.
			start := s.streams.emptyPolls.Load()
			for s.streams.emptyPolls.Load() < start+2 {
				if err := waitTick(ctx); err != nil {
					return err
				}
			}
			if n, err = s.QueueDepth(ctx, s.Queues.Submissions); err != nil || n == 0 {
				return err
			}
		}
		if err := waitTick(ctx); err != nil {
			return err
		}
	}
}

func waitTick(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(20 * time.Millisecond):
		return nil
	}
}

// repairsPending says whether the failure queue or the repair dead-letter
// queue holds messages: stream ranges the repairer, or votes repair, may
// read back.
func (s *Stack) repairsPending(ctx context.Context) (bool, error) {
	for _, q := range []string{s.Queues.ProjectorFailed, s.Queues.RepairFailed} {
		if n, err := s.QueueDepth(ctx, q); err != nil || n > 0 {
			return true, err
		}
	}
	return false, nil
}

// QueueDepth counts a queue's messages, visible or in flight.
func (s *Stack) QueueDepth(ctx context.Context, name string) (int, error) {
	out, err := s.Admin.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.QueueURLs[name]),
		AttributeNames: []stypes.QueueAttributeName{
			stypes.QueueAttributeNameApproximateNumberOfMessages, stypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, fmt.Errorf("sqs: queue attributes of %s: %w", name, err)
	}
	total := 0
	for _, k := range []stypes.QueueAttributeName{stypes.QueueAttributeNameApproximateNumberOfMessages, stypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		n, _ := strconv.Atoi(out.Attributes[string(k)])
		total += n
	}
	return total, nil
}

// Usage reports each function's invocations and time spent, by name.
func (s *Stack) Usage() map[string]Usage {
	out := map[string]Usage{}
	for name, f := range s.byName() {
		out[name] = f.Usage()
	}
	return out
}

// ResetUsage starts counting function usage and gateway requests afresh.
func (s *Stack) ResetUsage() {
	for _, f := range s.byName() {
		f.ResetUsage()
	}
	s.Requests.Store(0)
}

func (s *Stack) byName() map[string]*Function {
	return map[string]*Function{
		functions.ReceiverName: s.Functions.Receiver, functions.ProcessorName: s.Functions.Processor,
		functions.ProjectorName: s.Functions.Projector, functions.QueryName: s.Functions.Query,
		functions.RepairerName: s.Functions.Repairer,
	}
}

// Close stops taking requests, lets the pipeline finish what it holds (until
// ctx ends), then stops the pollers and the emulator. After Stop it does
// nothing.
func (s *Stack) Close(ctx context.Context) error {
	if s.stopped.Load() {
		return nil
	}
	var err error
	if s.server != nil {
		err = s.server.Shutdown(ctx)
	}
	drained := false
	if s.streams != nil && ctx.Err() == nil {
		werr := s.WaitIdle(ctx)
		drained = werr == nil
		if werr != nil && !errors.Is(werr, context.DeadlineExceeded) && !errors.Is(werr, context.Canceled) {
			err = errors.Join(err, werr)
		}
	}
	if s.dataDir != "" {
		err = errors.Join(err, s.persist(ctx, s.dataDir, drained))
	}
	s.stop()
	return err
}

// StopReport says what stopping the stack left undone.
type StopReport struct {
	Elapsed time.Duration
	// Forced: the stop's context ended, and it returned without waiting
	// for the invocations it cut off, nor counting what was left.
	Forced bool
	// Interrupted counts the batches the stop cut off before the function
	// finished them, by function (processor, projector, repairer): their
	// messages stay queued, their records in the stream.
	Interrupted map[string]int64
	// Processed counts the submissions the processor finished (stored, or
	// dead-lettered with their reason) since the stack started.
	Processed int64
	// Queued counts the submissions the queue still held, visible or
	// not, once the pollers had stopped; -1 when it could not be read.
	Queued int
	// KeptIn is the data directory the stack's state was saved in, for
	// the next start ("" for a memory-only stack), and KeepErr why saving
	// it failed.
	KeptIn  string
	KeepErr error
}

// Stop stops the stack as Ctrl-C does, without waiting for the queues to
// drain: the gateway answers the requests it has and takes no more, the
// event-source mappings start no new batch, and the batches in flight get
// until grace has passed (from the call) to finish. Those still running
// then are cut off: their messages stay queued (visible again at once),
// their records in the stream. A stack keeps its data in its emulator, so
// a memory-only one loses what it holds when Stop closes it. When ctx
// ends (a second Ctrl-C), Stop cuts everything off and returns at once,
// leaving the emulator to the process's exit, and the messages of a
// receive in flight invisible for the visibility timeout. Otherwise it
// returns within a second after grace (or after 1.2 s, with less grace).
func (s *Stack) Stop(ctx context.Context, grace time.Duration) StopReport {
	began := time.Now()
	deadline, cancel := context.WithDeadline(ctx, began.Add(grace))
	defer cancel()
	// With a data directory, a stack that was idle when told to stop can
	// say so, and its next start need not fold every event again (kumo
	// keeps no stream): every submission processed, the stream read to its
	// end. A busy one is not waited for.
	idle := false
	if s.dataDir != "" {
		ictx, icancel := context.WithTimeout(deadline, 700*time.Millisecond)
		idle = s.WaitIdle(ictx) == nil
		icancel()
	}
	s.stopped.Store(true)
	if s.take != nil {
		s.take() // the pollers finish their batches while the gateway answers its last requests
	}
	if s.server != nil {
		if s.server.Shutdown(deadline) != nil {
			s.server.Close() // the requests still open at the deadline are cut off
		}
	}
	stopped := make(chan struct{})
	go func() { s.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-deadline.Done():
	}
	if s.cut != nil {
		s.cut()
	}
	// Cut off, an invocation returns as soon as its calls see their
	// context end; a receive in flight ends within its 1 s long poll.
	wait := time.NewTimer(max(500*time.Millisecond, time.Until(began.Add(receiveWait))))
	defer wait.Stop()
	select {
	case <-stopped:
	case <-ctx.Done():
	case <-wait.C:
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.rie.close() // the sandboxes' processes, idle or cut off
	rep := StopReport{Queued: -1}
	rep.Interrupted = map[string]int64{
		functions.ProcessorName: s.submissions.interrupted.Load(),
		functions.RepairerName:  s.repairs.interrupted.Load(),
	}
	if s.streams != nil {
		rep.Interrupted[functions.ProjectorName] = s.streams.interrupted.Load()
	}
	rep.Processed = s.submissions.finished.Load()
	if ctx.Err() != nil {
		rep.Forced, rep.Elapsed = true, time.Since(began)
		return rep
	}
	qctx, qcancel := context.WithTimeout(ctx, 250*time.Millisecond)
	if n, err := s.QueueDepth(qctx, s.Queues.Submissions); err == nil {
		rep.Queued = n
	}
	qcancel()
	if s.dataDir != "" {
		cut := int64(0)
		for _, n := range rep.Interrupted {
			cut += n
		}
		rep.KeptIn = s.dataDir
		rep.KeepErr = s.persist(ctx, s.dataDir, idle && cut == 0 && rep.Queued == 0)
	}
	if s.kumo != nil {
		closed := make(chan struct{})
		go func() { s.kumo.Close(); close(closed) }()
		select { // it waits for requests still open, as a cut-off call's
		case <-closed:
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	rep.Elapsed = time.Since(began)
	return rep
}

// receiveWait bounds a receive in flight: the SQS pollers' long poll and
// some slack.
const receiveWait = 1200 * time.Millisecond

// stop ends the pollers and the gateway's goroutine, then the emulator.
func (s *Stack) stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.rie.close()
	if s.front != nil {
		s.front.close()
	}
	if s.kumo != nil {
		s.kumo.Close()
	}
}

// pathParams lists the {names} of a route's path.
func pathParams(route string) []string {
	var out []string
	for rest := route; ; {
		_, after, ok := strings.Cut(rest, "{")
		if !ok {
			return out
		}
		name, tail, _ := strings.Cut(after, "}")
		out = append(out, strings.TrimSuffix(name, "+"))
		rest = tail
	}
}
