package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"votes/domain"
	"votes/handlers"
)

// titleTallies is one title's tallies, as an export writes them.
type titleTallies struct {
	TitleID string                      `json:"titleId"`
	Aspects map[string]map[string]int64 `json:"aspects"`
}

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", stderr)
	apiFlag := fs.String("api", "", apiUsage)
	stack := fs.String("stack", "", stackUsage)
	format := fs.String("format", "csv", "csv or ndjson (one title per line); tallies' CSV is titleId,aspect,choice,votes, trends' is titleId,aspect,bucket,t,cast_CHOICE...,tally_CHOICE...")
	what := fs.String("what", "tallies", "what to export: tallies (current counts) or trends (votes cast and tallies per time bucket)")
	titles := fs.String("titles", "", "comma-separated title IDs, read fresh (default: every title, from the leaderboard, up to a minute behind)")
	bucket := fs.String("bucket", "", "trends: minute, hour or day (default hour)")
	aspect := fs.String("aspect", "", "trends: the aspect (default overall)")
	fromFlag := fs.String("from", "", "trends: start, RFC3339, rounded down to the bucket (default: --to minus 120 minutes, 48 hours or 30 days by bucket)")
	toFlag := fs.String("to", "", "trends: end, RFC3339, rounded up to the bucket (default: now, the same for every title)")
	outPath := fs.String("out", "", "write to this file instead of stdout")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	if *format != "csv" && *format != "ndjson" {
		return usageError{fmt.Errorf("--format %q: want csv or ndjson", *format)}
	}
	trendQuery := url.Values{}
	switch *what {
	case "tallies":
		var trendOnly []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "bucket" || f.Name == "aspect" || f.Name == "from" || f.Name == "to" {
				trendOnly = append(trendOnly, "--"+f.Name)
			}
		})
		if len(trendOnly) > 0 {
			return usageError{fmt.Errorf("%s: only for --what trends", strings.Join(trendOnly, ", "))}
		}
	case "trends":
		if *bucket != "" {
			trendQuery.Set("bucket", *bucket)
		}
		if *aspect != "" {
			trendQuery.Set("aspect", *aspect)
		}
		// Every title's trend ends at the same moment, so that their
		// buckets line up even when one ends while the export runs.
		to := time.Now()
		if *toFlag != "" {
			if to, err = time.Parse(time.RFC3339, *toFlag); err != nil {
				return usageError{fmt.Errorf("--to %q: want RFC3339, such as 2026-11-29T18:00:00Z", *toFlag)}
			}
		}
		trendQuery.Set("to", to.UTC().Format(time.RFC3339))
		if *fromFlag != "" {
			from, err := time.Parse(time.RFC3339, *fromFlag)
			if err != nil {
				return usageError{fmt.Errorf("--from %q: want RFC3339, such as 2026-11-01T00:00:00Z", *fromFlag)}
			}
			trendQuery.Set("from", from.UTC().Format(time.RFC3339))
		}
	default:
		return usageError{fmt.Errorf("--what %q: want tallies or trends", *what)}
	}
	var ids []string
	if *titles != "" {
		for _, id := range strings.Split(*titles, ",") {
			v, err := domain.ValidTitleID(id)
			if err != nil {
				return usageError{fmt.Errorf("--titles: %w", err)}
			}
			ids = append(ids, v)
		}
	}
	api, err := apiOf(*apiFlag, *stack)
	if err != nil {
		return err
	}
	out := stdout
	if *outPath != "" {
		f, err := os.Create(*outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriter(out)
	if *what == "trends" {
		catalog, err := loadCatalog("", api)
		if err != nil {
			return err
		}
		err = exportTrends(ctx, api, ids, trendQuery, bw, *format, catalog, cmp.Or(*aspect, "overall"))
		if err != nil {
			return err
		}
		return bw.Flush()
	}
	write, flush := exportWriter(bw, *format)
	each := func(t titleTallies) error { return write(t) }
	if len(ids) > 0 {
		for _, id := range ids {
			var t titleTallies
			if err := getJSON(ctx, api, "/titles/"+url.PathEscape(id)+"/tallies", &t); err != nil {
				return fmt.Errorf("export %s: %w", id, err)
			}
			if err := each(t); err != nil {
				return err
			}
		}
	} else {
		err := listTitles(ctx, api, "votes", "", 0, func(p handlers.TitleList) error {
			for _, r := range p.Titles {
				if err := each(titleTallies{TitleID: r.TitleID, Aspects: r.Aspects}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// exportTrends writes the trend that GET /titles/{id}/trend?query gives
// for each of ids, or for every title of the leaderboard when ids is
// empty.
func exportTrends(ctx context.Context, api string, ids []string, query url.Values, w io.Writer, format string, catalog domain.Catalog, aspect string) error {
	write, flush := trendWriter(w, format, catalog, aspect)
	one := func(id string) error {
		var b handlers.TrendBody
		if err := getJSON(ctx, api, "/titles/"+url.PathEscape(id)+"/trend?"+query.Encode(), &b); err != nil {
			return fmt.Errorf("export %s: %w", id, err)
		}
		return write(b)
	}
	for _, id := range ids {
		if err := one(id); err != nil {
			return err
		}
	}
	if len(ids) == 0 {
		err := listTitles(ctx, api, "votes", "", 0, func(p handlers.TitleList) error {
			for _, r := range p.Titles {
				if err := one(r.TitleID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return flush()
}

// trendWriter writes trends in format: one JSON object per title, as the
// API gives it, or CSV with one row per title and bucket, its columns
// those of the API's own CSV: titleId, aspect, bucket, t (the bucket's
// start), then the votes cast and the tally at the bucket's end of each
// choice. The choices are the first trend's, in the catalog's order as
// far as the catalog (the running votes dev's, else the standard one)
// knows them, then by name; every title of an export has the same aspect,
// so the same choices. With no title at all, the header names the
// catalog's choices of aspect.
func trendWriter(w io.Writer, format string, catalog domain.Catalog, aspect string) (write func(handlers.TrendBody) error, flush func() error) {
	if format == "ndjson" {
		enc := json.NewEncoder(w)
		return func(b handlers.TrendBody) error { return enc.Encode(b) }, func() error { return nil }
	}
	cw := csv.NewWriter(w)
	var choices []string
	started := false
	header := func() error {
		started = true
		row := []string{"titleId", "aspect", "bucket", "t"}
		for _, c := range choices {
			row = append(row, "cast_"+c)
		}
		for _, c := range choices {
			row = append(row, "tally_"+c)
		}
		return cw.Write(row)
	}
	return func(b handlers.TrendBody) error {
			if !started {
				choices = trendChoices(b, catalog)
				if err := header(); err != nil {
					return err
				}
			}
			for _, p := range b.Points {
				for _, m := range []map[string]int64{p.Cast, p.Tally} {
					for c := range m {
						if !slices.Contains(choices, c) {
							return fmt.Errorf("export %s: its trend has the choice %q, which the first title's has not", b.TitleID, c)
						}
					}
				}
				row := []string{b.TitleID, b.Aspect, b.Bucket, p.T.UTC().Format(time.RFC3339)}
				for _, c := range choices {
					row = append(row, strconv.FormatInt(p.Cast[c], 10))
				}
				for _, c := range choices {
					row = append(row, strconv.FormatInt(p.Tally[c], 10))
				}
				if err := cw.Write(row); err != nil {
					return err
				}
			}
			return nil
		}, func() error {
			if !started {
				a, _ := catalog.Aspect(aspect)
				choices = a.Choices
				if err := header(); err != nil {
					return err
				}
			}
			cw.Flush()
			return cw.Error()
		}
}

// trendChoices lists the choices of a trend's points, in the catalog's
// order for those its aspect has, then by name.
func trendChoices(b handlers.TrendBody, catalog domain.Catalog) []string {
	seen := map[string]bool{}
	for _, p := range b.Points {
		for c := range p.Cast {
			seen[c] = true
		}
		for c := range p.Tally {
			seen[c] = true
		}
	}
	var out []string
	if a, ok := catalog.Aspect(b.Aspect); ok {
		for _, c := range a.Choices {
			if seen[c] {
				out = append(out, c)
				delete(seen, c)
			}
		}
	}
	return append(out, sortedKeys(seen)...)
}

// exportWriter writes titles in format: CSV rows of title, aspect, choice
// and votes (a header first), or one JSON object per line.
func exportWriter(w io.Writer, format string) (write func(titleTallies) error, flush func() error) {
	if format == "ndjson" {
		enc := json.NewEncoder(w)
		return func(t titleTallies) error { return enc.Encode(t) }, func() error { return nil }
	}
	cw := csv.NewWriter(w)
	header := false
	return func(t titleTallies) error {
			if !header {
				header = true
				if err := cw.Write([]string{"titleId", "aspect", "choice", "votes"}); err != nil {
					return err
				}
			}
			for _, a := range sortedKeys(t.Aspects) {
				for _, c := range sortedKeys(t.Aspects[a]) {
					if err := cw.Write([]string{t.TitleID, a, c, strconv.FormatInt(t.Aspects[a][c], 10)}); err != nil {
						return err
					}
				}
			}
			return nil
		}, func() error {
			if !header {
				if err := cw.Write([]string{"titleId", "aspect", "choice", "votes"}); err != nil {
					return err
				}
			}
			cw.Flush()
			return cw.Error()
		}
}
