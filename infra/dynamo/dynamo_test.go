package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"votes/domain"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/infra/kumotest"
	"votes/projections"
	"votes/projections/projectiontest"
)

type fixture struct {
	clients awscfg.Clients
	tables  dynamo.Tables
	events  *dynamo.EventStore
	ballots *dynamo.BallotStore
	cells   *dynamo.CellStore
}

// newFixture creates a fresh set of tables in the shared emulator, with
// stores whose SDK calls go through faults when it is not nil.
func newFixture(t testing.TB, flaky *faults.Transport) fixture {
	t.Helper()
	admin := kumotest.Clients(t, nil)
	f := fixture{tables: dynamo.TablesFor(kumotest.Stage(t))}
	for _, spec := range f.tables.Specs() {
		if _, err := admin.DynamoDB.CreateTable(context.Background(), spec.CreateInput()); err != nil {
			t.Fatal(err)
		}
	}
	f.clients = admin
	if flaky != nil {
		f.clients = kumotest.Clients(t, flaky.Client())
	}
	f.events = dynamo.NewEventStore(f.clients.DynamoDB, f.tables.Events)
	f.ballots = dynamo.NewBallotStore(f.clients.DynamoDB, f.tables.Ballots, "1")
	f.cells = dynamo.NewCellStore(f.clients.DynamoDB, f.tables.Tallies, "1")
	return f
}

func TestEventStoreAppendsOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	e := projectiontest.Vote("u1", "t1", "s1", "story", "up", 100)

	if got, err := f.events.Append(ctx, e); err != nil || got != domain.Appended {
		t.Fatalf("first append: %v, %v; want appended", got, err)
	}
	retried := e
	retried.RecordedAt = 200 // the same submission accepted again later
	if got, err := f.events.Append(ctx, retried); err != nil || got != domain.Duplicate {
		t.Fatalf("redelivered append: %v, %v; want duplicate", got, err)
	}
	other := e
	other.Choice = "down" // another vote under the same ID
	if got, err := f.events.Append(ctx, other); err != nil || got != domain.Conflict {
		t.Fatalf("conflicting append: %v, %v; want conflict", got, err)
	}
	stored := kumotest.StoredEvents(t, f.tables.Events)
	if len(stored) != 1 || stored[0] != e {
		t.Fatalf("event table holds %+v, want only the first vote %+v", stored, e)
	}
}

func TestEventStoreAppendRetriedAfterApplied(t *testing.T) {
	flaky := faults.New(1)
	f := newFixture(t, flaky)
	// Every PutItem is applied and its response lost; the SDK retries.
	flaky.Set(0, 1, func(target, _ string) bool { return faults.Action(target, "PutItem") })
	e := projectiontest.Vote("u1", "t1", "s1", "story", "up", 100)
	_, err := f.events.Append(context.Background(), e)
	if err == nil {
		t.Fatal("append succeeded although every response was lost")
	}
	flaky.Off()
	got, err := f.events.Append(context.Background(), e)
	if err != nil || got != domain.Duplicate {
		t.Fatalf("append after the lost responses: %v, %v; want duplicate", got, err)
	}
	if n := len(kumotest.StoredEvents(t, f.tables.Events)); n != 1 {
		t.Fatalf("event table holds %d items, want 1", n)
	}
}

func TestBallotStoreVersions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	b := projections.NewBallot("u1", "t1")
	b.Apply(projectiontest.Vote("u1", "t1", "s1", "story", "up", 100))
	b.Version, b.Step, b.Prev = 1, "step-a", map[string]string{"story": ""}
	if err := f.ballots.Save(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := f.ballots.Save(ctx, b); err != nil {
		t.Fatalf("saving the stored ballot again (a retried call) must succeed: %v", err)
	}
	stale := b
	stale.Step = "step-b"
	if err := f.ballots.Save(ctx, stale); !errors.Is(err, projections.ErrStale) {
		t.Fatalf("a second writer at the same version: %v, want ErrStale", err)
	}
	next := b
	next.Apply(projectiontest.Vote("u1", "t1", "s2", "story", "down", 200))
	next.Version, next.Step, next.Prev = 2, "step-c", map[string]string{"story": "up"}
	if err := f.ballots.Save(ctx, next); err != nil {
		t.Fatal(err)
	}
	got, err := f.ballots.Load(ctx, "t1", []string{"u1", "u2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["u1"].Version != 2 || got["u1"].Aspects["story"].Choice != "down" || got["u1"].Prev["story"] != "up" || got["u1"].Step != "step-c" {
		t.Fatalf("loaded %+v, want u1's version 2 with story down, changed from up by step-c", got)
	}
}

func TestCellStoreStepsAndTally(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	cell := domain.Cell{TitleID: "t1", Shard: 3}
	if in, err := f.cells.Begin(ctx, cell, projections.Step{ID: "a", Voters: []string{"u1", "u2"}}); err != nil || in != nil {
		t.Fatalf("begin on an idle cell: %v, %v", in, err)
	}
	if in, err := f.cells.Begin(ctx, cell, projections.Step{ID: "a", Voters: []string{"u1", "u2"}}); err != nil || in != nil {
		t.Fatalf("beginning the same step again (a retried call): %v, %v", in, err)
	}
	in, err := f.cells.Begin(ctx, cell, projections.Step{ID: "b", Voters: []string{"u3"}})
	if err != nil || in == nil || in.ID != "a" || !slices.Equal(in.Voters, []string{"u1", "u2"}) {
		t.Fatalf("begin while step a is in flight gave %+v, %v; want step a with its voters", in, err)
	}
	if err := f.cells.Commit(ctx, cell, "a", projections.Counts{"story": {"up": 2, "down": -1}}); err != nil {
		t.Fatal(err)
	}
	if err := f.cells.Commit(ctx, cell, "a", projections.Counts{"story": {"up": 2}}); err != nil {
		t.Fatal(err)
	}
	if in, err := f.cells.Begin(ctx, domain.Cell{TitleID: "t1", Shard: 60}, projections.Step{ID: "c", Voters: []string{"u9"}}); err != nil || in != nil {
		t.Fatal(in, err)
	}
	if err := f.cells.Commit(ctx, domain.Cell{TitleID: "t1", Shard: 60}, "c", projections.Counts{"story": {"down": 3}, "acting": {"up": 1}}); err != nil {
		t.Fatal(err)
	}
	got, err := f.cells.Tally(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	want := projections.Counts{"story": {"up": 2, "down": 2}, "acting": {"up": 1}}
	if !got.Equal(want) {
		t.Fatalf("tally %v, want %v (the repeated commit must not count twice)", got, want)
	}
}

// TestProjectorExactlyOnceUnderFaults is the projection's central promise:
// however events are delivered (shuffled, repeated, split into batches) and
// however calls fail (before DynamoDB applied them, after it applied them
// with the answer lost, or all at once for a while, as when a Lambda dies
// mid-batch), once every event has been projected the tallies equal the
// pure fold of the events.
func TestProjectorExactlyOnceUnderFaults(t *testing.T) {
	var seed uint64
	rapid.Check(t, func(rt *rapid.T) {
		seed++
		flaky := faults.New(seed)
		f := newFixture(t, flaky)
		p := projections.NewProjector(f.ballots, f.cells, rapid.IntRange(1, 4).Draw(rt, "concurrency"))
		ctx := context.Background()

		events := projectiontest.Events(rt, eventSpace)
		pending := projectiontest.Delivery(rt, events)
		attempts, recovered := 0, 0
		for len(pending) > 0 {
			batch := pending[0]
			pending = pending[1:]
			attempts++
			if attempts > 400 {
				rt.Fatalf("no progress after %d attempts", attempts)
			}
			if rapid.Bool().Draw(rt, "faulty") {
				flaky.Set(rapid.Float64Range(0, 0.3).Draw(rt, "before"), rapid.Float64Range(0, 0.3).Draw(rt, "after"), nil)
				if rapid.IntRange(0, 5).Draw(rt, "crash") == 0 {
					flaky.Outage(time.Duration(rapid.IntRange(0, 3).Draw(rt, "outage")) * time.Millisecond)
				}
			} else {
				flaky.Off()
			}
			rep := p.Project(ctx, batch)
			recovered += rep.Recovered
			var failed []domain.VoteCast
			for _, e := range batch {
				if _, ok := rep.Failed[e.Cell()]; ok {
					failed = append(failed, e)
				}
			}
			if len(failed) > 0 {
				// Redelivered later, possibly mixed with other events.
				at := rapid.IntRange(0, len(pending)).Draw(rt, "redeliverAt")
				pending = slices.Insert(pending, at, failed)
			}
		}
		flaky.Off()
		want := projections.Fold(events)
		for _, title := range []string{"t1", "t2"} {
			got, err := f.cells.Tally(ctx, title)
			if err != nil {
				rt.Fatal(err)
			}
			if !got.Equal(want[title]) {
				rt.Fatalf("%s after %d attempts (%d recovered steps, %d calls failed before, %d after applied): tally %v, fold %v, diff %v",
					title, attempts, recovered, flaky.FailedBefore.Load(), flaky.FailedAfter.Load(), got, want[title], got.Diff(want[title]))
			}
		}
	})
}

// TestTwoWritersExactlyOnceUnderFaults: while a rebuild writes a projection
// version, the live projector writes it too. Both fold the same events, in
// their own orders, at the same time, under faults, with leases short
// enough that steps outlive them and get taken over (and sealed) by the
// other writer. The tallies still equal the fold.
func TestTwoWritersExactlyOnceUnderFaults(t *testing.T) {
	var seed uint64 = 1000
	rapid.Check(t, func(rt *rapid.T) {
		seed++
		flaky := faults.New(seed)
		f := newFixture(t, flaky)
		lease := time.Duration(rapid.IntRange(5, 40).Draw(rt, "leaseMs")) * time.Millisecond
		stream := projections.NewProjectorWith(f.ballots, f.cells, projections.Options{
			Concurrency: 2, Owner: "stream", Exclusive: true, Lease: lease, MaxWait: 20 * time.Millisecond,
		})
		rebuild := projections.NewProjectorWith(f.ballots, f.cells, projections.Options{
			Concurrency: 2, Owner: "rebuild", Lease: lease, MaxWait: 20 * time.Millisecond, Bulk: rapid.Bool().Draw(rt, "bulk"),
		})
		events := projectiontest.Events(rt, eventSpace)
		deliveries := [][][]domain.VoteCast{projectiontest.Delivery(rt, events), projectiontest.Delivery(rt, events)}
		flaky.Set(rapid.Float64Range(0, 0.2).Draw(rt, "before"), rapid.Float64Range(0, 0.2).Draw(rt, "after"), nil)

		run := func(p *projections.Projector, pending [][]domain.VoteCast) error {
			for attempts := 0; len(pending) > 0; attempts++ {
				if attempts > 500 {
					return fmt.Errorf("no progress after %d attempts", attempts)
				}
				batch := pending[0]
				pending = pending[1:]
				rep := p.Project(context.Background(), batch)
				var failed []domain.VoteCast
				for _, e := range batch {
					if _, ok := rep.Failed[e.Cell()]; ok {
						failed = append(failed, e)
					}
				}
				if len(failed) > 0 {
					pending = append(pending, failed)
				}
			}
			return nil
		}
		errs := make(chan error, 2)
		go func() { errs <- run(stream, deliveries[0]) }()
		go func() { errs <- run(rebuild, deliveries[1]) }()
		for range 2 {
			if err := <-errs; err != nil {
				rt.Fatal(err)
			}
		}
		flaky.Off()
		want := projections.Fold(events)
		for _, title := range []string{"t1", "t2"} {
			got, err := f.cells.Tally(context.Background(), title)
			if err != nil {
				rt.Fatal(err)
			}
			if !got.Equal(want[title]) {
				rt.Fatalf("%s (lease %v; %d calls failed before, %d after applied): tally %v, fold %v, diff %v",
					title, lease, flaky.FailedBefore.Load(), flaky.FailedAfter.Load(), got, want[title], got.Diff(want[title]))
			}
		}
	})
}

// eventSpace is where the store-backed property tests draw their votes.
var eventSpace = projectiontest.Space{Voters: []string{"u1", "u2", "u3", "u4", "u5"}, Titles: []string{"t1", "t2"}, Aspects: []string{"story", "acting", "overall"}, MaxEvents: 30, Submissions: 6, Times: 5}
