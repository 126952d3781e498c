// Package functions wires the pipeline's Lambda functions from SDK clients
// and configuration. The Lambda entry points in cmd/ and the local stack
// build their handlers here, so both run the same code on the same adapters.
// Each function is given only the SDK clients it calls, so that its main
// builds no other.
package functions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"votes/domain"
	"votes/handlers"
	"votes/infra/dynamo"
	"votes/infra/jwtauth"
	"votes/infra/queue"
	"votes/infra/streams"
	"votes/projections"
)

// The pipeline's functions, named as serverless.yml, the Makefile (which
// reads serverless.yml), cmd/<name> and the local stack name them.
const (
	ReceiverName  = "receiver"
	ProcessorName = "processor"
	ProjectorName = "projector"
	QueryName     = "query"
	RepairerName  = "repairer"
	RankerName    = "ranker"
)

// Names lists every function, in the order of the pipeline.
func Names() []string {
	return []string{ReceiverName, ProcessorName, ProjectorName, QueryName, RepairerName, RankerName}
}

// QueryRoutes are the HTTP API's routes to the query function, each naming
// its method, as serverless.yml deploys them and the local stack serves
// them.
func QueryRoutes() []string {
	return []string{"GET /", "GET /assets/{proxy+}", "GET /titles", "GET /titles/{titleId}/tallies", "GET /titles/{titleId}/trend", "GET /healthz"}
}

// Config is what the functions need to know of their deployment.
type Config struct {
	Tables            dynamo.Tables
	SubmissionsURL    string // the submissions queue
	DeadLettersURL    string // the submissions' dead-letter queue
	FailuresURL       string // the projector's failure queue
	RepairFailedURL   string // the repair dead-letter queue
	Catalog           domain.Catalog
	Retry             handlers.RetryLimits // how long the processor retries a message
	RepairMaxReceives int                  // the failure queue's maxReceiveCount
	Concurrency       int                  // SDK calls in flight within one invocation
	Reads             handlers.ReadLimits  // how far behind, and how costly, a tally read may be
	JWT               JWT                  // the tokens the receiver verifies itself; empty: none
}

// JWT names the tokens the receiver verifies itself, where no JWT
// authorizer stands in front of it: behind a function URL (ingest=url) with
// auth=jwt. Both empty: it verifies none (an authorizer in front, or
// auth=none).
type JWT struct {
	Issuer   string // an https URL; its discovery document names its keys
	Audience string
}

// DefaultConfig holds the settings that have a default, as serverless.yml
// deploys them: the Lambda environment and the local stack start from it.
// Table names and queue URLs have none: they name a deployment.
func DefaultConfig() Config {
	return Config{
		Catalog:           domain.DefaultCatalog(),
		Retry:             handlers.DefaultRetryLimits(),
		RepairMaxReceives: 5,
		Concurrency:       16,
		Reads:             handlers.DefaultReadLimits(),
	}
}

// ErrUnknownFunction is returned by Validate for a name not in Names.
var ErrUnknownFunction = errors.New("config: no such function")

// Validate reports every setting that the named functions need and that is
// missing or out of range, all at once (errors.Join); with no name, what
// all of them need, as the local stack runs them all. Each function is held
// only to the settings it uses (see needs): a receiver is not refused for a
// missing repair queue it never writes to.
func (c Config) Validate(names ...string) error {
	if len(names) == 0 {
		names = Names()
	}
	var errs []error
	seen := map[string]bool{}
	for _, name := range names {
		settings, ok := needs(name)
		if !ok {
			return fmt.Errorf("%w: %q", ErrUnknownFunction, name)
		}
		for _, setting := range settings {
			if seen[setting] {
				continue
			}
			seen[setting] = true
			if err := c.check(setting); err != nil {
				errs = append(errs, fmt.Errorf("config: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// needs lists the settings a function uses, as its wiring below does.
func needs(function string) ([]string, bool) {
	switch function {
	case ReceiverName:
		return []string{"catalog", "submissions queue URL", "jwt"}, true
	case ProcessorName:
		return []string{"events table", "dead-letter queue URL", "concurrency", "retry limits"}, true
	case ProjectorName:
		return []string{"ballots table", "tallies table", "titles table", "projector failure queue URL", "concurrency"}, true
	case QueryName:
		return []string{"tallies table", "titles table", "catalog", "read limits"}, true
	case RepairerName:
		return []string{"ballots table", "tallies table", "titles table", "repair failed queue URL", "concurrency", "repair max receives"}, true
	case RankerName:
		return []string{"tallies table", "titles table", "catalog"}, true
	}
	return nil, false
}

// check reports what is wrong with one setting.
func (c Config) check(setting string) error {
	required := func(v string) error {
		if v == "" {
			return fmt.Errorf("%s is required", setting)
		}
		return nil
	}
	switch setting {
	case "events table":
		return required(c.Tables.Events)
	case "ballots table":
		return required(c.Tables.Ballots)
	case "tallies table":
		return required(c.Tables.Tallies)
	case "titles table":
		return required(c.Tables.Titles)
	case "submissions queue URL":
		return required(c.SubmissionsURL)
	case "dead-letter queue URL":
		return required(c.DeadLettersURL)
	case "projector failure queue URL":
		return required(c.FailuresURL)
	case "repair failed queue URL":
		return required(c.RepairFailedURL)
	case "catalog":
		if len(c.Catalog.Aspects()) == 0 {
			return errors.New("catalog is empty")
		}
	case "concurrency":
		if c.Concurrency < 1 {
			return fmt.Errorf("concurrency is %d, must be at least 1", c.Concurrency)
		}
	case "retry limits":
		if c.Retry.Failing <= 0 || c.Retry.NewerSchema <= 0 {
			return fmt.Errorf("retry limits are %v (failing) and %v (newer schema), must be positive", c.Retry.Failing, c.Retry.NewerSchema)
		}
	case "repair max receives":
		if c.RepairMaxReceives < 1 {
			return fmt.Errorf("repair max receives is %d, must be at least 1", c.RepairMaxReceives)
		}
	case "read limits":
		return c.Reads.Validate()
	case "jwt":
		if c.JWT == (JWT{}) {
			return nil
		}
		if u, err := url.Parse(c.JWT.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("jwt issuer %q is not an https URL", c.JWT.Issuer)
		}
		if c.JWT.Audience == "" {
			return fmt.Errorf("jwt audience is required with the issuer %s", c.JWT.Issuer)
		}
	}
	return nil
}

// Receiver is the POST /votes function. tokens, when not nil, verifies
// each request's token (behind a function URL, no authorizer checks it
// first); nil leaves the voter to the JWT authorizer's claims, or to the
// body without one.
func Receiver(c Config, sqsc *sqs.Client, tokens handlers.TokenVerifier, log *slog.Logger) *handlers.Receiver {
	r := handlers.NewReceiver(c.Catalog, queue.NewSubmissions(sqsc, c.SubmissionsURL), log)
	if tokens != nil {
		r.VerifyingTokens(tokens)
	}
	return r
}

// ReceiverTokens is the receiver's token verifier for c.JWT: the keys the
// issuer publishes, fetched with client and cached (jwtauth.NewIssuer);
// nil when c.JWT is empty.
func ReceiverTokens(c Config, client *http.Client) (handlers.TokenVerifier, error) {
	if c.JWT == (JWT{}) {
		return nil, nil
	}
	v, err := jwtauth.NewIssuer(c.JWT.Issuer, c.JWT.Audience, client, jwtauth.DefaultIssuerOptions())
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Processor is the submissions queue's function.
func Processor(c Config, db *dynamodb.Client, sqsc *sqs.Client, log *slog.Logger) *handlers.Processor {
	return handlers.NewProcessor(
		dynamo.NewEventStore(db, c.Tables.Events),
		queue.NewDeadLetters(sqsc, c.DeadLettersURL, ProcessorName),
		c.Retry, c.Concurrency, log)
}

// Projector is the event stream's function.
func Projector(c Config, db *dynamodb.Client, sqsc *sqs.Client, log *slog.Logger) *handlers.Projector {
	projectorFor := func(version string) projections.BatchProjector {
		cells := dynamo.NewCellStore(db, c.Tables.Tallies, version)
		return projections.NewIndexedProjector(
			dynamo.NewBallotStore(db, c.Tables.Ballots, version), cells,
			dynamo.NewTitleStore(db, c.Tables.Titles, version), cells,
			c.Concurrency)
	}
	return handlers.NewProjector(dynamo.DecodeEventFields, dynamo.NewRegistries(db, c.Tables.Tallies), projectorFor,
		queue.NewDeadLetters(sqsc, c.FailuresURL, ProjectorName), log)
}

// Repairer is the projector failure queue's function. It writes cells
// alongside the live projector through the same projector code, as one
// more writer on a cell: neither waits for the other.
func Repairer(c Config, db *dynamodb.Client, st *dynamodbstreams.Client, sqsc *sqs.Client, log *slog.Logger) *handlers.Repairer {
	projectorFor := func(version string) projections.BatchProjector {
		cells := dynamo.NewCellStore(db, c.Tables.Tallies, version)
		return projections.NewIndexedProjector(
			dynamo.NewBallotStore(db, c.Tables.Ballots, version), cells,
			dynamo.NewTitleStore(db, c.Tables.Titles, version), cells,
			c.Concurrency)
	}
	return handlers.NewRepairer(dynamo.DecodeEventFields, streams.NewRange(st), dynamo.NewRegistries(db, c.Tables.Tallies), projectorFor,
		queue.NewDeadLetters(sqsc, c.RepairFailedURL, RepairerName), c.RepairMaxReceives, log)
}

// Query is the tallies function. It reads tallies from the title index
// (through summaries of the cells for a title it has none of) and the
// active version through a copy in memory, within c.Reads.
func Query(c Config, db *dynamodb.Client, log *slog.Logger) *handlers.Query {
	return QueryAt(c, db, time.Now, log)
}

// QueryAt is Query on the clock now, for tests that move time.
func QueryAt(c Config, db *dynamodb.Client, now func() time.Time, log *slog.Logger) *handlers.Query {
	cells := func(version string) handlers.TallyReader {
		return dynamo.NewCellStore(db, c.Tables.Tallies, version)
	}
	index := func(version string) handlers.TitleIndexReader {
		return dynamo.NewTitleStore(db, c.Tables.Titles, version)
	}
	tallies := handlers.NewTallyCache(index, cells, dynamo.NewSummaryStore(db, c.Tables.Tallies), c.Reads, now, log)
	registries := dynamo.NewRegistries(db, c.Tables.Tallies)
	var versions handlers.ActiveVersion = registries
	if c.Reads.VersionMaxAge > 0 {
		versions = handlers.NewVersionCache(consistentActive{registries}, c.Reads.VersionMaxAge, now)
	}
	return handlers.NewQuery(c.Catalog, versions, handlers.QueryReaders{
		Tallies:  tallies.For,
		Rankings: func(version string) handlers.RankingReader { return dynamo.NewTitleStore(db, c.Tables.Titles, version) },
		Trends: func(version string) projections.TrendSource {
			return dynamo.NewTitleStore(db, c.Tables.Titles, version)
		},
	}, now, c.Reads.MaxAge, log)
}

var _ handlers.Summaries = (*dynamo.SummaryStore)(nil)

// consistentActive reads the active version with a consistent read, so
// that a version kept in memory for VersionMaxAge is never older than that:
// a promote or rollback is seen within the bound.
type consistentActive struct{ r *dynamo.Registries }

func (a consistentActive) Active(ctx context.Context) (string, error) {
	reg, err := a.r.Load(ctx, true)
	if err != nil {
		return "", err
	}
	return reg.Active, nil
}

// Ranker is the schedule's function: it refreshes the rankings of every
// version the projector writes from their title indexes.
func Ranker(c Config, db *dynamodb.Client, log *slog.Logger) *handlers.Ranker {
	titles := func(version string) handlers.RankingTitles {
		return dynamo.NewTitleStore(db, c.Tables.Titles, version)
	}
	return handlers.NewRanker(dynamo.NewRegistries(db, c.Tables.Tallies), titles, c.Catalog.AspectNames(), time.Now, log)
}
