package dynamo_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"pgregory.net/rapid"

	"votes/domain"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/internal/kumotest"
	"votes/projections"
	"votes/projections/projectiontest"
	"votes/projections/storetest"
)

type fixture struct {
	clients awscfg.Clients
	tables  dynamo.Tables
	events  *dynamo.EventStore
	ballots *dynamo.BallotStore
	cells   *dynamo.CellStore
}

// faultTransport is a fault-injecting transport under the real SDK.
type faultTransport interface{ Client() *http.Client }

// newFixture creates a fresh set of tables in the shared emulator, with
// stores whose SDK calls go through faults when it is not nil.
func newFixture(t testing.TB, flaky faultTransport) fixture {
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

	if got, err := f.events.Append(ctx, []domain.VoteCast{e}); err != nil || got != domain.Appended {
		t.Fatalf("first append: %v, %v; want appended", got, err)
	}
	retried := e
	retried.RecordedAt = 200 // the same submission accepted again later
	if got, err := f.events.Append(ctx, []domain.VoteCast{retried}); err != nil || got != domain.Duplicate {
		t.Fatalf("redelivered append: %v, %v; want duplicate", got, err)
	}
	other := e
	other.Choice = "down" // another vote under the same ID
	if got, err := f.events.Append(ctx, []domain.VoteCast{other}); err != nil || got != domain.Conflict {
		t.Fatalf("conflicting append: %v, %v; want conflict", got, err)
	}
	stored := kumotest.StoredEvents(t, f.tables.Events)
	if len(stored) != 1 || stored[0] != e {
		t.Fatalf("event table holds %+v, want only the first vote %+v", stored, e)
	}
}

// TestEventStoreAppendsASubmissionOnce: a submission's votes are one item
// (one write however many aspects), appended once; the same key with other
// votes is a conflict and kept out; items of the older one-vote layout
// still read back.
func TestEventStoreAppendsASubmissionOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	sub := domain.Submission{VoterID: "u1", TitleID: "t1", Votes: []domain.Choice{
		{Aspect: "story", Choice: "up"}, {Aspect: "overall", Choice: "down"}, {Aspect: "acting", Choice: "up"}}}
	votes := sub.Accept("k1", time.Unix(0, 100)).Events()
	if got, err := f.events.Append(ctx, votes); err != nil || got != domain.Appended {
		t.Fatalf("append: %v, %v; want appended", got, err)
	}
	slices.Reverse(votes) // the same votes in another order
	if got, err := f.events.Append(ctx, votes); err != nil || got != domain.Duplicate {
		t.Fatalf("redelivered append: %v, %v; want duplicate", got, err)
	}
	other := slices.Clone(votes)
	other[0].Choice = "down" // other votes under the submission's key
	if got, err := f.events.Append(ctx, other); err != nil || got != domain.Conflict {
		t.Fatalf("conflicting append: %v, %v; want conflict", got, err)
	}
	old := projectiontest.Vote("u2", "t1", "s9", "story", "down", 50)
	old.Schema = 1
	if _, err := f.clients.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.tables.Events), Item: dynamo.EventItem(old)}); err != nil {
		t.Fatal(err)
	}
	stored := kumotest.StoredEvents(t, f.tables.Events)
	byID := map[string]domain.VoteCast{}
	for _, e := range stored {
		byID[e.VoteID] = e
	}
	for _, want := range append(slices.Clone(votes), old) {
		if got := byID[want.VoteID]; got != want {
			t.Errorf("stored %+v, want %+v", got, want)
		}
	}
	if len(stored) != 4 {
		t.Errorf("event table holds %d votes, want 4", len(stored))
	}
	out, err := f.clients.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(f.tables.Events)})
	if err != nil || len(out.Items) != 2 {
		t.Fatalf("event table holds %d items (%v), want the submission's one and the old vote's", len(out.Items), err)
	}
}

func TestEventStoreAppendRetriedAfterApplied(t *testing.T) {
	flaky := faults.New(1)
	f := newFixture(t, flaky)
	// Every PutItem is applied and its response lost; the SDK retries.
	flaky.Set(0, 1, func(target, _ string) bool { return faults.Action(target, "PutItem") })
	e := projectiontest.Vote("u1", "t1", "s1", "story", "up", 100)
	_, err := f.events.Append(context.Background(), []domain.VoteCast{e})
	if err == nil {
		t.Fatal("append succeeded although every response was lost")
	}
	flaky.Off()
	got, err := f.events.Append(context.Background(), []domain.VoteCast{e})
	if err != nil || got != domain.Duplicate {
		t.Fatalf("append after the lost responses: %v, %v; want duplicate", got, err)
	}
	if n := len(kumotest.StoredEvents(t, f.tables.Events)); n != 1 {
		t.Fatalf("event table holds %d items, want 1", n)
	}
}

func TestProjectorExactlyOnceUnderFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		flaky := kumotest.Schedule(projectiontest.DrawScript(rt, 200))
		f := newFixture(t, flaky)
		// One cell at a time: the i-th request gets the i-th fault, so a
		// failure replays and shrinks (overlapping writers are
		// TestOverlappingWriters').
		p := projections.NewProjector(f.ballots, f.cells, 1)
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
			rep := p.Project(ctx, batch)
			recovered += rep.Recovered
			if failed := failedEvents(batch, rep); len(failed) > 0 {
				// Redelivered later, possibly mixed with other events.
				at := rapid.IntRange(0, len(pending)).Draw(rt, "redeliverAt")
				pending = slices.Insert(pending, at, failed)
			}
		}
		flaky.Off()
		checkFold(rt, f, events, fmt.Sprintf("after %d attempts (%d ballots of earlier steps saved, %d calls failed before, %d after applied)",
			attempts, recovered, flaky.FailedBefore.Load(), flaky.FailedAfter.Load()))
	})
}

// checkFold holds the stores to the fold of events: every title's tally,
// and every voter's ballot on it (present exactly when the voter has
// events there, holding exactly the votes that win).
func checkFold(t *rapid.T, f fixture, events []domain.VoteCast, what string) {
	ctx := context.Background()
	want := projections.Fold(events)
	ballots := storetest.FoldBallots(events)
	for _, title := range eventSpace.Titles {
		got, err := f.cells.Tally(ctx, title)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want[title]) {
			t.Fatalf("%s %s: tally %v, fold %v, diff %v", title, what, got, want[title], got.Diff(want[title]))
		}
		stored, err := f.ballots.Load(ctx, title, eventSpace.Voters)
		if err != nil {
			t.Fatal(err)
		}
		for _, voter := range eventSpace.Voters {
			b, ok := stored[voter]
			w, folded := ballots[[2]string{title, voter}]
			b.Version = 0
			if ok != folded || (ok && !b.Same(w)) {
				t.Fatalf("%s %s: ballot of %s stored %v (%v), the fold's %v (%v)", title, what, voter, ok, b.Aspects, folded, w.Aspects)
			}
		}
	}
}

// failedEvents are the events of batch on cells the projection reported
// failed: what the event-source mapping delivers again.
func failedEvents(batch []domain.VoteCast, rep projections.Report) []domain.VoteCast {
	var failed []domain.VoteCast
	for _, e := range batch {
		if _, ok := rep.Failed[e.Cell()]; ok {
			failed = append(failed, e)
		}
	}
	return failed
}

// TestConcurrentWritersExactlyOnceUnderFaults: any number of live stream
// invocations work on the same cells at once (sibling shards after a
// partition split, duplicate deliveries, two mappings during a replacement),
// while a rebuild-style writer goes through the events in table order, a
// page at a time, with more cells in flight. All fold the same events in
// their own orders under injected faults. The tallies and the ballots still
// equal the fold.
func TestConcurrentWritersExactlyOnceUnderFaults(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		flaky := kumotest.Schedule(projectiontest.DrawScript(rt, 300))
		f := newFixture(t, flaky)
		events := projectiontest.Events(rt, eventSpace)
		var (
			writers    []*projections.Projector
			deliveries [][][]domain.VoteCast
		)
		for range rapid.IntRange(2, 4).Draw(rt, "streamWriters") {
			writers = append(writers, projections.NewProjector(f.ballots, f.cells, 2))
			deliveries = append(deliveries, projectiontest.Delivery(rt, events))
		}
		page := rapid.IntRange(1, len(events)).Draw(rt, "rebuildPage")
		var pages [][]domain.VoteCast
		for rest := events; len(rest) > 0; rest = rest[min(page, len(rest)):] {
			pages = append(pages, rest[:min(page, len(rest))])
		}
		writers = append(writers, projections.NewProjector(f.ballots, f.cells, 4))
		deliveries = append(deliveries, pages)

		run := func(p *projections.Projector, pending [][]domain.VoteCast) error {
			for attempts := 0; len(pending) > 0; attempts++ {
				if attempts > 500 {
					return fmt.Errorf("no progress after %d attempts", attempts)
				}
				batch := pending[0]
				pending = pending[1:]
				if failed := failedEvents(batch, p.Project(context.Background(), batch)); len(failed) > 0 {
					pending = append(pending, failed)
				}
			}
			return nil
		}
		errs := make(chan error, len(writers))
		for i, w := range writers {
			go func() { errs <- run(w, deliveries[i]) }()
		}
		for range writers {
			if err := <-errs; err != nil {
				rt.Fatal(err)
			}
		}
		flaky.Off()
		checkFold(rt, f, events, fmt.Sprintf("(%d writers; %d calls failed before, %d after applied)",
			len(writers), flaky.FailedBefore.Load(), flaky.FailedAfter.Load()))
	})
}

// eventSpace is where the store-backed property tests draw their votes:
// few voters, four of them in one cell of t1, so that steps on a cell
// change several ballots and writers meet there.
var eventSpace = projectiontest.Space{Voters: append(storetest.SameCellVoters("t1", 4), "v"), Titles: []string{"t1", "t2"}, Aspects: []string{"story", "acting", "overall"}, MaxEvents: 30, Submissions: 6, Times: 5}

func TestBallotStoreContract(t *testing.T) {
	storetest.TestBallots(t, func(t *testing.T) projections.Ballots { return newFixture(t, nil).ballots })
}

func TestCellStoreContract(t *testing.T) {
	storetest.TestCells(t, func(t *testing.T) storetest.TallyCells { return newFixture(t, nil).cells })
}
