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
	"strings"
	"syscall"
)

const usage = `votes runs and inspects the vote pipeline.

Usage:
  votes dev [--addr 127.0.0.1:8080] [--name NAME]  run the whole pipeline in this process,
                                       registered as NAME (default: its port, as 8080)
  votes stacks                         list the votes dev stacks running here
  votes dev --auth jwt --jwt-key FILE  the same, POST /votes behind a JWT authorizer (or --jwks FILE)
  votes tallies TITLE [--stack NAME | --api URL]  print a title's tallies
  votes titles [--sort votes|approval|recent] [--aspect A] [--limit 20]  print the leaderboard
  votes export [--what tallies|trends] [--format csv|ndjson] [--titles A,B] [--out FILE]
                                       every title's tallies (or those named); trends with
                                       [--bucket minute|hour|day] [--aspect A] [--from T] [--to T]
  votes ballot VOTER TITLE [--json]    a voter's current choices on a title and the vote events
                                       behind them (same targets as below)
  votes load [--rate N] [--count N] [--check]  send votes to any deployment and check its tallies
  votes token --jwt-key FILE --sub VOTER  print a signed token naming a voter, for curl
  votes version                        print the module version and the VCS revision it was built from

Projection versions (against the running votes dev, the one named by --stack NAME
when several run, --endpoint URL, or --stage STAGE [--region REGION] with the
default AWS credentials):
  votes rebuild [--segments 8] [--resume | --abandon]  fold the event table into a new version, live
                                           traffic going on; --resume carries on with an interrupted
                                           one, --abandon retires it and starts anew
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
	"titles":   runTitles,
	"export":   runExport,
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
	"stacks":   runStacks,
	"version":  runVersion,
	"ballot":   runBallot,
}

// synopsis is each command's positional arguments, for its usage line.
var synopsis = map[string]string{
	"tallies": "TITLE",
	"ballot":  "VOTER TITLE",
	"promote": "VERSION",
	"retire":  "VERSION",
	"verify":  "[VERSION]",
	"dlq":     "[redrive]",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "-version", "--version":
		args[0] = "version"
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "votes: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := cmd(ctx, args[1:], stdout, stderr); err != nil {
		var he helpRequest
		if errors.As(err, &he) {
			he.print(stdout)
			return 0
		}
		if errors.Is(err, errDiffers) {
			return 1
		}
		if errors.Is(err, errInterrupted) {
			return 130 // as a shell reports a command Ctrl-C stopped
		}
		fmt.Fprintf(stderr, "votes %s: %v\n", args[0], err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// errInterrupted makes a command that said in one line what Ctrl-C left
// undone exit 130 without more.
var errInterrupted = errors.New("interrupted")

// usageError is a mistake in the command line.
type usageError struct{ error }

// newFlags is a command's flag set. The flag package prints nothing:
// parse returns a flag error for run to print once, and -h as a
// helpRequest. stderr is kept for the commands' signature.
func newFlags(name string, _ io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("votes "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// usageLine is a command's synopsis, as "usage: votes tallies [flags] TITLE".
func usageLine(fs *flag.FlagSet) string {
	line := "usage: " + fs.Name() + " [flags]"
	if a := synopsis[strings.TrimPrefix(fs.Name(), "votes ")]; a != "" {
		line += " " + a
	}
	return line
}

// helpRequest is -h: print the command's usage and flags, and exit 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h helpRequest) Error() string { return flag.ErrHelp.Error() }
func (h helpRequest) Unwrap() error { return flag.ErrHelp }

func (h helpRequest) print(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nflags:\n", usageLine(h.fs))
	h.fs.SetOutput(w)
	h.fs.PrintDefaults()
	h.fs.SetOutput(io.Discard)
}

// parse parses flags given before or after the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpRequest{fs}
			}
			return nil, usageError{fmt.Errorf("%w\n%s (%s -h for the flags)", err, usageLine(fs), fs.Name())}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// noMoreArgs refuses positional arguments past the first n.
func noMoreArgs(pos []string, n int) error {
	if len(pos) <= n {
		return nil
	}
	extra := pos[n:]
	if len(extra) == 1 {
		return usageError{fmt.Errorf("unexpected argument %q", extra[0])}
	}
	return usageError{fmt.Errorf("unexpected arguments %q", extra)}
}
