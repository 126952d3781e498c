package handlers_test

import (
	"context"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/smithy-go/middleware"

	"votes/domain"
	"votes/domain/lifecycle"
	"votes/handlers"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/internal/kumotest"
	"votes/internal/metering"
	"votes/projections"
	"votes/projections/projectiontest"
)

// readsFixture is a stage whose query functions ("containers") each have
// their own metered clients and clock, over the same tables.
type readsFixture struct {
	fixture
	t *testing.T
}

func newReadsFixture(t *testing.T) readsFixture {
	f := newFixture(t)
	f.cfg.Reads = handlers.ReadLimits{MaxAge: 2 * time.Second, VersionMaxAge: time.Second, SumsPerSecond: 10, SumBurst: 20, Entries: 100, EmptyFor: time.Minute}
	return readsFixture{fixture: f, t: t}
}

// container is one query function's container: its own memory, clients
// metered, and clock.
func (f readsFixture) container(c *projectiontest.Clock) (*handlers.Query, *metering.Meter) {
	f.t.Helper()
	meter := metering.New(nil)
	opts := kumotest.Options(nil)
	opts.APIOptions = []func(*middleware.Stack) error{meter.APIOption}
	clients, err := awscfg.New(context.Background(), opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return functions.QueryAt(f.cfg, clients.DynamoDB, c.Now, discard()), meter
}

var stepN atomic.Int64

// vote adds counts to one cell of a title in version, through the cell
// store's own commit, as the projector writes them, and leaves the title
// index alone: the title is one the index has no summary of, as in a
// version projected before the index existed.
func (f readsFixture) vote(version, title string, shard int, counts projections.Counts) {
	f.t.Helper()
	cells := dynamo.NewCellStore(f.clients.DynamoDB, f.cfg.Tables.Tallies, version)
	cell := domain.Cell{TitleID: title, Shard: shard}
	st, err := cells.Read(context.Background(), cell)
	if err != nil {
		f.t.Fatal(err)
	}
	redo := projections.Redo{Step: "step-" + strconv.FormatInt(1000000+stepN.Add(1), 10)}
	if err := cells.Commit(context.Background(), cell, st.Version, redo, counts); err != nil {
		f.t.Fatal(err)
	}
}

// get is a GET of title's tallies on q, which must be 200 with the
// caching header; zero counts are left out.
func get(t *testing.T, q *handlers.Query, title string) projections.Counts {
	t.Helper()
	req := apiRequest(t, "apigw-v2-request-tallies.json")
	req.PathParameters["titleId"] = title
	req.RawPath = "/titles/" + title + "/tallies"
	resp, err := q.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET tallies of %s: %d %s", title, resp.StatusCode, resp.Body)
	}
	if cc := resp.Headers["cache-control"]; cc != "public, max-age=2" {
		t.Errorf("cache-control %q, want public, max-age=2", cc)
	}
	var body handlers.TallyBody
	decodeBody(t, resp, &body)
	return projections.Counts(body.Aspects).Compact()
}

// cellReads is how many times the meter saw the cells summed.
func cellReads(m *metering.Meter) int64 { return m.Snapshot().Requests["DynamoDB BatchGetItem"] }

func TestTallyFreshSummaryIsServedWithoutReadingCells(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	f.vote("1", "tt1", 3, projections.Counts{"story": {"up": 2}})
	f.vote("1", "tt1", 40, projections.Counts{"story": {"down": 1}})
	want := projections.Counts{"story": {"up": 2, "down": 1}}
	c := projectiontest.NewClock()

	a, ma := f.container(c)
	if got := get(t, a, "tt1"); !got.Equal(want) {
		t.Fatalf("first GET %v, want %v", got, want)
	}
	if n := cellReads(ma); n != 1 {
		t.Fatalf("first GET summed the cells %d times, want once", n)
	}

	// A burst on the same container: answered from memory.
	ma.Reset()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); get(t, a, "tt1") }()
	}
	wg.Wait()
	if s := ma.Snapshot(); s.Total() != 0 {
		t.Errorf("50 GETs within the bound on a warm container called DynamoDB: %v", s.Requests)
	}

	// Another container, 1.5 s later: the summary is fresh; one read of
	// it, after the title index's answer that it has no summary of tt1.
	c.Advance(1500 * time.Millisecond)
	b, mb := f.container(c)
	if got := get(t, b, "tt1"); !got.Equal(want) {
		t.Fatalf("GET on a second container %v, want %v", got, want)
	}
	if s := mb.Snapshot(); cellReads(mb) != 0 || s.Requests["DynamoDB GetItem"] != 3 || s.RCU > 2.5 {
		t.Errorf("a fresh summary was not served alone: %v, %.1f RCU (want the registry, the index and the summary, no cells)", s.Requests, s.RCU)
	}

	// A burst on a cold container once the summary is stale: the cells
	// are summed once for all of it.
	c.Advance(time.Second)
	d, md := f.container(c)
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); get(t, d, "tt1") }()
	}
	wg.Wait()
	if n := cellReads(md); n != 1 {
		t.Errorf("50 concurrent GETs on a cold container summed the cells %d times, want once", n)
	}
}

func TestTallyStaleSummaryIsRefreshed(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	f.vote("1", "tt1", 0, projections.Counts{"story": {"up": 1}})
	c := projectiontest.NewClock()
	a, ma := f.container(c)
	get(t, a, "tt1")

	// A vote is tallied; within the bound the answer may lag it, past the
	// bound it never does, on this container and on a new one.
	f.vote("1", "tt1", 7, projections.Counts{"story": {"up": 1}})
	c.Advance(1900 * time.Millisecond)
	if got := get(t, a, "tt1"); !got.Equal(projections.Counts{"story": {"up": 1}}) {
		t.Errorf("within the bound: %v, want the summary's story up 1", got)
	}
	c.Advance(100 * time.Millisecond) // the summary is now MaxAge old: too old
	ma.Reset()
	want := projections.Counts{"story": {"up": 2}}
	if got := get(t, a, "tt1"); !got.Equal(want) {
		t.Errorf("2 s after the summary: %v, want %v", got, want)
	}
	if n := cellReads(ma); n != 1 {
		t.Errorf("a stale summary was refreshed with %d sums of cells, want 1", n)
	}
	// The refresh was stored: another container reads it, not the cells.
	b, mb := f.container(c)
	if got := get(t, b, "tt1"); !got.Equal(want) || cellReads(mb) != 0 {
		t.Errorf("second container: %v with %d sums of cells, want %v from the summary", got, cellReads(mb), want)
	}
}

// TestTallyConcurrentRefreshesNeverMoveTheSummaryBack: a container that
// began its sum earlier and stores it later does not replace a newer
// summary, so another container keeps being served the newer one.
func TestTallyConcurrentRefreshesNeverMoveTheSummaryBack(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	f.vote("1", "tt1", 0, projections.Counts{"story": {"up": 1}})
	slow, fast := projectiontest.NewClock(), projectiontest.NewClock()
	fast.Advance(3 * time.Second)
	// The fast container sums at +3 s, after a second vote.
	f.vote("1", "tt1", 1, projections.Counts{"story": {"up": 1}})
	q, _ := f.container(fast)
	want := projections.Counts{"story": {"up": 2}}
	if got := get(t, q, "tt1"); !got.Equal(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	// The slow one's sum began at +0 s: it lands after, and is refused.
	s := dynamo.NewSummaryStore(f.clients.DynamoDB, f.cfg.Tables.Tallies)
	if err := s.Offer(context.Background(), "1", "tt1", projections.Counts{"story": {"up": 1}}, slow.Now()); err != nil {
		t.Fatal(err)
	}
	// A third container at +4 s is served the newer summary, not the
	// cells and not the older sum.
	third := projectiontest.NewClock()
	third.Advance(4 * time.Second)
	r, mr := f.container(third)
	if got := get(t, r, "tt1"); !got.Equal(want) || cellReads(mr) != 0 {
		t.Errorf("after a late, older refresh: %v with %d sums of cells, want %v from the newer summary", got, cellReads(mr), want)
	}
}

func TestTallyPromoteIsSeenWithinTheVersionBound(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	f.vote("1", "tt1", 0, projections.Counts{"story": {"up": 1}})
	f.vote("2", "tt1", 0, projections.Counts{"story": {"down": 5}})
	c := projectiontest.NewClock()
	q, _ := f.container(c)
	if got := get(t, q, "tt1"); !got.Equal(projections.Counts{"story": {"up": 1}}) {
		t.Fatalf("before the promote: %v, want version 1's", got)
	}
	if _, err := dynamo.NewRegistries(f.clients.DynamoDB, f.cfg.Tables.Tallies).Update(context.Background(), func(r *lifecycle.Registry) error {
		r.Active = "2"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.Advance(999 * time.Millisecond)
	if got := get(t, q, "tt1"); !got.Equal(projections.Counts{"story": {"up": 1}}) {
		t.Errorf("within the bound: %v, want version 1's from memory", got)
	}
	// Past the bound the active version is read again, and version 2's
	// tally is summed from its own cells (version 1's summary is fresh
	// still, but it is version 1's).
	c.Advance(time.Millisecond)
	if got := get(t, q, "tt1"); !got.Equal(projections.Counts{"story": {"down": 5}}) {
		t.Errorf("1 s after the promote: %v, want version 2's", got)
	}
}

// TestTallySumsAreBudgeted: GETs of titles nobody read lately sum the
// cells at most SumBurst times at once and SumsPerSecond after, whatever
// the request rate; the others are 503, and the budget refills with time.
func TestTallySumsAreBudgeted(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	c := projectiontest.NewClock()
	q, m := f.container(c)
	status := func(title string) int { return tallyStatus(t, q, title) }
	ok := 0
	for i := range 100 {
		if s := status("tt-new-" + strconv.Itoa(i)); s == http.StatusOK {
			ok++
		} else if s != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 200 or 503", s)
		}
	}
	if ok != 20 || cellReads(m) != 20 {
		t.Errorf("100 new titles at once: %d answered, %d sums of cells; want the burst of 20", ok, cellReads(m))
	}
	// Titles already summed are still served within the bound.
	if s := status("tt-new-0"); s != http.StatusOK {
		t.Errorf("a title in memory was refused: %d", s)
	}
	c.Advance(time.Second)
	ok = 0
	for i := range 100 {
		if status("tt-later-"+strconv.Itoa(i)) == http.StatusOK {
			ok++
		}
	}
	if ok != 10 {
		t.Errorf("a second later: %d new titles answered, want 10 (10 sums a second)", ok)
	}
}

// TestTallySummaryFromTheFutureIsNotTrusted: a summary stamped more than
// MaxAge ahead of this container's clock (a clock gone wrong) is not
// served; the cells are summed, and the answer kept in memory.
func TestTallySummaryFromTheFutureIsNotTrusted(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	f.vote("1", "tt1", 0, projections.Counts{"story": {"up": 1}})
	c := projectiontest.NewClock()
	s := dynamo.NewSummaryStore(f.clients.DynamoDB, f.cfg.Tables.Tallies)
	if err := s.Offer(context.Background(), "1", "tt1", projections.Counts{"story": {"down": 9}}, c.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	q, m := f.container(c)
	want := projections.Counts{"story": {"up": 1}}
	for range 3 {
		if got := get(t, q, "tt1"); !got.Equal(want) {
			t.Fatalf("%v, want the cells' %v", got, want)
		}
	}
	if n := cellReads(m); n != 1 {
		t.Errorf("cells summed %d times for 3 GETs, want once", n)
	}
}

// project runs the projector on records as the stream mapping delivers
// them: into the active version's ballots, cells and title index.
func (f readsFixture) project(records ...events.DynamoDBEventRecord) {
	f.t.Helper()
	p := functions.Projector(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	resp, err := p.Handle(context.Background(), events.DynamoDBEvent{Records: records})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		f.t.Fatalf("project: %v, failures %v", err, streamFailures(resp))
	}
}

// TestTallyIsReadFromTheTitleIndex: a title the projector indexed is
// answered from its index summary, never from a sum of its 64 cells; a
// burst on one container costs one read; a vote the projector has indexed
// shows at once on a container that has no answer in memory, and on one
// that has once its answer is MaxAge old, not a stored summary's age later.
func TestTallyIsReadFromTheTitleIndex(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	maxAge := f.cfg.Reads.MaxAge
	vote := func(voter, choice, seq string) events.DynamoDBEventRecord {
		return voteRecord(domain.VoteCast{Schema: 1, SubmissionID: "sub-" + voter, VoterID: voter, TitleID: "tt1",
			Aspect: "story", Choice: choice, RecordedAt: 1700000000000000000}, seq)
	}
	f.project(vote("alice", "up", "100"), vote("bob", "up", "101"))
	c := projectiontest.NewClock()
	a, ma := f.container(c)
	if got, want := get(t, a, "tt1"), (projections.Counts{"story": {"up": 2}}); !got.Equal(want) {
		t.Fatalf("GET %v, want %v", got, want)
	}
	if s := ma.Snapshot(); cellReads(ma) != 0 || s.Requests["DynamoDB GetItem"] != 2 || s.Total() != 2 {
		t.Errorf("an indexed title was read with %v; want two reads, the registry and the title's index summary", s.Requests)
	}

	ma.Reset()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { get(t, a, "tt1") })
	}
	wg.Wait()
	if s := ma.Snapshot(); s.Total() != 0 {
		t.Errorf("50 GETs within MaxAge on a warm container called DynamoDB: %v", s.Requests)
	}

	// Carol votes; the projector tallies and indexes it.
	f.project(vote("carol", "down", "102"))
	want := projections.Counts{"story": {"up": 2, "down": 1}}
	c.Advance(maxAge - time.Millisecond)
	b, mb := f.container(c)
	if got := get(t, b, "tt1"); !got.Equal(want) || cellReads(mb) != 0 {
		t.Errorf("a container with nothing in memory: %v with %d sums of cells, want %v from the index", got, cellReads(mb), want)
	}
	if got := get(t, a, "tt1"); !got.Equal(projections.Counts{"story": {"up": 2}}) {
		t.Errorf("within MaxAge of its answer: %v, want the answer kept in memory", got)
	}
	c.Advance(time.Millisecond)
	ma.Reset()
	if got := get(t, a, "tt1"); !got.Equal(want) || cellReads(ma) != 0 {
		t.Errorf("MaxAge after its answer: %v with %d sums of cells, want %v from the index", got, cellReads(ma), want)
	}
	// The stored summaries are for titles the index lacks: none was written.
	if _, _, ok, err := dynamo.NewSummaryStore(f.clients.DynamoDB, f.cfg.Tables.Tallies).Summary(context.Background(), "1", "tt1"); err != nil || ok {
		t.Errorf("a summary of the cells was stored for an indexed title (%v)", err)
	}
}

// TestTallyIndexUnreadable: when the title index cannot be read, a GET is
// a 503, not a tally of zeros.
func TestTallyIndexUnreadable(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	f.vote("1", "tt1", 0, projections.Counts{"story": {"up": 1}})
	f.cfg.Tables.Titles += "-missing"
	q, _ := f.container(projectiontest.NewClock())
	req := apiRequest(t, "apigw-v2-request-tallies.json")
	req.PathParameters["titleId"] = "tt1"
	resp, err := q.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if eb := errorOf(t, resp, http.StatusServiceUnavailable); !reflect.DeepEqual(eb.Error.Code, handlers.CodeUnavailable) {
		t.Errorf("code %q, want %q", eb.Error.Code, handlers.CodeUnavailable)
	}
}

// TestTallyNewTitleIsSummedOnceUntilIndexed: a title nobody has voted on
// yet, read again and again while its first vote makes its way to the
// index (as a client that has just voted polls it), costs one sum of its
// cells in all, then the index's answer alone: its GETs are never refused
// over the sum budget, however spent the budget is. Once the projector
// indexes a vote, the next read past MaxAge shows it; and if a vote reached
// the cells without the index (a writer that keeps none), it shows once
// EmptyFor has passed since the empty sum.
func TestTallyNewTitleIsSummedOnceUntilIndexed(t *testing.T) {
	t.Parallel()
	f := newReadsFixture(t)
	// Room for every title the test sums (a few hundred): as in production,
	// where at most SumsPerSecond × EmptyFor titles are noted empty at once.
	f.cfg.Reads.Entries = 1000
	lim := f.cfg.Reads
	c := projectiontest.NewClock()
	q, m := f.container(c)
	status := func(title string) int { return tallyStatus(t, q, title) }
	if got := get(t, q, "tt-new"); len(got) != 0 {
		t.Fatalf("a title nobody voted on: %v, want no votes", got)
	}
	if n := cellReads(m); n != 1 {
		t.Fatalf("first GET summed the cells %d times, want once", n)
	}

	m.Reset()
	const polls = 20
	for i := range polls {
		c.Advance(lim.MaxAge)
		// The budget is spent at this instant by GETs of other new titles.
		refused := false
		for j := 0; !refused && j < 2*lim.SumBurst; j++ {
			refused = status("tt-other-"+strconv.Itoa(i)+"-"+strconv.Itoa(j)) == http.StatusServiceUnavailable
		}
		if !refused {
			t.Fatalf("poll %d: the sum budget was never spent", i)
		}
		before := m.Snapshot()
		if s := status("tt-new"); s != http.StatusOK {
			t.Fatalf("poll %d of a title summed empty, with the budget spent: %d, want 200", i, s)
		}
		after := m.Snapshot()
		if sums := after.Requests["DynamoDB BatchGetItem"] - before.Requests["DynamoDB BatchGetItem"]; sums != 0 {
			t.Errorf("poll %d summed the cells %d times, want none", i, sums)
		}
		// The registry (read each VersionMaxAge) and the title's index.
		if gets, rcu := after.Requests["DynamoDB GetItem"]-before.Requests["DynamoDB GetItem"], after.RCU-before.RCU; gets > 2 || rcu > 2 {
			t.Errorf("poll %d cost %d reads, %.1f read units; want at most the registry and the index, one unit each", i, gets, rcu)
		}
	}

	// The projector tallies and indexes a vote on the title: memory may
	// answer for MaxAge, the index answers after.
	f.project(voteRecord(domain.VoteCast{Schema: 1, SubmissionID: "sub-alice", VoterID: "alice", TitleID: "tt-new",
		Aspect: "story", Choice: "up", RecordedAt: 1700000000000000000}, "100"))
	c.Advance(lim.MaxAge)
	m.Reset()
	want := projections.Counts{"story": {"up": 1}}
	if got := get(t, q, "tt-new"); !got.Equal(want) || cellReads(m) != 0 {
		t.Errorf("MaxAge after the vote was indexed: %v with %d sums of cells, want %v from the index", got, cellReads(m), want)
	}

	// A vote that reached the cells but not the index shows once EmptyFor
	// has passed since the empty sum, on a container that summed before it.
	if got := get(t, q, "tt-unindexed"); len(got) != 0 {
		t.Fatalf("a title nobody voted on: %v, want no votes", got)
	}
	f.vote("1", "tt-unindexed", 5, projections.Counts{"story": {"down": 1}})
	c.Advance(lim.EmptyFor)
	m.Reset()
	if got, want := get(t, q, "tt-unindexed"), (projections.Counts{"story": {"down": 1}}); !got.Equal(want) || cellReads(m) != 1 {
		t.Errorf("EmptyFor after the empty sum: %v with %d sums of cells, want %v summed once", got, cellReads(m), want)
	}
}

// tallyStatus is the status of a GET of title's tallies.
func tallyStatus(t *testing.T, q *handlers.Query, title string) int {
	t.Helper()
	req := apiRequest(t, "apigw-v2-request-tallies.json")
	req.PathParameters["titleId"] = title
	resp, err := q.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}
