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

// Config is a loaded AWS configuration and the endpoint its clients go
// to. A Lambda function builds from it only the clients it calls.
type Config struct {
	AWS      aws.Config
	Endpoint string
}

// Load loads the AWS configuration once; its methods build the clients.
func Load(ctx context.Context, o Options) (Config, error) {
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
		return Config{}, fmt.Errorf("aws: load config: %w", err)
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
	return Config{AWS: cfg, Endpoint: o.Endpoint}, nil
}

// DynamoDB builds a DynamoDB client.
func (c Config) DynamoDB() *dynamodb.Client {
	return dynamodb.NewFromConfig(c.AWS, func(opt *dynamodb.Options) {
		if c.Endpoint != "" {
			opt.BaseEndpoint = aws.String(c.Endpoint)
			// The emulator does not send the CRC32 checksum the SDK checks.
			opt.DisableValidateResponseChecksum = true
		}
	})
}

// SQS builds an SQS client.
func (c Config) SQS() *sqs.Client {
	return sqs.NewFromConfig(c.AWS, func(opt *sqs.Options) {
		if c.Endpoint != "" {
			opt.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
}

// Streams builds a DynamoDB Streams client.
func (c Config) Streams() *dynamodbstreams.Client {
	return dynamodbstreams.NewFromConfig(c.AWS, func(opt *dynamodbstreams.Options) {
		if c.Endpoint != "" {
			opt.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
}

// New loads the AWS configuration and builds every client, for the CLI,
// the local stack and tests, which call all three services.
func New(ctx context.Context, o Options) (Clients, error) {
	c, err := Load(ctx, o)
	if err != nil {
		return Clients{}, err
	}
	return Clients{Config: c.AWS, Endpoint: c.Endpoint, DynamoDB: c.DynamoDB(), SQS: c.SQS(), Streams: c.Streams()}, nil
}
