package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"votes/admin"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/queue"
)

// devState is what a running votes dev leaves for other commands to find it.
type devState struct {
	Endpoint string `json:"endpoint"`
	API      string `json:"api"`
	Stage    string `json:"stage"`
	PID      int    `json:"pid"`
	Catalog  string `json:"catalog,omitempty"` // as VOTES_CATALOG reads it, for votes load
}

func devStatePath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "votes", "dev.json")
}

func writeDevState(s devState) error {
	p := devStatePath()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(s)
	return os.WriteFile(p, b, 0o644)
}

// runningDev finds a votes dev that is still running.
func runningDev() (devState, bool) {
	b, err := os.ReadFile(devStatePath())
	if err != nil {
		return devState{}, false
	}
	var s devState
	if json.Unmarshal(b, &s) != nil || s.PID <= 0 || syscall.Kill(s.PID, 0) != nil {
		return devState{}, false
	}
	return s, true
}

// target says which deployment a command works on.
type target struct {
	endpoint, stage, region *string
}

func targetFlags(fs *flag.FlagSet) target {
	return target{
		endpoint: fs.String("endpoint", "", "AWS endpoint of a local stack (default: the running votes dev)"),
		stage:    fs.String("stage", "", "a deployed stage, reached with the default AWS credential chain (with --endpoint: the local stack's stage, default local)"),
		region:   fs.String("region", "", "the stage's region (default: the AWS configuration's)"),
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
	case endpoint == "" && stage == "":
		dev, ok := runningDev()
		if !ok {
			return awscfg.Clients{}, "", usageError{errors.New("no votes dev is running here: start one, or give --endpoint or --stage")}
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
