// Package awscfg builds aws-sdk-go-v2 clients for AWS or for an emulator
// endpoint, the same way for every command.
package awscfg

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// Options say where the clients go.
type Options struct {
	// Region defaults to the SDK's default chain, then us-east-1.
	Region string
	// Endpoint, when set, sends every call to an emulator such as kumo, with
	// static dummy credentials.
	Endpoint string
	// HTTPClient replaces the SDK's HTTP client, for instance to inject faults.
	HTTPClient aws.HTTPClient
	// Retryer, when set, replaces the SDK's standard retryer (tests shorten
	// its backoff).
	Retryer func() aws.Retryer
	// APIOptions are added to every client's middleware stack (for counting).
	APIOptions []func(*middleware.Stack) error
}

// Clients are the SDK clients the pipeline uses.
type Clients struct {
	Config   aws.Config
	Endpoint string
	DynamoDB *dynamodb.Client
	SQS      *sqs.Client
	Streams  *dynamodbstreams.Client
}

// New loads the AWS configuration and builds the clients once.
func New(ctx context.Context, o Options) (Clients, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Endpoint != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		if o.Region == "" {
			opts = append(opts, config.WithRegion("us-east-1"))
		}
	}
	if o.Retryer != nil {
		opts = append(opts, config.WithRetryer(o.Retryer))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return Clients{}, fmt.Errorf("aws: load config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	cfg.APIOptions = append(cfg.APIOptions, o.APIOptions...)
	if o.HTTPClient != nil {
		// Set on the config after loading: loading with a custom client
		// fails where AWS_CA_BUNDLE is set.
		cfg.HTTPClient = o.HTTPClient
	}
	c := Clients{Config: cfg, Endpoint: o.Endpoint}
	c.DynamoDB = dynamodb.NewFromConfig(cfg, func(opt *dynamodb.Options) {
		if o.Endpoint != "" {
			opt.BaseEndpoint = aws.String(o.Endpoint)
			// The emulator does not send the CRC32 checksum the SDK checks.
			opt.DisableValidateResponseChecksum = true
		}
	})
	c.SQS = sqs.NewFromConfig(cfg, func(opt *sqs.Options) {
		if o.Endpoint != "" {
			opt.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	c.Streams = dynamodbstreams.NewFromConfig(cfg, func(opt *dynamodbstreams.Options) {
		if o.Endpoint != "" {
			opt.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	return c, nil
}
