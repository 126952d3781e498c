package local

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"votes/infra/dynamo"
	"votes/internal/kumotest"
)

// twins pairs up invocations that carry the same records: each waits, up
// to a limit, for another one with the same records to be in flight at the
// same time, and learns whether it came first or second.
type twins struct {
	mu      sync.Mutex
	cond    *sync.Cond
	arrived map[string]int // by the batch's record IDs
	alone   []string       // batches whose invocation found no twin
	seen    map[string]int // deliveries of each record ID
}

func newTwins() *twins {
	tw := &twins{arrived: map[string]int{}, seen: map[string]int{}}
	tw.cond = sync.NewCond(&tw.mu)
	return tw
}

// meet returns the invocation's rank (0 or 1) among those of its batch
// round, once its twin is in flight too.
func (tw *twins) meet(ids []string) int {
	key := strings.Join(ids, ",")
	tw.mu.Lock()
	defer tw.mu.Unlock()
	for _, id := range ids {
		tw.seen[id]++
	}
	rank := tw.arrived[key] % 2
	tw.arrived[key]++
	tw.cond.Broadcast()
	deadline := time.Now().Add(2 * time.Second)
	go func() { time.Sleep(2 * time.Second); tw.cond.Broadcast() }()
	for tw.arrived[key]%2 == 1 && rank == 0 && time.Now().Before(deadline) {
		tw.cond.Wait()
	}
	if rank == 0 && tw.arrived[key]%2 == 1 {
		tw.alone = append(tw.alone, key)
	}
	return rank
}

func (tw *twins) deliveries(id string) int {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return tw.seen[id]
}

// TestOverlapDeliversEverySQSBatchToTwoConcurrentInvocations: with overlap
// the SQS mapping invokes the function twice at once with the same
// messages, and deletes a message when either invocation finished it; one
// that both reported failed comes back.
func TestOverlapDeliversEverySQSBatchToTwoConcurrentInvocations(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := kumotest.Clients(t, nil).SQS
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(kumotest.Stage(t)), Attributes: map[string]string{"VisibilityTimeout": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"ok", "fail-first", "fail-second", "fail-both"} {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	tw := newTwins()
	fn := NewFunction("probe", 5*time.Second, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var ids []string
		for _, m := range ev.Records {
			ids = append(ids, m.Body)
		}
		slices.Sort(ids)
		rank := tw.meet(ids)
		var resp events.SQSEventResponse
		for _, m := range ev.Records {
			if m.Body == "fail-both" || (m.Body == "fail-first" && rank == 0) || (m.Body == "fail-second" && rank == 1) {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			}
		}
		return resp, nil
	})
	p := &sqsPoller{
		client: client, queueURL: aws.ToString(q.QueueUrl), queueARN: "arn:aws:sqs:us-east-1:000000000000:probe", region: "us-east-1",
		mapping: SQSMapping{BatchSize: 10, Window: 100 * time.Millisecond, Pollers: 1}, fn: fn, overlap: true, log: slog.New(slog.DiscardHandler),
	}
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()

	// The message both invocations failed comes back after its visibility
	// timeout, and is again delivered twice.
	for deadline := time.Now().Add(10 * time.Second); tw.deliveries("fail-both") < 4; {
		if time.Now().After(deadline) {
			t.Fatalf("fail-both delivered %d times, want it back after both invocations failed it", tw.deliveries("fail-both"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1200 * time.Millisecond) // anything not deleted would be back by now
	cancel()
	<-done

	tw.mu.Lock()
	defer tw.mu.Unlock()
	if len(tw.alone) > 0 {
		t.Errorf("invocations with no concurrent twin: %v", tw.alone)
	}
	for _, body := range []string{"ok", "fail-first", "fail-second"} {
		if n := tw.seen[body]; n != 2 {
			t.Errorf("%s delivered %d times, want 2 (once to each invocation, then deleted: at least one finished it)", body, n)
		}
	}
}

// TestOverlapDeliversEveryStreamBatchToTwoConcurrentInvocations: with
// overlap the stream mapping invokes the function twice at once with the
// same records, and retries from the earliest record either invocation
// reported failed.
func TestOverlapDeliversEveryStreamBatchToTwoConcurrentInvocations(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := kumotest.Clients(t, nil)
	table := dynamo.TablesFor(kumotest.Stage(t)).Specs()[0]
	if _, err := clients.DynamoDB.CreateTable(ctx, table.CreateInput()); err != nil {
		t.Fatal(err)
	}
	desc, err := clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table.Name)})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r1", "r2", "r3", "r4"} {
		if _, err := clients.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table.Name), Item: map[string]dtypes.AttributeValue{
			dynamo.AttrCell: &dtypes.AttributeValueMemberS{Value: "c"}, dynamo.AttrVoteID: &dtypes.AttributeValueMemberS{Value: id},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	tw := newTwins()
	fn := NewFunction("probe", 5*time.Second, func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		var ids []string
		seq := map[string]string{}
		for _, r := range ev.Records {
			id := r.Change.Keys[dynamo.AttrVoteID].String()
			ids = append(ids, id)
			seq[id] = r.Change.SequenceNumber
		}
		rank := tw.meet(ids)
		var resp events.DynamoDBEventResponse
		// On the first delivery, the first invocation fails r3 and the
		// second fails r2: the batch is retried from r2.
		if ids[0] == "r1" {
			failed := map[int]string{0: "r3", 1: "r2"}[rank]
			resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: seq[failed]}}
		}
		return resp, nil
	})
	p := &streamPoller{
		streams: clients.Streams, sqs: clients.SQS, streamARN: aws.ToString(desc.Table.LatestStreamArn), region: "us-east-1",
		mapping: StreamMapping{BatchSize: 10, Window: 100 * time.Millisecond, MaxRetryAttempts: 3, PollInterval: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond},
		fn:      fn, overlap: true, log: slog.New(slog.DiscardHandler),
	}
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); p.delivered.Load() < 4; {
		if time.Now().After(deadline) {
			t.Fatalf("the stream's 4 records were not all delivered: %d done", p.delivered.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done

	tw.mu.Lock()
	defer tw.mu.Unlock()
	if len(tw.alone) > 0 {
		t.Errorf("invocations with no concurrent twin: %v", tw.alone)
	}
	want := map[string]int{"r1": 2, "r2": 4, "r3": 4, "r4": 4}
	for id, n := range want {
		if tw.seen[id] != n {
			t.Errorf("%s delivered %d times, want %d (deliveries %v): a retry starts at the earliest record either invocation failed", id, tw.seen[id], n, tw.seen)
		}
	}
}

// TestInvocationIsCutOffAtItsTimeout: Invoke gives up at the function's
// timeout with Lambda's error, while the handler, whose context ended at
// the deadline, may still be running and its late work still lands.
func TestInvocationIsCutOffAtItsTimeout(t *testing.T) {
	type seen struct {
		deadline  time.Time
		requestID string
	}
	started := make(chan seen, 1)
	late := make(chan time.Time, 1)
	fn := NewFunction("slow", 200*time.Millisecond, func(ctx context.Context, ev map[string]string) (string, error) {
		var s seen
		s.deadline, _ = ctx.Deadline()
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			s.requestID = lc.AwsRequestID
		}
		started <- s
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // a call in flight at the deadline
		late <- time.Now()
		return "finished", nil
	})
	began := time.Now()
	var out string
	err := fn.Invoke(context.Background(), map[string]string{}, &out)
	returned := time.Now()
	if !errors.Is(err, ErrTimedOut) || !strings.Contains(err.Error(), "Task timed out after 0.20 seconds") {
		t.Fatalf("invoke gave %v, want Lambda's timeout error", err)
	}
	if took := returned.Sub(began); took < 200*time.Millisecond || took > 290*time.Millisecond {
		t.Errorf("invoke returned after %v, want at the 200ms timeout", took)
	}
	s := <-started
	if d := s.deadline.Sub(began); d <= 0 || d > 210*time.Millisecond {
		t.Errorf("the handler's context ends %v after the start, want at the timeout", d)
	}
	if s.requestID == "" {
		t.Error("the handler saw no Lambda context")
	}
	select {
	case at := <-late:
		if !at.After(returned) {
			t.Errorf("the handler finished at %v, before the timeout at %v: nothing was cut off", at, returned)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the handler never finished its late work")
	}
	if out != "" {
		t.Errorf("a timed-out invocation returned %q", out)
	}

	quick := NewFunction("quick", time.Second, func(ctx context.Context) (string, error) { return "done", nil })
	if err := quick.Invoke(context.Background(), nil, &out); err != nil || out != "done" {
		t.Fatalf("an invocation within its timeout gave %q, %v", out, err)
	}
}
