package admin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/projections"
)

// SeedOptions shape synthetic events.
type SeedOptions struct {
	Events, Titles, Voters int
	Seed                   uint64
}

// Seed writes synthetic single-vote events straight into the event table
// with BatchWriteItem: a fixture for measuring rebuilds. The events bypass
// the queue, and on kumo the stream too (BatchWriteItem emits no stream
// records there), so only a rebuild folds them. Titles are drawn with a
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
	batches := make(chan []types.WriteRequest, 64)
	var written atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range 8 {
		g.Go(func() error {
			for reqs := range batches {
				pending := map[string][]types.WriteRequest{a.Tables.Events: reqs}
				for len(pending[a.Tables.Events]) > 0 {
					out, err := a.DB.BatchWriteItem(gctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
					if err != nil {
						return fmt.Errorf("dynamodb: seed %s: %w", a.Tables.Events, err)
					}
					pending = out.UnprocessedItems
				}
				written.Add(int64(len(reqs)))
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(batches)
		var batch []types.WriteRequest
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
			e := s.Accept(fmt.Sprintf("seed-%d-%d", o.Seed, i), time.Unix(0, base+int64(i)*1000)).Events()[0]
			batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: dynamo.EventItem(e)}})
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
	s := dynamo.NewEventScanner(a.DB, a.Tables.Events, pageSize)
	start := time.Now()
	var n atomic.Int64
	err := projections.ScanSegments(ctx, projections.Segments(segments),
		func(ctx context.Context, segment int, after projections.Cursor) ([]map[string]types.AttributeValue, projections.Cursor, error) {
			return s.RawPage(ctx, segment, segments, after)
		},
		func(_ context.Context, _ int, items []map[string]types.AttributeValue, _ projections.Cursor) error {
			n.Add(int64(len(items)))
			return nil
		})
	return n.Load(), time.Since(start), err
}
