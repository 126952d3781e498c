package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/infra/dynamo"
)

func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("seed", stderr)
	tgt := targetFlags(fs)
	n := fs.Int("events", 100000, "events to write")
	titles := fs.Int("titles", 50, "titles, drawn with a Zipf skew so that a few get most votes")
	voters := fs.Int("voters", 0, "voters (default: half the events, so some change their vote)")
	seed := fs.Uint64("seed", 1, "random seed")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *n < 1 || *titles < 1 {
		return usageError{errors.New("--events and --titles must be at least 1")}
	}
	if *tgt.stage != "" {
		return usageError{errors.New("seed writes synthetic events: local stacks only (--endpoint or a running votes dev)")}
	}
	if *voters <= 0 {
		*voters = max(*n/2, 1)
	}
	clients, tables, err := tgt.connect(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(*seed, 0x21bf)), 1.1, 1, uint64(*titles-1))
	aspects := domain.DefaultCatalog().Aspects()
	base := time.Now().Add(-time.Hour).UnixNano()

	batches := make(chan []types.WriteRequest, 64)
	var written atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for reqs := range batches {
				if errs[w] != nil {
					continue
				}
				pending := map[string][]types.WriteRequest{tables.Events: reqs}
				for len(pending[tables.Events]) > 0 {
					out, err := clients.DynamoDB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
					if err != nil {
						errs[w] = fmt.Errorf("dynamodb: seed %s: %w", tables.Events, err)
						break
					}
					pending = out.UnprocessedItems
				}
				written.Add(int64(len(reqs)))
			}
		}()
	}
	var batch []types.WriteRequest
	for i := range *n {
		if ctx.Err() != nil {
			break
		}
		a := aspects[rng.IntN(len(aspects))]
		s := domain.Submission{
			VoterID: fmt.Sprintf("u-%d", rng.IntN(*voters)),
			TitleID: fmt.Sprintf("tt%07d", zipf.Uint64()),
			Votes:   []domain.Choice{{Aspect: a.Name, Choice: a.Choices[rng.IntN(len(a.Choices))]}},
		}
		e := s.Accept(fmt.Sprintf("seed-%d", i), time.Unix(0, base+int64(i)*1000)).Events()[0]
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: dynamo.EventItem(e)}})
		if len(batch) == 25 {
			batches <- batch
			batch = nil
		}
	}
	if len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(stdout, "seeded %d events into %s in %s (%.0f/s); they bypass the queue and, on kumo, the stream: run votes rebuild to fold them\n",
		written.Load(), tables.Events, d.Round(time.Millisecond), float64(written.Load())/d.Seconds())
	return ctx.Err()
}
