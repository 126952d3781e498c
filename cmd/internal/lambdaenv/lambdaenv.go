// Package lambdaenv reads a Lambda function's configuration from the
// environment serverless.yml sets, starting from functions.DefaultConfig.
// A malformed or out-of-range value is an error at start-up that names the
// variable: a function never runs on a default it was not meant to get.
package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"votes/domain"
	"votes/infra/awscfg"
	"votes/infra/functions"
)

// Config reads function's configuration from the environment and
// validates it for that function. It reports every problem at once.
func Config(function string) (functions.Config, error) {
	c := functions.DefaultConfig()
	c.Tables.Events = os.Getenv("VOTES_EVENTS_TABLE")
	c.Tables.Ballots = os.Getenv("VOTES_BALLOTS_TABLE")
	c.Tables.Tallies = os.Getenv("VOTES_TALLIES_TABLE")
	c.Tables.Titles = os.Getenv("VOTES_TITLES_TABLE")
	c.SubmissionsURL = os.Getenv("VOTES_SUBMISSIONS_QUEUE_URL")
	c.DeadLettersURL = os.Getenv("VOTES_DEAD_LETTER_QUEUE_URL")
	c.FailuresURL = os.Getenv("VOTES_PROJECTOR_FAILURE_QUEUE_URL")
	c.RepairFailedURL = os.Getenv("VOTES_REPAIR_FAILED_QUEUE_URL")
	// Set only behind a function URL with auth=jwt: the receiver then
	// verifies tokens itself.
	c.JWT.Issuer = os.Getenv("VOTES_JWT_ISSUER")
	c.JWT.Audience = os.Getenv("VOTES_JWT_AUDIENCE")
	var errs []error
	if v, ok := os.LookupEnv("VOTES_CATALOG"); ok && v != "" {
		catalog, err := domain.ParseCatalog(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("VOTES_CATALOG=%q: %w", v, err))
		} else {
			c.Catalog = catalog
		}
	}
	errs = append(errs,
		duration("VOTES_RETRY_FAILING_FOR", &c.Retry.Failing),
		duration("VOTES_RETRY_NEWER_SCHEMA_FOR", &c.Retry.NewerSchema),
		positiveInt("VOTES_REPAIR_MAX_RECEIVES", &c.RepairMaxReceives),
		positiveInt("VOTES_CONCURRENCY", &c.Concurrency),
	)
	// A bad value leaves the default in place, which Validate accepts: it
	// adds only what else is missing.
	errs = append(errs, c.Validate(function))
	if err := errors.Join(errs...); err != nil {
		return functions.Config{}, fmt.Errorf("%s: %w", function, err)
	}
	return c, nil
}

// Load reads and validates function's configuration, loads the AWS
// configuration (from which the function builds only the clients it
// calls) and makes a JSON logger that stamps every line with the Lambda
// request ID.
func Load(ctx context.Context, function string) (functions.Config, awscfg.Config, *slog.Logger, error) {
	c, err := Config(function)
	if err != nil {
		return functions.Config{}, awscfg.Config{}, nil, err
	}
	aws, err := awscfg.Load(ctx, awscfg.Options{Endpoint: os.Getenv("VOTES_AWS_ENDPOINT")})
	if err != nil {
		return functions.Config{}, awscfg.Config{}, nil, err
	}
	return c, aws, lambdacontext.NewLogger(), nil
}

// Must is Load for main: a function that cannot start logs why and exits.
func Must(ctx context.Context, function string) (functions.Config, awscfg.Config, *slog.Logger) {
	c, aws, log, err := Load(ctx, function)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configuration:", err)
		os.Exit(1)
	}
	return c, aws, log
}

// duration sets *d from the variable name when it is set: a Go duration
// above zero.
func duration(name string, d *time.Duration) error {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil
	}
	parsed, err := time.ParseDuration(v)
	if err != nil || parsed <= 0 {
		return fmt.Errorf("%s=%q: want a duration above zero, such as 15m", name, v)
	}
	*d = parsed
	return nil
}

// positiveInt sets *n from the variable name when it is set: a whole
// number of at least 1.
func positiveInt(name string, n *int) error {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil
	}
	parsed, err := strconv.Atoi(v)
	if err != nil || parsed < 1 {
		return fmt.Errorf("%s=%q: want a whole number of at least 1", name, v)
	}
	*n = parsed
	return nil
}
