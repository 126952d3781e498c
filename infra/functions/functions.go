// Package functions wires the pipeline's Lambda functions from SDK clients
// and configuration. The Lambda entry points in cmd/ and the local stack
// build their handlers here, so both run the same code on the same adapters.
package functions

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"votes/domain"
	"votes/handlers"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/queue"
	"votes/infra/streams"
	"votes/projections"
)

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
}

// Validate reports the first missing setting.
func (c Config) Validate() error {
	switch {
	case c.Tables.Events == "" || c.Tables.Ballots == "" || c.Tables.Tallies == "":
		return errors.New("config: table names are required")
	case len(c.Catalog.Aspects()) == 0:
		return errors.New("config: catalog is empty")
	case c.Concurrency < 1:
		return errors.New("config: concurrency must be at least 1")
	}
	return c.Reads.Validate()
}

// Receiver is the POST /votes function.
func Receiver(c Config, cl awscfg.Clients, log *slog.Logger) *handlers.Receiver {
	return handlers.NewReceiver(c.Catalog, queue.NewSubmissions(cl.SQS, c.SubmissionsURL), log)
}

// Processor is the submissions queue's function.
func Processor(c Config, cl awscfg.Clients, log *slog.Logger) *handlers.Processor {
	return handlers.NewProcessor(
		dynamo.NewEventStore(cl.DynamoDB, c.Tables.Events),
		queue.NewDeadLetters(cl.SQS, c.DeadLettersURL, "processor"),
		c.Retry, c.Concurrency, log)
}

// Projector is the event stream's function.
func Projector(c Config, cl awscfg.Clients, log *slog.Logger) *handlers.Projector {
	projectorFor := func(version string) *projections.Projector {
		return projections.NewProjector(
			dynamo.NewBallotStore(cl.DynamoDB, c.Tables.Ballots, version),
			dynamo.NewCellStore(cl.DynamoDB, c.Tables.Tallies, version),
			c.Concurrency)
	}
	return handlers.NewProjector(dynamo.DecodeEventFields, dynamo.NewRegistries(cl.DynamoDB, c.Tables.Tallies), projectorFor,
		queue.NewDeadLetters(cl.SQS, c.FailuresURL, "projector"), log)
}

// Repairer is the projector failure queue's function. It writes cells
// alongside the live projector, as a writer of its own kind ("repair"):
// each takes its turn through the cell's step, and one that finds the
// other's step in flight waits for it, or takes it over once its lease ran
// out.
func Repairer(c Config, cl awscfg.Clients, log *slog.Logger) *handlers.Repairer {
	projectorFor := func(version string) *projections.Projector {
		return projections.NewProjectorWith(
			dynamo.NewBallotStore(cl.DynamoDB, c.Tables.Ballots, version),
			dynamo.NewCellStore(cl.DynamoDB, c.Tables.Tallies, version),
			RepairOptions(c.Concurrency))
	}
	return handlers.NewRepairer(dynamo.DecodeEventFields, streams.NewRange(cl.Streams), dynamo.NewRegistries(cl.DynamoDB, c.Tables.Tallies), projectorFor,
		queue.NewDeadLetters(cl.SQS, c.RepairFailedURL, "repairer"), c.RepairMaxReceives, log)
}

// RepairOptions are the repairer's projector options: not exclusive (the
// live projector and other repairs may be on the same cell), steps leased
// for longer than a repair invocation runs.
func RepairOptions(concurrency int) projections.Options {
	return projections.Options{Concurrency: concurrency, Owner: "repair", Lease: 2 * time.Minute, MaxWait: 10 * time.Second}
}

// Query is the tallies function. It reads tallies through the summaries
// and the active version through a copy in memory, within c.Reads.
func Query(c Config, cl awscfg.Clients, log *slog.Logger) *handlers.Query {
	return QueryAt(c, cl, time.Now, log)
}

// QueryAt is Query on the clock now, for tests that move time.
func QueryAt(c Config, cl awscfg.Clients, now func() time.Time, log *slog.Logger) *handlers.Query {
	cells := func(version string) handlers.TallyReader {
		return dynamo.NewCellStore(cl.DynamoDB, c.Tables.Tallies, version)
	}
	tallies := handlers.NewTallyCache(cells, dynamo.NewSummaryStore(cl.DynamoDB, c.Tables.Tallies), c.Reads, now, log)
	registries := dynamo.NewRegistries(cl.DynamoDB, c.Tables.Tallies)
	var versions handlers.ActiveVersion = registries
	if c.Reads.VersionMaxAge > 0 {
		versions = handlers.NewVersionCache(consistentActive{registries}, c.Reads.VersionMaxAge, now)
	}
	return handlers.NewQuery(c.Catalog, versions, tallies.For, c.Reads.MaxAge, log)
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
