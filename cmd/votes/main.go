// Command votes is the pipeline's command line: it runs the whole pipeline
// locally (votes dev) and reads tallies (votes tallies).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `votes runs and inspects the vote pipeline.

Usage:
  votes dev [--addr 127.0.0.1:8080]   run the whole pipeline in this process
  votes dev --auth jwt --jwt-key FILE  the same, POST /votes behind a JWT authorizer (or --jwks FILE)
  votes tallies TITLE [--api URL]     print a title's tallies
  votes load [--rate N] [--count N] [--check]  send votes to any deployment and check its tallies
  votes token --jwt-key FILE --sub VOTER  print a signed token naming a voter, for curl

Projection versions (against the running votes dev, --endpoint URL, or
--stage STAGE [--region REGION] with the default AWS credentials):
  votes rebuild [--segments 8] [--resume]  fold the event table into a new version, live traffic going on
  votes versions                           list versions, their state and counts
  votes promote VERSION                    switch queries to a ready (or superseded) version;
                                           the active one becomes superseded, still written
  votes rollback                           switch queries back to the version the last promotion superseded
  votes verify [VERSION]                   compare a version with the event table; exit 1 on any difference
                                           (or when the version is retired: its items are deleted)
  votes retire VERSION                     stop writing a version and delete its items; fences its rebuild
  votes seed --events N                    write synthetic events straight into a local event table

Failures (same targets):
  votes repair                             repair what the projector gave up on, from its failure queue
  votes repair --from TIME --to TIME       re-project the events received in that time range (RFC 3339)
  votes dlq [--repair]                     list dead letters with their reasons, without taking them
  votes dlq redrive                        send the dead-lettered submissions back to the submissions queue

Run "votes COMMAND -h" for a command's flags.
`

type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

var commands = map[string]command{
	"dev":      runDev,
	"tallies":  runTallies,
	"rebuild":  runRebuild,
	"versions": runVersions,
	"promote":  runPromote,
	"rollback": runRollback,
	"verify":   runVerify,
	"retire":   runRetire,
	"seed":     runSeed,
	"load":     runLoad,
	"token":    runToken,
	"repair":   runRepair,
	"dlq":      runDLQ,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "votes: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := cmd(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errDiffers) {
			return 1
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "votes %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "votes %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// usageError is a mistake in the command line.
type usageError struct{ error }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("votes "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags given before or after the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
