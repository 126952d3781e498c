package dynamo_test

import (
	"context"
	"fmt"
	"testing"

	"votes/infra/dynamo"
	"votes/projections"
	"votes/projections/storetest"
)

func TestTitleStoreContract(t *testing.T) {
	storetest.TestTitleIndex(t, func(t *testing.T) storetest.TitleStore {
		f := newFixture(t, nil)
		return dynamo.NewTitleStore(f.clients.DynamoDB, f.tables.Titles, "1")
	})
}

func TestRetireDeletesTheTitleIndex(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	keep, gone := dynamo.NewTitleStore(f.clients.DynamoDB, f.tables.Titles, "1"), dynamo.NewTitleStore(f.clients.DynamoDB, f.tables.Titles, "2")
	for _, s := range []*dynamo.TitleStore{keep, gone} {
		var sums []projections.TitleSummary
		for i := range 40 {
			sum := projections.TitleSummary{TitleID: fmt.Sprintf("tt%02d", i), Counts: projections.Counts{"story": {"up": int64(i)}}, Cells: map[int]int64{i % 64: 1}, Rev: 1}
			if err := s.Put(ctx, sum); err != nil {
				t.Fatal(err)
			}
			sums = append(sums, sum)
		}
		if err := s.PutPages(ctx, projections.Pages(sums, projections.RankingKey{Sort: projections.ByVotes}, 1)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := dynamo.NewVersionItems(f.clients.DynamoDB, f.tables).Delete(ctx, "2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 41 {
		t.Errorf("deleted %d items of version 2, want its 40 summaries and 1 ranking page", n)
	}
	if all, err := gone.All(ctx); err != nil || len(all) != 0 {
		t.Errorf("version 2 still lists %d titles (%v)", len(all), err)
	}
	if _, found, err := gone.Page(ctx, projections.RankingKey{Sort: projections.ByVotes}, 0); err != nil || found {
		t.Errorf("version 2's ranking page: found %v, %v", found, err)
	}
	if all, err := keep.All(ctx); err != nil || len(all) != 40 {
		t.Errorf("version 1 lists %d titles (%v), want its 40 untouched", len(all), err)
	}
}
