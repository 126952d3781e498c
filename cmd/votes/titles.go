package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"votes/handlers"
)

// listTitles reads GET /titles page by page until limit titles (all when
// limit is 0), calling each for every page.
func listTitles(ctx context.Context, api, sort, aspect string, limit int, each func(handlers.TitleList) error) error {
	cursor := ""
	for got := 0; ; {
		q := url.Values{"sort": {sort}}
		if aspect != "" {
			q.Set("aspect", aspect)
		}
		n := 100
		if limit > 0 {
			n = min(n, limit-got)
		}
		q.Set("limit", strconv.Itoa(n))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page handlers.TitleList
		if err := getJSON(ctx, api, "/titles?"+q.Encode(), &page); err != nil {
			return fmt.Errorf("list titles: %w", err)
		}
		if err := each(page); err != nil {
			return err
		}
		got += len(page.Titles)
		if page.Next == nil || (limit > 0 && got >= limit) {
			return nil
		}
		cursor = *page.Next
	}
}

// getJSON GETs api+path and decodes its JSON body into v; a status other
// than 200 is an error carrying the API's answer.
func getJSON(ctx context.Context, api, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+path, nil)
	if err != nil {
		return usageError{err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return unreachable(api, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

func runTitles(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("titles", stderr)
	apiFlag := fs.String("api", "", apiUsage)
	stack := fs.String("stack", "", stackUsage)
	sort := fs.String("sort", "votes", "order: votes, approval (Wilson lower bound of the up share) or recent (latest vote)")
	aspect := fs.String("aspect", "", "rank on this aspect (default: votes over every aspect; approval on overall)")
	limit := fs.Int("limit", 20, "how many titles to show (0 for all)")
	asJSON := fs.Bool("json", false, "print one JSON object per title")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	if *limit < 0 {
		return usageError{errors.New("--limit must be 0 (all) or more")}
	}
	api, err := apiOf(*apiFlag, *stack)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	rank, shown, rankedAt := 0, "", ""
	err = listTitles(ctx, api, *sort, *aspect, *limit, func(p handlers.TitleList) error {
		shown = p.Aspect
		if rankedAt == "" {
			rankedAt = p.RankedAt
		}
		if shown == "" {
			shown = "overall"
		}
		if rank == 0 && !*asJSON {
			fmt.Fprintf(tw, "RANK\tTITLE\tVOTES\t%s UP\t%s DOWN\tAPPROVAL\tLAST VOTE\t\n", strings.ToUpper(shown), strings.ToUpper(shown))
		}
		for _, r := range p.Titles {
			rank++
			if *asJSON {
				b, _ := json.Marshal(r)
				if _, err := fmt.Fprintln(stdout, string(b)); err != nil {
					return err
				}
				continue
			}
			last := r.LastVoteAt
			if t, err := time.Parse(time.RFC3339Nano, last); err == nil {
				last = t.Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%.1f%%\t%s\t\n", rank, r.TitleID, r.Votes, r.Aspects[shown]["up"], r.Aspects[shown]["down"], 100*r.Approval, last)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rank == 0 && !*asJSON {
		_, err := fmt.Fprintln(stdout, "no titles yet: rankings are refreshed every few seconds once votes are projected")
		return err
	}
	if err := tw.Flush(); err != nil || *asJSON {
		return err
	}
	if t, err := time.Parse(time.RFC3339Nano, rankedAt); err == nil {
		_, err := fmt.Fprintf(stdout, "ranked at %s (the ranker runs every minute; votes tallies TITLE is current)\n", t.Format("2006-01-02 15:04:05 MST"))
		return err
	}
	return nil
}
