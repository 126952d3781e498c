package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"votes/domain"
	"votes/internal/loadgen"
	"votes/projections"
)

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load", stderr)
	cfg := loadgen.Config{}
	apiFlag := fs.String("api", "", apiUsage)
	stack := fs.String("stack", "", stackUsage)
	fs.Float64Var(&cfg.Rate, "rate", 0, "submissions per second (0: as fast as the API answers)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to send (with --count 0)")
	fs.IntVar(&cfg.Count, "count", 0, "how many submissions to send (default 10000 when no --duration)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "submissions in flight")
	fs.IntVar(&cfg.Voters, "voters", 100000, "distinct voters")
	fs.IntVar(&cfg.Titles, "titles", 20, "distinct titles (named load-RUN-N)")
	fs.StringVar(&cfg.Skew, "skew", "zipf", `title popularity: "uniform" or "zipf"`)
	fs.IntVar(&cfg.Aspects, "aspects-per-submission", 1, "aspects voted on per submission, 1 to 5 (at most the catalog's)")
	catalogSpec := fs.String("catalog", os.Getenv("VOTES_CATALOG"), `the deployment's aspects and choices, as its VOTES_CATALOG: "overall=up|down;story=up|down" (default: the running votes dev's when --api is its, else the standard five)`)
	fs.Float64Var(&cfg.ChangeShare, "changes", 0.1, "share of submissions that change an earlier vote")
	fs.Float64Var(&cfg.RetryShare, "retries", 0.05, "share of submissions sent again with the same Idempotency-Key")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	check := fs.Bool("check", false, "after the run, wait for the tallies and compare them with what the run must produce")
	checkTimeout := fs.Duration("check-timeout", 2*time.Minute, "how long --check waits for the pipeline")
	jwtKey := fs.String("jwt-key", "", "sign a token for each voter (sub = voter ID) with this file: an HMAC secret (HS256) or a PEM RSA private key (RS256)")
	issuer := fs.String("jwt-issuer", defaultIssuer, "with --jwt-key: the tokens' issuer")
	audience := fs.String("jwt-audience", defaultAudience, "with --jwt-key: the tokens' audience")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	if cfg.URL, err = apiOf(*apiFlag, *stack); err != nil {
		return err
	}
	if cfg.Count == 0 && cfg.Duration == 0 {
		cfg.Count = 10000
	}
	catalog, err := loadCatalog(*catalogSpec, cfg.URL)
	if err != nil {
		return usageError{err}
	}
	cfg.Catalog = catalog
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if *jwtKey != "" {
		signer, err := newSigner(*jwtKey, *issuer, *audience, time.Hour)
		if err != nil {
			return err
		}
		cfg.Tokens = signer
	}
	if isTerminal(stderr) {
		cfg.Tick = func(s loadgen.Stats) {
			fmt.Fprintf(stderr, "\r%s  sent %d  accepted %d  rejected %d  failed %d  %.0f/s   ",
				s.Elapsed.Round(time.Second), s.Sent, s.Accepted, s.Rejected, s.Failed, float64(s.Accepted)/s.Elapsed.Seconds())
		}
	}
	res, err := loadgen.Run(ctx, cfg)
	if cfg.Tick != nil {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %d submissions (%d votes accepted, %d resent with the same key) in %s\n", res.Sent, res.Votes, res.Retries, res.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "accepted %d, rejected %d, connection failures %d; %.0f submissions/s\n", res.Accepted, res.Rejected, res.Failed, res.Rate)
	fmt.Fprintf(stdout, "accept latency p50 %s  p90 %s  p99 %s  max %s\n",
		ms(res.Percentile(0.50)), ms(res.Percentile(0.90)), ms(res.Percentile(0.99)), ms(res.Percentile(1)))
	if res.Accepted == 0 {
		return fmt.Errorf("no submission was accepted by %s (%d rejected, %d connection failures)", cfg.URL, res.Rejected, res.Failed)
	}
	fmt.Fprintln(stdout, "tallies this run must produce:")
	writeExpected(stdout, res)
	if *check {
		bad, err := loadgen.Check(ctx, http.DefaultClient, cfg.URL, res, *checkTimeout)
		if err != nil {
			return err
		}
		if len(bad) > 0 {
			fmt.Fprintln(stdout, "MISMATCH: these tallies differ from what the run must produce:")
			writeMismatches(stdout, bad)
			return fmt.Errorf("%d of %d titles differ: votes lost or counted twice", len(bad), len(res.Titles))
		}
		fmt.Fprintf(stdout, "check: all %d titles tally exactly what was accepted (%d votes, none lost, none counted twice)\n", len(res.Titles), res.Votes)
	}
	if res.Failed > 0 {
		return fmt.Errorf("%d connection failures to %s (each retried with the same key; the counts above are what got through)", res.Failed, cfg.URL)
	}
	return nil
}

// writeExpected prints the tallies a run must produce, one line per
// title, aspect and choice.
func writeExpected(w io.Writer, res loadgen.Result) {
	titles := append([]string(nil), res.Titles...)
	sort.Strings(titles)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TITLE\tASPECT\tCHOICE\tVOTES")
	for _, t := range titles {
		c := res.Expected[t].Compact()
		for _, aspect := range sortedKeys(c) {
			for _, choice := range sortedKeys(c[aspect]) {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", t, aspect, choice, c[aspect][choice])
			}
		}
	}
	tw.Flush()
}

// writeMismatches prints each count that differs from what the run must
// produce.
func writeMismatches(w io.Writer, bad []loadgen.Mismatch) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  TITLE\tASPECT\tCHOICE\tTALLIED\tWANT")
	for _, m := range bad {
		got, want := m.Got.Compact(), m.Want.Compact()
		cells := map[string]map[string]bool{}
		for _, c := range []projections.Counts{got, want} {
			for aspect, choices := range c {
				for choice := range choices {
					if cells[aspect] == nil {
						cells[aspect] = map[string]bool{}
					}
					cells[aspect][choice] = true
				}
			}
		}
		for _, aspect := range sortedKeys(cells) {
			for _, choice := range sortedKeys(cells[aspect]) {
				if g, w := got[aspect][choice], want[aspect][choice]; g != w {
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\n", m.TitleID, aspect, choice, g, w)
				}
			}
		}
	}
	tw.Flush()
}

// loadCatalog is the catalog a load sends: spec when given, else the
// catalog of the running votes dev whose API api is, else the default.
func loadCatalog(spec, api string) (domain.Catalog, error) {
	if spec == "" {
		for _, dev := range runningStacks() {
			if dev.API == api {
				spec = dev.Catalog
			}
		}
	}
	return domain.ParseCatalog(spec)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
