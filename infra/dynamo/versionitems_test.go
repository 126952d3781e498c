package dynamo_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"votes/domain"
	"votes/domain/lifecycle"
	"votes/infra/dynamo"
	"votes/internal/kumotest"
	"votes/projections"
	"votes/projections/projectiontest"
)

// TestVersionItems: a version's stats, titles and deletion see its own
// items only. Version "1" is next to version "10" (whose keys it
// prefixes but for the separator), a registry and both versions'
// rebuild checkpoints; deleting 1 leaves 10, the registry and 10's
// checkpoint as they were.
func TestVersionItems(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	db := f.clients.DynamoDB
	items := dynamo.NewVersionItems(db, f.tables)
	events := []domain.VoteCast{
		projectiontest.Vote("u1", "t2", "s1", "story", "up", 1),
		projectiontest.Vote("u2", "t2", "s2", "story", "down", 1),
		projectiontest.Vote("u3", "t1", "s3", "acting", "up", 1),
	}
	for _, version := range []string{"1", "10"} {
		p := projections.NewProjector(dynamo.NewBallotStore(db, f.tables.Ballots, version), dynamo.NewCellStore(db, f.tables.Tallies, version), 2)
		if rep := p.Project(ctx, events); len(rep.Failed) > 0 {
			t.Fatalf("project into %s: %v", version, rep.Failed)
		}
		if err := dynamo.NewCheckpointStore(db, f.tables.Tallies).Save(ctx, version, projections.Checkpoint{Segment: 0, After: "x", Events: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dynamo.NewRegistries(db, f.tables.Tallies).Update(ctx, func(r *lifecycle.Registry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	cells := 0 // cells the events fall in
	seen := map[domain.Cell]bool{}
	for _, e := range events {
		if !seen[e.Cell()] {
			seen[e.Cell()] = true
			cells++
		}
	}

	stats, err := items.Stats(ctx)
	want := map[string]dynamo.VersionStats{"1": {Cells: cells, Votes: 3}, "10": {Cells: cells, Votes: 3}}
	if err != nil || fmt.Sprint(stats) != fmt.Sprint(want) {
		t.Fatalf("stats: %v, %v; want %v (no entry for the registry or the checkpoints)", stats, err, want)
	}
	if titles, err := items.Titles(ctx, "1"); err != nil || !slices.Equal(titles, []string{"t1", "t2"}) {
		t.Fatalf("titles of 1: %v, %v", titles, err)
	}

	// Ballots (3), cells and the checkpoint of version 1.
	n, err := items.Delete(ctx, "1", nil)
	if err != nil || n != int64(3+cells+1) {
		t.Fatalf("delete 1: %d items, %v; want %d", n, err, 3+cells+1)
	}
	stats, err = items.Stats(ctx)
	if err != nil || fmt.Sprint(stats) != fmt.Sprint(map[string]dynamo.VersionStats{"10": want["10"]}) {
		t.Fatalf("stats after deleting 1: %v, %v", stats, err)
	}
	if titles, err := items.Titles(ctx, "1"); err != nil || len(titles) != 0 {
		t.Fatalf("titles of 1 after deleting it: %v, %v", titles, err)
	}
	loaded, err := dynamo.NewBallotStore(db, f.tables.Ballots, "10").Load(ctx, "t2", []string{"u1", "u2"})
	if err != nil || len(loaded) != 2 {
		t.Fatalf("version 10's ballots after deleting 1: %v, %v", loaded, err)
	}
	cps, err := dynamo.NewCheckpointStore(db, f.tables.Tallies).Load(ctx, "10", 1)
	if err != nil || cps[0].After != "x" {
		t.Fatalf("version 10's checkpoint after deleting 1: %+v, %v", cps, err)
	}
	if n, err := items.Delete(ctx, "1", nil); err != nil || n != 0 {
		t.Fatalf("delete 1 again: %d items, %v", n, err)
	}
}

// TestEventStoreLoad: events loaded in batches are stored, each once,
// loading them again changes nothing.
func TestEventStoreLoad(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	var events []domain.VoteCast
	for i := range 60 { // three batches of at most 25
		events = append(events, projectiontest.Vote(fmt.Sprint("u", i), "t1", "s", "story", "up", int64(i+1)))
	}
	for range 2 {
		if err := f.events.Load(ctx, events); err != nil {
			t.Fatal(err)
		}
	}
	stored := kumotest.StoredEvents(t, f.tables.Events)
	key := func(e domain.VoteCast) string { return e.VoteID }
	got, want := slices.Sorted(slices.Values(mapKeys(stored, key))), slices.Sorted(slices.Values(mapKeys(events, key)))
	if !slices.Equal(got, want) {
		t.Fatalf("stored %d events, loaded %d distinct", len(got), len(want))
	}
}

func mapKeys(es []domain.VoteCast, key func(domain.VoteCast) string) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = key(e)
	}
	return out
}
