package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"votes/infra/dynamo"
	"votes/internal/loadgen"
)

// catalog prints the throughput, tally lag and cost of a catalog's scale:
// o.catalogTitles titles, Zipf-distributed, each submission voting on 1 to
// 5 aspects. At that scale a stream batch holds few votes per title, so
// tally cells coalesce less than on o.titles titles.
func (b *bench) catalog(ctx context.Context) error {
	load := loadgen.Config{
		Count: b.o.catalogSubs, Concurrency: b.o.concurrency, Voters: b.o.catalogSubs * 10, Titles: b.o.catalogTitles, Skew: "zipf",
		Aspects: 1, AspectsMax: 5, ChangeShare: 0.1, RetryShare: 0.02, Run: "cat",
	}
	m, err := measure(ctx, b.stack, b.meter, b.client, load, b.checkCells)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "local_votes_per_s_catalog: %.0f\n", m.votesPerS)
	fmt.Fprintf(b.out, "  (%d titles, Zipf; %d submissions of 1 to 5 aspects, %d votes; %.0f submissions/s)\n",
		b.o.catalogTitles, m.submissions, m.votes, m.submissionsPerS)
	load.Run = "catlat"
	if err := b.printLatency(ctx, "_catalog", load, m.submissionsPerS/2); err != nil {
		return err
	}
	b.printRequests("_catalog", m)
	printBill(b.out, "usd_per_million_votes_catalog", m, b.stack.Tables)
	return nil
}

// checkCells sums every title's cells in the active version, straight from
// the tallies table. A check through the API would take the query
// function's budget of sums (10 a second): 1,000 s for 10,000 titles.
func (b *bench) checkCells(ctx context.Context, res loadgen.Result) ([]loadgen.Mismatch, error) {
	db := b.stack.Admin.DynamoDB
	version, err := dynamo.NewRegistries(db, b.stack.Tables.Tallies).Active(ctx)
	if err != nil {
		return nil, err
	}
	cells := dynamo.NewCellStore(db, b.stack.Tables.Tallies, version)
	titles := res.Titles
	deadline := time.Now().Add(time.Minute)
	for {
		var (
			mu      sync.Mutex
			bad     []loadgen.Mismatch
			firstEr error
			next    = make(chan string)
			wg      sync.WaitGroup
		)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for title := range next {
					got, err := cells.Tally(ctx, title)
					mu.Lock()
					if err != nil && firstEr == nil {
						firstEr = err
					} else if want := res.Expected[title]; err == nil && !got.Equal(want) {
						bad = append(bad, loadgen.Mismatch{TitleID: title, Got: got, Want: want})
					}
					mu.Unlock()
				}
			}()
		}
		for _, t := range titles {
			next <- t
		}
		close(next)
		wg.Wait()
		if firstEr != nil {
			return nil, firstEr
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			return bad, nil
		}
		// Read again only the titles that differed: a cell write may
		// become visible a little later.
		titles = titles[:0:0]
		for _, m := range bad {
			titles = append(titles, m.TitleID)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
