package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/infra/admin"
	"votes/infra/dynamo"
	"votes/infra/kumotest"
	"votes/infra/local"
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
// read to equal the fold of the event table and what the live projector
// kept in the old version.
func TestRebuildWhileVotesArrive(t *testing.T) {
	s := startStack(t)
	a := admin.New(s.Clients.DynamoDB, s.Tables)
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
		resp, err := http.Get(s.URL + "/titles/" + title + "/tallies")
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Aspects projections.Counts }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if !body.Aspects.Equal(fold[title]) {
			t.Errorf("%s: queries read %v, the fold of the event table is %v", title, body.Aspects, fold[title])
		}
		// Version 1 was written live until the promotion retired it; before
		// that point both versions must agree. Compare the rebuilt version
		// with the fold instead, which covers every event.
		if got := tally(t, s, "2", title); !got.Equal(fold[title]) {
			t.Errorf("%s: rebuilt version %v, fold %v", title, got, fold[title])
		}
	}
	v, err := a.Verify(context.Background(), "", nil)
	if err != nil || v.Version != "2" || len(v.Differences) != 0 {
		t.Fatalf("verify after promotion: %+v, %v", v, err)
	}
	t.Logf("%d submissions posted; rebuild read %d events", posted.Load(), res.Events)
}

// TestRebuiltVersionMatchesTheLiveOne: with traffic going on during the
// rebuild and stopped before the comparison, the rebuilt version and the
// version the live projector kept equal each other and the fold.
func TestRebuiltVersionMatchesTheLiveOne(t *testing.T) {
	s := startStack(t)
	a := admin.New(s.Clients.DynamoDB, s.Tables)
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
	a := admin.New(s.Clients.DynamoDB, s.Tables)
	stop := make(chan struct{})
	var posted atomic.Int64
	go voter(t, s, 99, stop, &posted)
	for posted.Load() < 300 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	waitIdle(t, s)

	rng := rand.New(rand.NewPCG(7, 7))
	opts := admin.RebuildOptions{Segments: 4, PageSize: 10, Concurrency: 2}
	interrupts := 0
	for {
		ctx, cancel := context.WithCancel(context.Background())
		cutAfter := rng.IntN(6) + 1
		var pages atomic.Int64
		opts.Progress = func(int) {
			if pages.Add(1) == int64(cutAfter) {
				cancel()
			}
		}
		res, err := a.Rebuild(ctx, opts)
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
	fold := projections.Fold(kumotest.StoredEvents(t, s.Tables.Events))
	for _, title := range titles {
		if got := tally(t, s, "2", title); !got.Equal(fold[title]) {
			t.Errorf("%s after %d interrupts: rebuilt %v, fold %v", title, interrupts, got, fold[title])
		}
	}
	t.Logf("finished after %d interrupts", interrupts)
}

func TestVerifyFindsAlteredTally(t *testing.T) {
	s := startStack(t)
	a := admin.New(s.Clients.DynamoDB, s.Tables)
	stop := make(chan struct{})
	var posted atomic.Int64
	go voter(t, s, 5, stop, &posted)
	for posted.Load() < 50 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	waitIdle(t, s)
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
	want := admin.Difference{TitleID: "tt-b", Difference: projections.Difference{Aspect: "soundtrack", Choice: "down", Got: 1, Want: 0}}
	if len(v.Differences) != 1 || v.Differences[0] != want {
		t.Fatalf("verify found %+v, want exactly %+v", v.Differences, want)
	}
}

func TestVersionErrors(t *testing.T) {
	s := startStack(t)
	a := admin.New(s.Clients.DynamoDB, s.Tables)
	ctx := context.Background()
	if _, err := a.Promote(ctx, "7"); !errors.Is(err, dynamo.ErrNoSuchVersion) {
		t.Errorf("promote a version that does not exist: %v", err)
	}
	if _, err := a.Rebuild(ctx, admin.RebuildOptions{Resume: true, Segments: 2, PageSize: 10}); !errors.Is(err, admin.ErrNothingToResume) {
		t.Errorf("resume with nothing to resume: %v", err)
	}
	if _, err := a.Retire(ctx, "1", nil); !errors.Is(err, admin.ErrActive) {
		t.Errorf("retire the active version: %v", err)
	}
	// An interrupted rebuild leaves a building version: not promotable.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, err := a.Rebuild(cctx, admin.RebuildOptions{Segments: 2, PageSize: 10, OnStart: func(string, int64) { cancel() }}); !errors.Is(err, context.Canceled) {
		t.Fatalf("rebuild with a cancelled context: %v", err)
	}
	if _, err := a.Promote(ctx, "2"); !errors.Is(err, admin.ErrNotReady) {
		t.Errorf("promote a building version: %v", err)
	}
	// Two rebuilds of one version at once: the second is refused.
	_, err := a.Registry.Update(ctx, func(r *dynamo.Registry) error {
		v := r.Versions["2"]
		v.Builder, v.BuilderLease = "someone-else", time.Now().Add(time.Minute)
		r.Versions["2"] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rebuild(ctx, admin.RebuildOptions{Resume: true, Segments: 2, PageSize: 10}); !errors.Is(err, admin.ErrBeingRebuilt) {
		t.Errorf("a second rebuild of version 2: %v", err)
	}
	missing := admin.New(s.Clients.DynamoDB, dynamo.TablesFor("no-such-stage"))
	if err := missing.CheckTables(ctx); err == nil {
		t.Error("a missing table went unnoticed")
	}
}

func TestRetireDeletesAVersion(t *testing.T) {
	s := startStack(t)
	a := admin.New(s.Clients.DynamoDB, s.Tables)
	stop := make(chan struct{})
	var posted atomic.Int64
	go voter(t, s, 3, stop, &posted)
	for posted.Load() < 40 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	waitIdle(t, s)
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
	if active != "2" || len(versions) != 2 || versions[0].State != dynamo.StateRetired || versions[0].Cells != 0 || versions[1].Votes == 0 {
		t.Fatalf("versions after retiring 1: active %s, %+v", active, versions)
	}
}
