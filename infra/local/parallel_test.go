package local

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/internal/kumotest"
)

// eventTable creates an event table of its own for t and returns its name
// and stream ARN.
func eventTable(t *testing.T, clients awscfg.Clients) (string, string) {
	t.Helper()
	table := dynamo.TablesFor(kumotest.Stage(t)).Specs()[0]
	if _, err := clients.DynamoDB.CreateTable(context.Background(), table.CreateInput()); err != nil {
		t.Fatal(err)
	}
	desc, err := clients.DynamoDB.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table.Name)})
	if err != nil {
		t.Fatal(err)
	}
	return table.Name, aws.ToString(desc.Table.LatestStreamArn)
}

// putRecords writes perCell items under each of cells partition keys,
// interleaved (every cell's first, then every cell's second, ...), and
// returns their IDs in the order written. An item's ID is its cell and its
// rank within the cell: "c07-2".
func putRecords(t *testing.T, clients awscfg.Clients, table string, cells, perCell int, tag string) []string {
	t.Helper()
	var ids []string
	for i := range perCell {
		for c := range cells {
			id := fmt.Sprintf("c%02d-%d%s", c, i, tag)
			if _, err := clients.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]dtypes.AttributeValue{
				dynamo.AttrCell: &dtypes.AttributeValueMemberS{Value: fmt.Sprintf("c%02d", c)}, dynamo.AttrVoteID: &dtypes.AttributeValueMemberS{Value: id},
			}}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// invocations records what each invocation of a probe function got, and
// how many ran at once.
type invocations struct {
	mu      sync.Mutex
	batches [][]string // record IDs, per invocation, in the order given
	running int
	peak    int
}

func (iv *invocations) start(ev events.DynamoDBEvent) ([]string, map[string]string) {
	var ids []string
	seq := map[string]string{}
	for _, r := range ev.Records {
		id := r.Change.Keys[dynamo.AttrVoteID].String()
		ids = append(ids, id)
		seq[id] = r.Change.SequenceNumber
	}
	iv.mu.Lock()
	defer iv.mu.Unlock()
	iv.batches = append(iv.batches, ids)
	iv.running++
	iv.peak = max(iv.peak, iv.running)
	return ids, seq
}

func (iv *invocations) end() {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	iv.running--
}

// waitPeak waits, up to a second, until n invocations run at once.
func (iv *invocations) waitPeak(n int) {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		iv.mu.Lock()
		p := iv.peak
		iv.mu.Unlock()
		if p >= n {
			return
		}
	}
}

func (iv *invocations) deliveries() map[string]int {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	n := map[string]int{}
	for _, b := range iv.batches {
		for _, id := range b {
			n[id]++
		}
	}
	return n
}

func cellOf(id string) string { return id[:strings.IndexByte(id, '-')] }

func runPoller(t *testing.T, p *streamPoller, want int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(10 * time.Second); p.delivered.Load() < want; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the stream's %d records were delivered", p.delivered.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestParallelizationSplitsEachRoundByPartitionKey: with a parallelization
// factor of 4, the records read from a shard go to 4 invocations running at
// once, and the records of one partition key all go to one of them, in the
// order the shard holds them.
func TestParallelizationSplitsEachRoundByPartitionKey(t *testing.T) {
	clients := kumotest.Clients(t, nil)
	table, streamARN := eventTable(t, clients)
	const cells, perCell = 32, 5
	written := putRecords(t, clients, table, cells, perCell, "")

	var iv invocations
	fn := NewFunction("probe", 5*time.Second, func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		iv.start(ev)
		defer iv.end()
		iv.waitPeak(4) // held open so that a poller that invokes one batch at a time shows
		return events.DynamoDBEventResponse{}, nil
	})
	p := &streamPoller{
		streams: clients.Streams, sqs: clients.SQS, streamARN: streamARN, region: "us-east-1",
		mapping: StreamMapping{BatchSize: 1000, Window: 200 * time.Millisecond, MaxRetryAttempts: 3, PollInterval: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, Parallelization: 4},
		fn:      fn, log: slog.New(slog.DiscardHandler),
	}
	runPoller(t, p, int64(len(written)))

	iv.mu.Lock()
	defer iv.mu.Unlock()
	if len(iv.batches) != 4 || iv.peak != 4 {
		t.Fatalf("%d invocations, at most %d at once; want the one round of %d records in 4 batches, all running at once", len(iv.batches), iv.peak, len(written))
	}
	batchOfCell := map[string]int{}
	got := map[string][]string{} // each cell's record IDs, in the order delivered
	for b, ids := range iv.batches {
		for _, id := range ids {
			c := cellOf(id)
			if prev, ok := batchOfCell[c]; ok && prev != b {
				t.Errorf("cell %s's records went to batches %d and %d, want one", c, prev, b)
			}
			batchOfCell[c] = b
			got[c] = append(got[c], id)
		}
	}
	for c := range cells {
		cell := fmt.Sprintf("c%02d", c)
		var want []string
		for i := range perCell {
			want = append(want, fmt.Sprintf("%s-%d", cell, i))
		}
		if !slices.Equal(got[cell], want) {
			t.Errorf("cell %s's records were delivered as %v, want %v: once each, in the shard's order", cell, got[cell], want)
		}
	}
}

// TestParallelBatchRetriesAloneAndHoldsTheShard: a batch of a round that
// reports a failed record is retried by itself from that record, the other
// batches of its round are not delivered again, and the shard does not
// move on to newer records until the retry succeeded.
func TestParallelBatchRetriesAloneAndHoldsTheShard(t *testing.T) {
	clients := kumotest.Clients(t, nil)
	table, streamARN := eventTable(t, clients)
	first := putRecords(t, clients, table, 32, 3, "")

	var (
		iv       invocations
		failed   = make(chan string, 1) // the record the first delivery of c00's batch failed
		retrying = make(chan struct{})  // that batch's retry started
		release  = make(chan struct{})  // the retry may finish
		once     sync.Once
	)
	fn := NewFunction("probe", 10*time.Second, func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		ids, seq := iv.start(ev)
		defer iv.end()
		if !slices.Contains(ids, "c00-1") {
			return events.DynamoDBEventResponse{}, nil
		}
		var resp events.DynamoDBEventResponse
		select {
		case failed <- "c00-1":
			resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: seq["c00-1"]}}
		default:
			once.Do(func() { close(retrying) })
			<-release
		}
		return resp, nil
	})
	p := &streamPoller{
		streams: clients.Streams, sqs: clients.SQS, streamARN: streamARN, region: "us-east-1",
		mapping: StreamMapping{BatchSize: 1000, Window: 50 * time.Millisecond, MaxRetryAttempts: 3, PollInterval: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond, Parallelization: 4},
		fn:      fn, log: slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	defer func() { cancel(); <-done }()

	select {
	case <-retrying:
	case <-time.After(10 * time.Second):
		t.Fatal("the failed batch was not retried")
	}
	later := putRecords(t, clients, table, 32, 1, "-later")
	time.Sleep(300 * time.Millisecond) // time to read and deliver them, were the shard not held
	for id, n := range iv.deliveries() {
		if strings.HasSuffix(id, "-later") {
			t.Errorf("%s was delivered %d times while an earlier batch was being retried: the shard moved on", id, n)
		}
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); p.delivered.Load() < int64(len(first)+len(later)); {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records delivered after the retry finished", p.delivered.Load(), len(first)+len(later))
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The failing batch is the first delivery holding c00-1: what it held
	// from c00-1 on came twice, all else once.
	iv.mu.Lock()
	var retried []string
	for _, b := range iv.batches {
		if i := slices.Index(b, "c00-1"); i >= 0 {
			retried = b[i:]
			break
		}
	}
	iv.mu.Unlock()
	if len(retried) == 0 || len(retried) == len(first) {
		t.Fatalf("the failing batch held %d records from c00-1 on, of %d in the round: want a batch of its own", len(retried), len(first))
	}
	seen := iv.deliveries()
	for _, id := range append(first, later...) {
		want := 1
		if slices.Contains(retried, id) {
			want = 2
		}
		if seen[id] != want {
			t.Errorf("%s delivered %d times, want %d: only the failed batch is retried, from its failed record", id, seen[id], want)
		}
	}
}
