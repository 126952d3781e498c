package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"votes/admin"
)

func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("seed", stderr)
	tgt := targetFlags(fs)
	n := fs.Int("events", 100000, "events to write")
	titles := fs.Int("titles", 50, "titles, drawn with a Zipf skew so that a few get most votes")
	voters := fs.Int("voters", 0, "voters (default: half the events, so some change their vote)")
	seed := fs.Uint64("seed", 1, "random seed")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	if *n < 1 || *titles < 1 {
		return usageError{errors.New("--events and --titles must be at least 1")}
	}
	if *tgt.stage != "" {
		return usageError{errors.New("seed writes synthetic events: local stacks only (--endpoint or a running votes dev)")}
	}
	a, tables, err := tgt.adminOf(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	written, err := a.Seed(ctx, admin.SeedOptions{Events: *n, Titles: *titles, Voters: *voters, Seed: *seed})
	if err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(stdout, "seeded %d events into %s in %s (%.0f/s); they bypass the queue and, on kumo, the stream: run votes rebuild to fold them\n",
		written, tables.Events, d.Round(time.Millisecond), float64(written)/d.Seconds())
	return nil
}
