package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"votes/admin"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/queue"
)

// target says which deployment a command works on.
type target struct {
	endpoint, stage, region, stack *string
}

func targetFlags(fs *flag.FlagSet) target {
	return target{
		endpoint: fs.String("endpoint", "", "AWS endpoint of a local stack (default: the running votes dev)"),
		stage:    fs.String("stage", "", "a deployed stage, reached with the default AWS credential chain (with --endpoint: the local stack's stage, default local)"),
		region:   fs.String("region", "", "the stage's region (default: the AWS configuration's)"),
		stack:    fs.String("stack", "", "the running votes dev of this name (default: the only one running; see votes stacks)"),
	}
}

// admin connects to the target and checks its tables exist.
func (t target) admin(ctx context.Context) (*admin.Admin, error) {
	a, _, err := t.adminOf(ctx)
	return a, err
}

// adminOf is admin, and names the tables it works on.
func (t target) adminOf(ctx context.Context) (*admin.Admin, dynamo.Tables, error) {
	clients, stage, err := t.clients(ctx)
	if err != nil {
		return nil, dynamo.Tables{}, err
	}
	tables := dynamo.TablesFor(stage)
	d := dynamo.NewStage(clients.DynamoDB, tables).Deployment()
	// A rebuild is not marked ready while stream failures wait for repair.
	d.Unrepaired = queue.NewRepairsByName(clients.SQS, queue.NamesFor(stage))
	a := admin.New(d)
	if err := a.CheckTables(ctx); err != nil {
		return nil, dynamo.Tables{}, err
	}
	return a, tables, nil
}

// clients builds clients for the target and names its stage.
func (t target) clients(ctx context.Context) (awscfg.Clients, string, error) {
	endpoint, stage := *t.endpoint, *t.stage
	switch {
	case *t.stack != "" && (endpoint != "" || stage != ""):
		return awscfg.Clients{}, "", usageError{errors.New("give --stack, or --endpoint or --stage, not both")}
	case endpoint == "" && stage == "":
		dev, err := pickStack(*t.stack)
		if errors.Is(err, errNoStack) {
			err = usageError{fmt.Errorf("%w: start one with: votes dev; or give --endpoint URL (a local stack) or --stage STAGE (a deployment)", err)}
		}
		if err != nil {
			return awscfg.Clients{}, "", err
		}
		endpoint, stage = dev.Endpoint, dev.Stage
	case endpoint != "" && stage == "":
		stage = "local"
	}
	c, err := awscfg.New(ctx, awscfg.Options{Endpoint: endpoint, Region: *t.region})
	if err != nil {
		return awscfg.Clients{}, "", fmt.Errorf("connect: %w", err)
	}
	return c, stage, nil
}
