package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/admin"
	"votes/domain"
	"votes/domain/lifecycle"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/projections"
)

func startStack(t *testing.T) *local.Stack {
	t.Helper()
	settings := local.FastSettings()
	opts := kumotest.Options(nil)
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// deployment is s's stores, as a command targeting the stack builds them.
func deployment(s *local.Stack) admin.Deployment {
	return dynamo.NewStage(s.Clients.DynamoDB, s.Tables).Deployment()
}

var titles = []string{"tt-a", "tt-b", "tt-c"}

// voter posts submissions until stop closes, over HTTP, as viewers do:
// a few voters changing their minds across three titles.
func voter(t *testing.T, s *local.Stack, seed uint64, stop <-chan struct{}, posted *atomic.Int64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	aspects := []string{"overall", "story", "acting"}
	for {
		select {
		case <-stop:
			return
		default:
		}
		body, _ := json.Marshal(map[string]any{
			"voterId": fmt.Sprintf("u-%d", rng.IntN(40)),
			"titleId": titles[rng.IntN(len(titles))],
			"votes":   []map[string]string{{"aspect": aspects[rng.IntN(len(aspects))], "choice": []string{"up", "down"}[rng.IntN(2)]}},
		})
		resp, err := http.Post(s.URL+"/votes", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("POST: %d", resp.StatusCode)
			return
		}
		posted.Add(1)
	}
}

// castVotes posts at least n submissions (voter's draws from seed) and
// waits until the pipeline has projected them all.
func castVotes(t *testing.T, s *local.Stack, seed uint64, n int64) {
	t.Helper()
	stop := make(chan struct{})
	var posted atomic.Int64
	go voter(t, s, seed, stop, &posted)
	for posted.Load() < n {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	waitIdle(t, s)
}

func waitIdle(t *testing.T, s *local.Stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

func tally(t *testing.T, s *local.Stack, version, title string) projections.Counts {
	t.Helper()
	c, err := dynamo.NewCellStore(s.Clients.DynamoDB, s.Tables.Tallies, version).Tally(context.Background(), title)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRebuildWhileVotesArrive rebuilds a version while viewers keep voting
// through the local stack, promotes it, and requires the tallies queries
// read to equal the fold of the event table, and the superseded version,
// still written live, to equal it too: rolling back to it serves exact
// tallies.
func TestRebuildWhileVotesArrive(t *testing.T) {
	s := startStack(t)
	a := admin.New(deployment(s))
	stop := make(chan struct{})
	var posted atomic.Int64
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); voter(t, s, uint64(i), stop, &posted) }()
	}
	for posted.Load() < 150 { // a table to rebuild from
		time.Sleep(10 * time.Millisecond)
	}
	res, err := a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 4, PageSize: 20, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != "2" || res.Events == 0 {
		t.Fatalf("rebuild: %+v", res)
	}
	if _, err := a.Promote(context.Background(), res.Version); err != nil {
		t.Fatal(err)
	}
	for posted.Load() < 400 { // votes keep coming after the promotion
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	waitIdle(t, s)

	fold := projections.Fold(kumotest.StoredEvents(t, s.Tables.Events))
	for _, title := range titles {
		if got := queried(t, s, title); !got.Equal(fold[title]) {
			t.Errorf("%s: queries read %v, the fold of the event table is %v", title, got, fold[title])
		}
		if got := tally(t, s, "2", title); !got.Equal(fold[title]) {
			t.Errorf("%s: rebuilt version %v, fold %v", title, got, fold[title])
		}
		// Version 1 is superseded, not retired: still written live, it
		// counts the votes cast after the promotion too.
		if got := tally(t, s, "1", title); !got.Equal(fold[title]) {
			t.Errorf("%s: superseded version 1 %v, fold %v", title, got, fold[title])
		}
	}
	v, err := a.Verify(context.Background(), "", nil)
	if err != nil || v.Version != "2" || len(v.Differences) != 0 {
		t.Fatalf("verify after promotion: %+v, %v", v, err)
	}

	// The way back: queries read version 1 again, and it is exact.
	to, from, err := a.Rollback(context.Background())
	if err != nil || to != "1" || from != "2" {
		t.Fatalf("rollback: to %q from %q, %v", to, from, err)
	}
	for _, title := range titles {
		if got := queried(t, s, title); !got.Equal(fold[title]) {
			t.Errorf("%s after the rollback: queries read %v, the fold is %v", title, got, fold[title])
		}
	}
	if v, err := a.Verify(context.Background(), "", nil); err != nil || v.Version != "1" || len(v.Differences) != 0 {
		t.Fatalf("verify after the rollback: %+v, %v", v, err)
	}
	t.Logf("%d submissions posted; rebuild read %d events", posted.Load(), res.Events)
}

// queried is a title's tallies as the query endpoint serves them, once
// the read bound has passed: every vote tallied, and every promote or
// rollback made, before the call shows.
func queried(t *testing.T, s *local.Stack, title string) projections.Counts {
	t.Helper()
	time.Sleep(s.ReadBound)
	resp, err := http.Get(s.URL + "/titles/" + title + "/tallies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Aspects projections.Counts }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Aspects
}

// TestRebuiltVersionMatchesTheLiveOne: with traffic going on during the
// rebuild and stopped before the comparison, the rebuilt version and the
// version the live projector kept equal each other and the fold.
func TestRebuiltVersionMatchesTheLiveOne(t *testing.T) {
	s := startStack(t)
	a := admin.New(deployment(s))
	stop := make(chan struct{})
	var posted atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); voter(t, s, uint64(10+i), stop, &posted) }()
	}
	for posted.Load() < 100 {
		time.Sleep(10 * time.Millisecond)
	}
	res, err := a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 3, PageSize: 15, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	waitIdle(t, s)
	fold := projections.Fold(kumotest.StoredEvents(t, s.Tables.Events))
	for _, title := range titles {
		live, rebuilt := tally(t, s, "1", title), tally(t, s, res.Version, title)
		if !live.Equal(rebuilt) || !rebuilt.Equal(fold[title]) {
			t.Errorf("%s: live %v, rebuilt %v, fold %v", title, live, rebuilt, fold[title])
		}
	}
}

// TestRebuildInterruptedAndResumed interrupts a rebuild at random points,
// again and again, and resumes it each time: the finished version equals
// the fold, nothing counted twice.
func TestRebuildInterruptedAndResumed(t *testing.T) {
	s := startStack(t)
	d := deployment(s)
	a := admin.New(d)
	castVotes(t, s, 99, 300)

	rng := rand.New(rand.NewPCG(7, 7))
	opts := admin.RebuildOptions{Segments: 4, PageSize: 10, Concurrency: 2}
	interrupts := 0
	var res admin.RebuildResult
	for {
		ctx, cancel := context.WithCancel(context.Background())
		cutAfter := rng.IntN(6) + 1
		var pages atomic.Int64
		opts.Progress = func(int) {
			if pages.Add(1) == int64(cutAfter) {
				cancel()
			}
		}
		var err error
		res, err = a.Rebuild(ctx, opts)
		cancel()
		if err == nil {
			if res.Version != "2" {
				t.Fatalf("resumed into version %s, want 2", res.Version)
			}
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		interrupts++
		opts.Resume = true
		if interrupts > 200 {
			t.Fatal("rebuild never finished")
		}
	}
	if interrupts < 3 {
		t.Fatalf("only %d interrupts: the test did not exercise resuming", interrupts)
	}
	stored := kumotest.StoredEvents(t, s.Tables.Events)
	fold := projections.Fold(stored)
	for _, title := range titles {
		if got := tally(t, s, "2", title); !got.Equal(fold[title]) {
			t.Errorf("%s after %d interrupts: rebuilt %v, fold %v", title, interrupts, got, fold[title])
		}
	}
	// Nothing counted twice in what the rebuild reports either: the
	// events its runs read add up to the table's, as does what the
	// registry records for the version.
	if res.Events != int64(len(stored)) {
		t.Errorf("the resumed runs read %d events in all, the table holds %d", res.Events, len(stored))
	}
	if v := state(t, d, "2"); v.Events != int64(len(stored)) {
		t.Errorf("version 2 records %d events, the table holds %d", v.Events, len(stored))
	}
	t.Logf("finished after %d interrupts", interrupts)
}

func TestVerifyFindsAlteredTally(t *testing.T) {
	s := startStack(t)
	a := admin.New(deployment(s))
	castVotes(t, s, 5, 50)
	if v, err := a.Verify(context.Background(), "1", nil); err != nil || len(v.Differences) != 0 {
		t.Fatalf("verify before tampering: %+v %v", v, err)
	}
	// Add a vote to one cell behind the projector's back.
	cell := domain.CellOf("tt-b", "u-nobody")
	if _, err := s.Clients.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Tables.Tallies),
		Key:                       map[string]types.AttributeValue{dynamo.AttrPK: &types.AttributeValueMemberS{Value: "1#" + cell.String()}},
		UpdateExpression:          aws.String("ADD #n :one"),
		ExpressionAttributeNames:  map[string]string{"#n": "n_soundtrack_down"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	}); err != nil {
		t.Fatal(err)
	}
	v, err := a.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := admin.Difference{Projection: "tallies", TitleID: "tt-b", Difference: projections.Difference{Aspect: "soundtrack", Choice: "down", Got: 1, Want: 0}}
	if len(v.Differences) != 1 || v.Differences[0] != want {
		t.Fatalf("verify found %+v, want exactly %+v", v.Differences, want)
	}

	// The title index is a projection of its own: one of its entries
	// altered is found too, named as the index's.
	titles := dynamo.NewTitleStore(s.Clients.DynamoDB, s.Tables.Titles, "1")
	sum, _, err := titles.Get(context.Background(), "tt-a")
	if err != nil {
		t.Fatal(err)
	}
	sum.Counts.Add("story", "up", 2)
	sum.Rev++
	if err := titles.Put(context.Background(), sum); err != nil {
		t.Fatal(err)
	}
	v, err = a.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(v.Differences, func(d admin.Difference) bool { return d.Projection == "title index" })
	if len(v.Differences) != 2 || i < 0 || v.Differences[i].TitleID != "tt-a" ||
		v.Differences[i].Aspect != "story" || v.Differences[i].Choice != "up" || v.Differences[i].Got != v.Differences[i].Want+2 {
		t.Fatalf("verify after altering the index found %+v", v.Differences)
	}

	// So is the trend: a vote cast counted twice in one minute item, and
	// nowhere else, is found in that minute and not in its hour.
	minute := projections.MinuteOf(time.Now().Add(-time.Hour).UnixNano())
	span := projections.Span{Level: projections.MinuteLevel, Start: minute}
	k := projections.TrendKey{Minute: minute, Aspect: "acting", Choice: "down"}
	if _, err := s.Clients.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(s.Tables.Titles),
		Key: map[string]types.AttributeValue{
			dynamo.AttrPK: &types.AttributeValueMemberS{Value: "1#t#tt-c"},
			dynamo.AttrSK: &types.AttributeValueMemberS{Value: fmt.Sprintf("m%010d", span.Start)},
		},
		UpdateExpression:          aws.String("ADD #c :one"),
		ExpressionAttributeNames:  map[string]string{"#c": "c_" + k.Aspect + "_" + k.Choice},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	}); err != nil {
		t.Fatal(err)
	}
	v, err = a.Verify(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	i = slices.IndexFunc(v.Differences, func(d admin.Difference) bool { return d.Projection == "trend by minute" })
	if len(v.Differences) != 3 || i < 0 || v.Differences[i].TitleID != "tt-c" || !v.Differences[i].At.Equal(time.Unix(minute*60, 0)) ||
		v.Differences[i].Aspect != "acting" || v.Differences[i].Choice != "down cast" || v.Differences[i].Got != v.Differences[i].Want+1 {
		t.Fatalf("verify after altering a minute of the trend found %+v", v.Differences)
	}
}

func TestVersionErrors(t *testing.T) {
	s := startStack(t)
	a := admin.New(deployment(s))
	ctx := context.Background()
	if _, err := a.Promote(ctx, "7"); !errors.Is(err, lifecycle.ErrNoSuchVersion) {
		t.Errorf("promote a version that does not exist: %v", err)
	}
	if _, err := a.Rebuild(ctx, admin.RebuildOptions{Resume: true, Segments: 2, PageSize: 10}); !errors.Is(err, lifecycle.ErrNothingToResume) {
		t.Errorf("resume with nothing to resume: %v", err)
	}
	if _, err := a.Retire(ctx, "1", nil); !errors.Is(err, lifecycle.ErrActive) {
		t.Errorf("retire the active version: %v", err)
	}
	// An interrupted rebuild leaves a building version: not promotable.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, err := a.Rebuild(cctx, admin.RebuildOptions{Segments: 2, PageSize: 10, OnStart: func(string, int64) { cancel() }}); !errors.Is(err, context.Canceled) {
		t.Fatalf("rebuild with a cancelled context: %v", err)
	}
	if _, err := a.Promote(ctx, "2"); !errors.Is(err, lifecycle.ErrNotReady) {
		t.Errorf("promote a building version: %v", err)
	}
	// Two rebuilds of one version at once: the second is refused.
	_, err := deployment(s).Registry.Update(ctx, func(r *lifecycle.Registry) error {
		v := r.Versions["2"]
		v.Builder, v.BuilderLease = "someone-else", time.Now().Add(time.Minute)
		r.Versions["2"] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rebuild(ctx, admin.RebuildOptions{Resume: true, Segments: 2, PageSize: 10}); !errors.Is(err, lifecycle.ErrBeingRebuilt) {
		t.Errorf("a second rebuild of version 2: %v", err)
	}
	// A missing table names itself and says what to check.
	missing := admin.New(dynamo.NewStage(s.Clients.DynamoDB, dynamo.TablesFor("no-such-stage")).Deployment())
	err = missing.CheckTables(ctx)
	if want := "table votes-no-such-stage-events does not exist: is the stage deployed, or votes dev running?"; err == nil || err.Error() != want {
		t.Errorf("tables of a stage that does not exist: %v, want %q", err, want)
	}
}

func TestRetireDeletesAVersion(t *testing.T) {
	s := startStack(t)
	a := admin.New(deployment(s))
	castVotes(t, s, 3, 40)
	res, err := a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 2, PageSize: 50, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Promote(context.Background(), res.Version); err != nil {
		t.Fatal(err)
	}
	n, err := a.Retire(context.Background(), "1", nil)
	if err != nil || n == 0 {
		t.Fatalf("retire: %d items, %v", n, err)
	}
	versions, active, err := a.Versions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if active != "2" || len(versions) != 2 || versions[0].State != lifecycle.Retired || versions[0].Cells != 0 || versions[1].Votes == 0 {
		t.Fatalf("versions after retiring 1: active %s, %+v", active, versions)
	}
}

// rebuildFixture is the stores of a stack with votes in its event table
// and the live pipeline idle.
func rebuildFixture(t *testing.T, votes int64, seed uint64) admin.Deployment {
	t.Helper()
	s := startStack(t)
	castVotes(t, s, seed, votes)
	return deployment(s)
}

func state(t *testing.T, d admin.Deployment, version string) lifecycle.Version {
	t.Helper()
	reg, err := d.Registry.Load(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	return reg.Versions[version]
}

// TestRetireFencesARunningRebuild: version 2 is retired while its rebuild
// runs, from a machine whose clock is five minutes ahead, so the rebuild's
// live lease looks expired there and the retire goes through. The rebuild
// fails saying it lost its version, and the version can never be promoted.
func TestRetireFencesARunningRebuild(t *testing.T) {
	d := rebuildFixture(t, 200, 21)
	a := admin.New(d)
	other := admin.New(d) // the retiring machine, its clock ahead
	other.SetClock(func() time.Time { return time.Now().Add(5 * time.Minute) })
	var once sync.Once
	var retireErr error
	_, err := a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 2, PageSize: 10, Concurrency: 2,
		Progress: func(int) {
			once.Do(func() { _, retireErr = other.Retire(context.Background(), "2", nil) })
		}})
	if retireErr != nil {
		t.Fatalf("retire with the clock ahead: %v", retireErr)
	}
	if !errors.Is(err, lifecycle.ErrLeaseLost) || !strings.Contains(err.Error(), "not marked ready") {
		t.Fatalf("rebuild of a version retired under it: %v, want ErrLeaseLost", err)
	}
	if v := state(t, d, "2"); v.State != lifecycle.Retired || v.Builder != "" {
		t.Fatalf("version 2 after the fenced rebuild: %+v", v)
	}
	if _, err := a.Promote(context.Background(), "2"); !errors.Is(err, lifecycle.ErrNotReady) {
		t.Fatalf("promote the retired version: %v", err)
	}
	if _, err := a.Rebuild(context.Background(), admin.RebuildOptions{Resume: true, Segments: 2, PageSize: 10}); !errors.Is(err, lifecycle.ErrNothingToResume) {
		t.Fatalf("resume the retired version: %v", err)
	}
	if _, err := a.Verify(context.Background(), "2", nil); !errors.Is(err, lifecycle.ErrRetired) {
		t.Fatalf("verify the retired version: %v", err)
	}
}

// TestUnrepairedFailuresKeepTheVersionBuilding: with stream failures
// recorded and not repaired, a finished rebuild leaves its version
// building and says what to do; once they are repaired, resuming makes it
// ready without scanning again.
func TestUnrepairedFailuresKeepTheVersionBuilding(t *testing.T) {
	d := rebuildFixture(t, 60, 22)
	unrepaired := failures(2)
	d.Unrepaired = &unrepaired
	a := admin.New(d)
	res, err := a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 2, PageSize: 20})
	if !errors.Is(err, lifecycle.ErrUnrepaired) || !strings.Contains(err.Error(), "votes repair") || !strings.Contains(err.Error(), "votes rebuild --resume") {
		t.Fatalf("rebuild with unrepaired failures: %v", err)
	}
	if v := state(t, d, res.Version); v.State != lifecycle.Building || v.Builder != "" {
		t.Fatalf("version %s after the refused completion: %+v, want building and released", res.Version, v)
	}
	if _, err := a.Promote(context.Background(), res.Version); !errors.Is(err, lifecycle.ErrNotReady) {
		t.Fatalf("promote: %v", err)
	}
	unrepaired = 0
	var read atomic.Int64
	again, err := a.Rebuild(context.Background(), admin.RebuildOptions{Resume: true, Segments: 2, PageSize: 20, Progress: func(n int) { read.Add(int64(n)) }})
	if err != nil || again.Version != res.Version || read.Load() != 0 {
		t.Fatalf("resume once repaired: %+v, %v, %d events read again", again, err, read.Load())
	}
	if v := state(t, d, res.Version); v.State != lifecycle.Ready {
		t.Fatalf("version %s once repaired: %+v", res.Version, v)
	}
}

// failures is a count of unrepaired stream failures that the test sets:
// the queues' count is tested in infra/queue.
type failures int

func (f *failures) Unrepaired(context.Context) (int, error) { return int(*f), nil }

// TestFailedHeartbeatStopsTheRebuild: a version retired under its rebuild
// stops the rebuild at its next heartbeat, long before the scan would end.
func TestFailedHeartbeatStopsTheRebuild(t *testing.T) {
	d := rebuildFixture(t, 200, 23)
	a := admin.New(d)
	a.SetLease(300 * time.Millisecond) // a heartbeat every 100 ms
	other := admin.New(d)
	other.SetClock(func() time.Time { return time.Now().Add(5 * time.Minute) })
	var pages atomic.Int64
	var retireErr error
	begin := time.Now()
	res, err := a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 1, PageSize: 5, Concurrency: 1,
		Progress: func(int) {
			if pages.Add(1) == 1 {
				_, retireErr = other.Retire(context.Background(), "2", nil)
			}
			time.Sleep(100 * time.Millisecond) // a slow rebuild: 40 pages take 4 s
		}})
	if retireErr != nil {
		t.Fatal(retireErr)
	}
	if !errors.Is(err, lifecycle.ErrLeaseLost) || !strings.Contains(err.Error(), "no longer being built") {
		t.Fatalf("rebuild of a version retired under it: %v", err)
	}
	if n := pages.Load(); n > 10 {
		t.Fatalf("the rebuild went on for %d pages (%s) after its version was retired", n, time.Since(begin))
	}
	t.Logf("stopped after %d pages, %d events, %s", pages.Load(), res.Events, time.Since(begin).Round(time.Millisecond))
}

// TestRebuildWhileAVersionIsBuilding: a new rebuild while an interrupted
// one left its version building is refused, naming the version, and
// changes nothing; one while another rebuild holds its version says it
// is being rebuilt, and cannot abandon it. Abandon retires the
// interrupted version (its items deleted) and rebuilds a new one.
func TestRebuildWhileAVersionIsBuilding(t *testing.T) {
	d := rebuildFixture(t, 120, 31)
	a := admin.New(d)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := a.Rebuild(ctx, admin.RebuildOptions{Segments: 2, PageSize: 10, Concurrency: 2, Progress: func(int) { cancel() }})
	if !errors.Is(err, context.Canceled) || res.Version != "2" {
		t.Fatalf("interrupted rebuild: %+v, %v", res, err)
	}

	_, err = a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 2, PageSize: 10})
	var pending *admin.PendingError
	if !errors.As(err, &pending) || !errors.Is(err, admin.ErrPending) || len(pending.Versions) != 1 || pending.Versions[0].Name != "2" ||
		!strings.Contains(err.Error(), "version 2") || strings.Contains(err.Error(), "being rebuilt") {
		t.Fatalf("a new rebuild beside the interrupted version 2: %v", err)
	}
	if reg, err := d.Registry.Load(context.Background(), true); err != nil || len(reg.Versions) != 2 {
		t.Fatalf("the refused rebuild changed the registry: %+v, %v", reg.Versions, err)
	}

	// Held by a running rebuild: refused as such, and not abandoned.
	holding := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := a.Rebuild(context.Background(), admin.RebuildOptions{Resume: true, Segments: 2, PageSize: 10, Concurrency: 2,
			Progress: func(int) { once.Do(func() { close(holding); <-release }) }})
		done <- err
	}()
	<-holding
	_, err = a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 2, PageSize: 10})
	if !errors.As(err, &pending) || !strings.Contains(err.Error(), "version 2 (being rebuilt, its lease runs until") {
		t.Errorf("a new rebuild while version 2 is being rebuilt: %v", err)
	}
	var abandon *admin.AbandonError
	if _, err := a.Rebuild(context.Background(), admin.RebuildOptions{Abandon: true, Segments: 2, PageSize: 10}); !errors.Is(err, lifecycle.ErrBeingRebuilt) ||
		!errors.As(err, &abandon) || abandon.Version != "2" {
		t.Errorf("abandoning a version being rebuilt: %v, want %v naming version 2", err, lifecycle.ErrBeingRebuilt)
	}
	if v := state(t, d, "2"); v.State != lifecycle.Building {
		t.Errorf("version 2 after the refused abandon: %+v", v)
	}
	// The resumed run finishes; a new rebuild of version 3 is interrupted,
	// then abandoned.
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("resumed rebuild: %v", err) // it finished: version 2 is ready
	}
	if v := state(t, d, "2"); v.State != lifecycle.Ready {
		t.Fatalf("version 2 after its resumed rebuild: %+v", v)
	}
	ctx, cancel = context.WithCancel(context.Background())
	if res, err := a.Rebuild(ctx, admin.RebuildOptions{Segments: 2, PageSize: 10, Concurrency: 2, Progress: func(int) { cancel() }}); !errors.Is(err, context.Canceled) || res.Version != "3" {
		t.Fatalf("second interrupted rebuild: %+v, %v", res, err)
	}
	var abandoned []string
	var deleted int64
	res, err = a.Rebuild(context.Background(), admin.RebuildOptions{Abandon: true, Segments: 2, PageSize: 10, Concurrency: 2,
		OnAbandon: func(v string, n int64) { abandoned = append(abandoned, v); deleted += n }})
	if err != nil || res.Version != "4" {
		t.Fatalf("rebuild --abandon: %+v, %v", res, err)
	}
	if len(abandoned) != 1 || abandoned[0] != "3" || deleted == 0 {
		t.Errorf("abandoned %v (%d items deleted), want version 3 and its items", abandoned, deleted)
	}
	if v := state(t, d, "3"); v.State != lifecycle.Retired {
		t.Errorf("abandoned version 3: %+v, want retired", v)
	}
	if v := state(t, d, "4"); v.State != lifecycle.Ready {
		t.Errorf("version 4 after rebuild --abandon: %+v, want ready", v)
	}
	stats, err := d.Items.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stats["3"]; ok {
		t.Errorf("abandoned version 3 still has cells: %+v", stats["3"])
	}
	if _, err := a.Rebuild(context.Background(), admin.RebuildOptions{Resume: true, Abandon: true}); err == nil {
		t.Error("rebuild with both resume and abandon went ahead")
	}
}

// TestRebuildReportsEventsAsRead: the scan's progress moves while a page
// is still being projected, rather than a page at a time once projected.
func TestRebuildReportsEventsAsRead(t *testing.T) {
	d := rebuildFixture(t, 120, 32)
	a := admin.New(d)
	var read, folded atomic.Int64
	var ahead int64
	var once sync.Once
	_, err := a.Rebuild(context.Background(), admin.RebuildOptions{Segments: 2, PageSize: 10, Concurrency: 2,
		Read: func(n int) { read.Add(int64(n)) },
		Progress: func(n int) {
			folded.Add(int64(n))
			// Hold the first page projected: the other segment reads on.
			once.Do(func() {
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && read.Load() <= folded.Load(); {
					time.Sleep(5 * time.Millisecond)
				}
				ahead = read.Load() - folded.Load()
			})
		}})
	if err != nil {
		t.Fatal(err)
	}
	if ahead <= 0 {
		t.Errorf("while a page was held after projection, %d events were read and %d folded: reads are not reported as they happen", read.Load(), folded.Load())
	}
	if read.Load() != folded.Load() {
		t.Errorf("at the end %d events read, %d folded", read.Load(), folded.Load())
	}
}
