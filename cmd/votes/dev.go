package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"votes/domain"
	"votes/infra/local"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address the HTTP API listens on")
	catalogSpec := fs.String("catalog", os.Getenv("VOTES_CATALOG"), `aspects and choices, as "overall=up|down;story=up|down" (default: the standard five, up or down)`)
	verbose := fs.Bool("v", false, "log every batch the functions process")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	catalog, err := domain.ParseCatalog(*catalogSpec)
	if err != nil {
		return usageError{err}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	stack, err := local.Start(ctx, local.Config{
		Addr: *addr, Stage: "local", Settings: local.DefaultSettings(), Catalog: catalog, Log: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "aws endpoint %s (DynamoDB, DynamoDB Streams, SQS; any access key, region us-east-1)\n", stack.Endpoint)
	fmt.Fprintf(stdout, "tables %s, %s, %s; queues %s, %s, %s\n", stack.Tables.Events, stack.Tables.Ballots, stack.Tables.Tallies,
		stack.Queues.Submissions, stack.Queues.DeadLetters, stack.Queues.ProjectorFailed)
	if err := writeDevState(devState{Endpoint: stack.Endpoint, API: stack.URL, Stage: "local", PID: os.Getpid()}); err != nil {
		log.Warn("other votes commands will not find this stack", "err", err)
	}
	defer os.Remove(devStatePath())
	fmt.Fprintf(stdout, "listening on %s\n", stack.URL)

	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down: finishing queued votes")
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stack.Close(closeCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
