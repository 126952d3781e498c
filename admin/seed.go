package admin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"votes/domain"
)

// SeedOptions shape synthetic events.
type SeedOptions struct {
	Events, Titles, Voters int
	Seed                   uint64
}

// Seed writes synthetic single-vote events straight into the event table
// with the deployment's EventLoader: a fixture for measuring rebuilds. The
// events bypass the queue, and on kumo the stream too (the DynamoDB loader
// writes with BatchWriteItem, which emits no stream records there), so only
// a rebuild folds them. Titles are drawn with a
// Zipf skew; voters default to half the events, so some change their vote.
func (a *Admin) Seed(ctx context.Context, o SeedOptions) (int64, error) {
	if o.Events < 1 || o.Titles < 1 {
		return 0, errors.New("seed: events and titles must be at least 1")
	}
	if o.Voters <= 0 {
		o.Voters = max(o.Events/2, 1)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	var zipf *rand.Zipf
	if o.Titles > 1 {
		zipf = rand.NewZipf(rand.New(rand.NewPCG(o.Seed, 0x21bf)), 1.1, 1, uint64(o.Titles-1))
	}
	aspects := domain.DefaultCatalog().Aspects()
	base := time.Now().Add(-time.Hour).UnixNano()

	// Eight writers; the first that fails stops the others and the
	// generator.
	batches := make(chan []domain.VoteCast, 64)
	var written atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range 8 {
		g.Go(func() error {
			for batch := range batches {
				if err := a.d.Loader.Load(gctx, batch); err != nil {
					return fmt.Errorf("seed: %w", err)
				}
				written.Add(int64(len(batch)))
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(batches)
		var batch []domain.VoteCast
		for i := range o.Events {
			asp := aspects[rng.IntN(len(aspects))]
			title := 0
			if zipf != nil {
				title = int(zipf.Uint64())
			}
			s := domain.Submission{
				VoterID: fmt.Sprintf("u-%d", rng.IntN(o.Voters)),
				TitleID: fmt.Sprintf("tt%07d", title),
				Votes:   []domain.Choice{{Aspect: asp.Name, Choice: asp.Choices[rng.IntN(len(asp.Choices))]}},
			}
			batch = append(batch, s.Accept(fmt.Sprintf("seed-%d-%d", o.Seed, i), time.Unix(0, base+int64(i)*1000)).Events()[0])
			if len(batch) == 25 || i == o.Events-1 {
				select {
				case batches <- batch:
				case <-gctx.Done():
					return gctx.Err()
				}
				batch = nil
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return written.Load(), err
	}
	return written.Load(), ctx.Err()
}

// RawScan reads the event table with the parallel scan a rebuild uses,
// doing nothing with the items: the floor a rebuild is held to.
func (a *Admin) RawScan(ctx context.Context, segments, pageSize int) (int64, time.Duration, error) {
	start := time.Now()
	n, err := a.d.Events.CountRaw(ctx, segments, pageSize)
	return n, time.Since(start), err
}
