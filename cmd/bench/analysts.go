package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/middleware"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/metering"
	"votes/projections/projectiontest"
)

// printAnalystCosts seeds titles titles (two votes each, appended to the
// event table as the processor would, projected by the live pipeline into
// the cells and the title index), runs the ranker once, then sends gets
// GET /titles, 8 at a time, in each of a few listings, and prints their
// latency and the read units the query function spent on them.
func printAnalystCosts(ctx context.Context, out io.Writer, titles, gets int) error {
	queryMeter, rankerMeter := metering.New(nil), metering.New(nil)
	settings := local.DefaultSettings()
	settings.RankEvery = 0 // the ranker runs once, below, metered
	stack, err := local.Start(ctx, local.Config{Addr: "127.0.0.1:0", Stage: "bench-analysts", Settings: settings,
		FunctionAPIOptions: func(fn string) []func(*middleware.Stack) error {
			switch fn {
			case "query":
				return []func(*middleware.Stack) error{queryMeter.APIOption}
			case "ranker":
				return []func(*middleware.Stack) error{rankerMeter.APIOption}
			}
			return nil
		}})
	if err != nil {
		return err
	}
	defer stack.Close(context.Background())

	began := time.Now()
	if err := seedTitles(ctx, stack, titles); err != nil {
		return err
	}
	if err := stack.WaitIdle(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "analysts: %d titles seeded (%d votes) and indexed in %s\n", titles, 2*titles, time.Since(began).Round(100*time.Millisecond))

	start := time.Now()
	if err := stack.RankNow(ctx); err != nil {
		return fmt.Errorf("ranker: %w", err)
	}
	rc := rankerMeter.Snapshot()
	fmt.Fprintf(out, "ranker_refresh first: %s, %.0f RCU, %.0f WCU for %d titles, every page written (%.4f USD)\n",
		time.Since(start).Round(time.Millisecond), rc.RCU, rc.WCU, titles, refreshUSD(rc))
	// A minute's votes later: 1,000 votes on titles spread over the
	// catalog move most pages of most orders.
	if err := voteAgain(ctx, stack, titles, 1000); err != nil {
		return err
	}
	rankerMeter.Reset()
	start = time.Now()
	if err := stack.RankNow(ctx); err != nil {
		return fmt.Errorf("ranker: %w", err)
	}
	rc = rankerMeter.Snapshot()
	fmt.Fprintf(out, "ranker_refresh after 1000 votes: %s, %.0f RCU, %.0f WCU (%.4f USD; once a minute: %.2f USD a day)\n",
		time.Since(start).Round(time.Millisecond), rc.RCU, rc.WCU, refreshUSD(rc), refreshUSD(rc)*24*60)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	deep, err := cursorAt(ctx, client, stack.URL, titles/2)
	if err != nil {
		return err
	}
	for _, listing := range []struct{ name, query string }{
		{"votes, first page", "limit=50"},
		{"approval on story", "sort=approval&aspect=story&limit=50"},
		{"recent", "sort=recent&limit=50"},
		{fmt.Sprintf("votes, 100 from title %d", titles/2), "limit=100&cursor=" + url.QueryEscape(deep)},
	} {
		queryMeter.Reset()
		lat, failed, err := timeGets(ctx, client, stack.URL+"/titles?"+listing.query, "titles", gets)
		if err != nil {
			return err
		}
		c := queryMeter.Snapshot()
		fmt.Fprintf(out, "titles_get %s: p50 %.1f ms, p99 %.1f ms, %.2f RCU and %.2f requests per GET (%d GETs, %d failed)\n",
			listing.name, ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), c.RCU/float64(gets), float64(c.Total())/float64(gets), gets, failed)
	}
	return printTrendCosts(ctx, out, stack, client, queryMeter, gets)
}

// trendTitle is the title printTrendCosts gives 30 days of votes.
const trendTitle = "tt-30-days"

// printTrendCosts seeds 30 days of votes on one title (every hour, votes
// on every aspect, some voters changing their minds), then times GETs of
// its trend over the 30 days by hour, and of its tallies as of 15 days
// ago, with the read units the query function spent on them.
func printTrendCosts(ctx context.Context, out io.Writer, stack *local.Stack, client *http.Client, queryMeter *metering.Meter, gets int) error {
	store := dynamo.NewEventStore(stack.Admin.DynamoDB, stack.Tables.Events)
	now := time.Now()
	start := now.Add(-30 * 24 * time.Hour)
	aspects := domain.DefaultCatalog().AspectNames()
	votes := 0
	for h := range 30 * 24 {
		for i := range 4 {
			voter := fmt.Sprintf("u%d", (h*4+i)%500)
			choice := []string{"up", "down"}[(h*7+i*3)%5/3]
			at := start.Add(time.Duration(h)*time.Hour + time.Duration(i)*13*time.Minute)
			e := projectiontest.Vote(voter, trendTitle, fmt.Sprintf("h%d-%d", h, i), aspects[(h+i)%len(aspects)], choice, at.UnixNano())
			if _, err := store.Append(ctx, []domain.VoteCast{e}); err != nil {
				return err
			}
			votes++
		}
	}
	if err := stack.WaitIdle(ctx); err != nil {
		return err
	}
	for _, q := range []struct{ name, path, field string }{
		{"30 days by hour", "/titles/" + trendTitle + "/trend?aspect=overall&bucket=hour&from=" + url.QueryEscape(start.UTC().Format(time.RFC3339)), "points"},
		{"30 days by day", "/titles/" + trendTitle + "/trend?aspect=overall&bucket=day&from=" + url.QueryEscape(start.UTC().Format(time.RFC3339)), "points"},
		{"tallies as of 15 days ago", "/titles/" + trendTitle + "/tallies?at=" + url.QueryEscape(now.Add(-15*24*time.Hour).UTC().Format(time.RFC3339)), "aspects"},
	} {
		queryMeter.Reset()
		lat, failed, err := timeGets(ctx, client, stack.URL+q.path, q.field, gets)
		if err != nil {
			return err
		}
		c := queryMeter.Snapshot()
		fmt.Fprintf(out, "trend_get %s (%d votes over 30 days): p50 %.1f ms, p99 %.1f ms, %.2f RCU and %.2f requests per GET (%d GETs, %d failed)\n",
			q.name, votes, ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), c.RCU/float64(gets), float64(c.Total())/float64(gets), gets, failed)
	}
	return nil
}

func refreshUSD(c metering.Counts) float64 {
	return (c.WCU*metering.ListPrices.DynamoWritePerMillion + c.RCU*metering.ListPrices.DynamoReadPerMillion) / 1e6
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// seedTitles appends two votes on each of n titles to the event table, 32
// at a time.
func seedTitles(ctx context.Context, stack *local.Stack, n int) error {
	store := dynamo.NewEventStore(stack.Admin.DynamoDB, stack.Tables.Events)
	now := time.Now().Add(-time.Hour).UnixNano()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				title := fmt.Sprintf("tt%07d", i)
				for j, choice := range []string{"up", []string{"up", "down"}[i%2]} {
					e := projectiontest.Vote(fmt.Sprintf("u%d", j), title, fmt.Sprintf("s%d-%d", i, j), domain.DefaultCatalog().AspectNames()[j], choice, now+i*1000+int64(j))
					if _, err := store.Append(ctx, []domain.VoteCast{e}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// cursorAt walks GET /titles a page at a time to the cursor of title at.
func cursorAt(ctx context.Context, client *http.Client, api string, at int) (string, error) {
	cursor := ""
	for got := 0; got < at; {
		q := url.Values{"limit": {fmt.Sprint(min(100, at-got))}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Titles []json.RawMessage `json:"titles"`
			Next   *string           `json:"next"`
		}
		if err := getInto(ctx, client, api+"/titles?"+q.Encode(), &page); err != nil {
			return "", err
		}
		if page.Next == nil {
			return "", fmt.Errorf("GET /titles ended after %d titles, before %d", got+len(page.Titles), at)
		}
		got += len(page.Titles)
		cursor = *page.Next
	}
	return cursor, nil
}

func getInto(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// timeGets sends n GETs of u, 8 at a time, and returns each one's latency;
// an answer without field in its JSON object, or with it empty, failed.
func timeGets(ctx context.Context, client *http.Client, u, field string, n int) ([]time.Duration, int64, error) {
	lat := make([]time.Duration, n)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				start := time.Now()
				var body map[string]json.RawMessage
				if err := getInto(ctx, client, u, &body); err != nil || len(body[field]) <= 2 {
					failed.Add(1)
				}
				lat[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	return lat, failed.Load(), ctx.Err()
}

// voteAgain appends n more votes, on titles spread over the catalog.
func voteAgain(ctx context.Context, stack *local.Stack, titles, n int) error {
	store := dynamo.NewEventStore(stack.Admin.DynamoDB, stack.Tables.Events)
	now := time.Now().UnixNano()
	for i := range n {
		title := fmt.Sprintf("tt%07d", (i*7919)%titles)
		e := projectiontest.Vote(fmt.Sprintf("again%d", i), title, fmt.Sprintf("again%d", i), "overall", "up", now+int64(i))
		if _, err := store.Append(ctx, []domain.VoteCast{e}); err != nil {
			return err
		}
	}
	return nil
}
