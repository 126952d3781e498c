package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

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
	format := fs.String("format", "csv", "csv (titleId,aspect,choice,votes) or ndjson (one title per line)")
	what := fs.String("what", "tallies", "what to export: tallies")
	titles := fs.String("titles", "", "comma-separated title IDs, read fresh (default: every title, from the leaderboard, up to a minute behind)")
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
	if *what != "tallies" {
		return usageError{fmt.Errorf("--what %q: only tallies can be exported (trends are not projected yet)", *what)}
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
