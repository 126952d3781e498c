// Package lambdaenv reads the Lambda functions' configuration from the
// environment serverless.yml sets, and builds their clients once.
package lambdaenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"votes/domain"
	"votes/handlers"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/functions"
)

// Load reads the configuration, validates it and builds the SDK clients and
// a JSON logger that stamps every line with the Lambda request ID.
func Load(ctx context.Context) (functions.Config, awscfg.Clients, *slog.Logger, error) {
	log := lambdacontext.NewLogger()
	catalog, err := domain.ParseCatalog(os.Getenv("VOTES_CATALOG"))
	if err != nil {
		return functions.Config{}, awscfg.Clients{}, nil, err
	}
	c := functions.Config{
		Tables: dynamo.Tables{
			Events:  os.Getenv("VOTES_EVENTS_TABLE"),
			Ballots: os.Getenv("VOTES_BALLOTS_TABLE"),
			Tallies: os.Getenv("VOTES_TALLIES_TABLE"),
		},
		SubmissionsURL:  os.Getenv("VOTES_SUBMISSIONS_QUEUE_URL"),
		DeadLettersURL:  os.Getenv("VOTES_DEAD_LETTER_QUEUE_URL"),
		FailuresURL:     os.Getenv("VOTES_PROJECTOR_FAILURE_QUEUE_URL"),
		RepairFailedURL: os.Getenv("VOTES_REPAIR_FAILED_QUEUE_URL"),
		Catalog:         catalog,
		Retry: handlers.RetryLimits{
			Failing:     envDuration("VOTES_RETRY_FAILING_FOR", handlers.DefaultRetryLimits().Failing),
			NewerSchema: envDuration("VOTES_RETRY_NEWER_SCHEMA_FOR", handlers.DefaultRetryLimits().NewerSchema),
		},
		RepairMaxReceives: envInt("VOTES_REPAIR_MAX_RECEIVES", 5),
		Concurrency:       envInt("VOTES_CONCURRENCY", 16),
		Reads:             handlers.DefaultReadLimits(),
	}
	if err := c.Validate(); err != nil {
		return functions.Config{}, awscfg.Clients{}, nil, err
	}
	clients, err := awscfg.New(ctx, awscfg.Options{Endpoint: os.Getenv("VOTES_AWS_ENDPOINT")})
	if err != nil {
		return functions.Config{}, awscfg.Clients{}, nil, err
	}
	return c, clients, log, nil
}

// Must is Load for main: a function that cannot start logs why and exits.
func Must(ctx context.Context) (functions.Config, awscfg.Clients, *slog.Logger) {
	c, cl, log, err := Load(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configuration:", err)
		os.Exit(1)
	}
	return c, cl, log
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	d, err := time.ParseDuration(os.Getenv(name))
	if err != nil || d <= 0 {
		return def
	}
	return d
}

func envInt(name string, def int) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return def
	}
	return n
}
