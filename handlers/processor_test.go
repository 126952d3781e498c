package handlers_test

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/infra/queue"
	"votes/internal/kumotest"
)

// sampleVotes are the votes of the submissions in testdata/sqs-event.json.
var sampleVotes = []domain.VoteCast{
	{Schema: domain.EventSchema, VoteID: "kmgmqpewmbwlplvjnektfmthl3tbraga", SubmissionID: "sub-alice-1", VoterID: "alice", TitleID: "tt0111161",
		Aspect: "overall", Choice: "up", RecordedAt: 1700000000000000000, OccurredAt: "2023-11-14T22:13:20Z"},
	{Schema: domain.EventSchema, VoteID: "7tm2tfiwjyu2giumszyxpnvnuyj645cd", SubmissionID: "sub-alice-1", VoterID: "alice", TitleID: "tt0111161",
		Aspect: "story", Choice: "down", RecordedAt: 1700000000000000000, OccurredAt: "2023-11-14T22:13:20Z"},
	{Schema: domain.EventSchema, VoteID: "h2ozkwr2mxeboiaixmty6qwmokt2bqg3", SubmissionID: "sub-bob-1", VoterID: "bob", TitleID: "tt0111161",
		Aspect: "overall", Choice: "down", RecordedAt: 1700000000500000000},
}

func sqsEvent(t *testing.T) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	loadEvent(t, "sqs-event.json", &ev)
	return ev
}

// storedEvent reads a vote back from the event table, by its vote ID,
// from whichever item holds it (a submission's votes share one item).
func storedEvent(t *testing.T, f fixture, e domain.VoteCast) (domain.VoteCast, bool) {
	t.Helper()
	for _, got := range kumotest.StoredEvents(t, f.cfg.Tables.Events) {
		if got.VoteID == e.VoteID {
			return got, true
		}
	}
	return domain.VoteCast{}, false
}

// cellItems counts the items stored in a cell's partition of the event table.
func cellItems(t *testing.T, f fixture, cell domain.Cell) int {
	t.Helper()
	out, err := f.clients.DynamoDB.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(f.cfg.Tables.Events),
		KeyConditionExpression:    aws.String("#cell = :cell"),
		ExpressionAttributeNames:  map[string]string{"#cell": dynamo.AttrCell},
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":cell": &dbtypes.AttributeValueMemberS{Value: cell.String()}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Items)
}

// eventCount is the number of votes the event table holds.
func eventCount(t *testing.T, f fixture) int {
	t.Helper()
	return len(kumotest.StoredEvents(t, f.cfg.Tables.Events))
}

func failedIDs(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func TestProcessorAppendsEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Processor(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())

	resp, err := h.Handle(context.Background(), sqsEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch item failures %v", failedIDs(resp))
	}
	for _, want := range sampleVotes {
		got, ok := storedEvent(t, f, want)
		if !ok {
			t.Errorf("vote %s (%s on %s) not stored", want.VoteID, want.VoterID, want.Aspect)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stored %+v\nwant   %+v", got, want)
		}
	}
	// Alice's two votes are one submission: one item, one write, in her
	// ballot's cell.
	if n := cellItems(t, f, domain.CellOf("tt0111161", "alice")); n != 1 {
		t.Errorf("alice's cell holds %d items, want her submission's 1", n)
	}
	if msgs := drain(t, f, f.cfg.DeadLettersURL); len(msgs) != 0 {
		t.Errorf("%d dead letters", len(msgs))
	}
}

func TestProcessorRedeliveryIsDuplicate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Processor(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	ev := sqsEvent(t)
	if resp, err := h.Handle(context.Background(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("first delivery: %v, failures %v", err, failedIDs(resp))
	}

	// SQS delivers the batch again, and the receiver queued alice's
	// submission a second time (a client retry with the same key), later.
	again := ev
	again.Records = append([]events.SQSMessage(nil), ev.Records...)
	retried := ev.Records[0]
	retried.MessageId = "MessageID_retry"
	retried.Body = strings.Replace(retried.Body, `"receivedAt":1700000000000000000`, `"receivedAt":1700000099000000000`, 1)
	if _, err := domain.DecodeAccepted([]byte(retried.Body)); err != nil {
		t.Fatalf("retried body: %v", err)
	}
	again.Records = append(again.Records, retried)
	resp, err := h.Handle(context.Background(), again)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("redelivered duplicates failed: %v", failedIDs(resp))
	}
	if n := eventCount(t, f); n != len(sampleVotes) {
		t.Errorf("%d events stored, want %d", n, len(sampleVotes))
	}
	// The first time a vote was received stays its time.
	if got, _ := storedEvent(t, f, sampleVotes[0]); got.RecordedAt != sampleVotes[0].RecordedAt {
		t.Errorf("recordedAt changed to %d by a duplicate", got.RecordedAt)
	}
	if msgs := drain(t, f, f.cfg.DeadLettersURL); len(msgs) != 0 {
		t.Errorf("%d dead letters", len(msgs))
	}
}

func TestProcessorDeadLettersPoison(t *testing.T) {
	t.Parallel()
	tampered := strings.Replace(sqsEvent(t).Records[1].Body, `"choice":"down"`, `"choice":"up"`, 1)
	tampered = strings.Replace(tampered, `"voterId":"bob"`, `"voterId":"mallory"`, 1)
	tests := []struct {
		name string
		body string
	}{
		{"the sample's own body", "Message Body"},
		{"no votes", `{"v":1,"submissionId":"s","voterId":"v","titleId":"t","receivedAt":1,"votes":[]}`},
		{"unknown older schema", strings.Replace(sqsEvent(t).Records[1].Body, `"v":1`, `"v":0`, 1)},
		{"vote ID not matching", tampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			h := functions.Processor(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
			ev := sqsEvent(t)
			ev.Records[0].Body = tt.body

			resp, err := h.Handle(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.BatchItemFailures) != 0 {
				t.Errorf("poison came back as batch item failures %v; it would be retried forever", failedIDs(resp))
			}
			dead := drain(t, f, f.cfg.DeadLettersURL)
			if len(dead) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dead))
			}
			if got := aws.ToString(dead[0].Body); got != tt.body {
				t.Errorf("dead letter body %q, want the message %q", got, tt.body)
			}
			if reason := attr(dead[0], queue.AttrReason); !strings.HasPrefix(reason, "poison:") {
				t.Errorf("reason %q, want one starting poison:", reason)
			}
			if src := attr(dead[0], queue.AttrSource); src != "processor" {
				t.Errorf("source %q, want processor", src)
			}
			// The good message in the batch is stored all the same.
			if _, ok := storedEvent(t, f, sampleVotes[2]); !ok {
				t.Error("the good message of the batch was not stored")
			}
			if n := eventCount(t, f); n != 1 {
				t.Errorf("%d events stored, want bob's 1", n)
			}
		})
	}
}

func TestProcessorKeepsPoisonWhenDeadLetterQueueFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.cfg
	cfg.DeadLettersURL = f.missingQueueURL(t)
	h := functions.Processor(cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	ev := sqsEvent(t)
	ev.Records[0].Body = "Message Body"

	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	// Not stored anywhere: SQS must keep it.
	if got := failedIDs(resp); !reflect.DeepEqual(got, []string{"MessageID_1"}) {
		t.Errorf("batch item failures %v, want [MessageID_1]", got)
	}
}

// msAgo is an SQS timestamp attribute value: d before now, in Unix
// milliseconds.
func msAgo(d time.Duration) string {
	return strconv.FormatInt(time.Now().Add(-d).UnixMilli(), 10)
}

// TestProcessorAppendFailure: a message whose votes cannot be stored is
// retried until it has been failing for longer than the limit since its
// first receive, however many receives that took (throttled invocations
// count as receives), then dead-lettered with the reason.
func TestProcessorAppendFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		attributes map[string]string
		failed     []string
		dead       bool
	}{
		{name: "first failure is retried", attributes: map[string]string{"ApproximateReceiveCount": "1", "ApproximateFirstReceiveTimestamp": msAgo(0)}, failed: []string{"MessageID_1"}},
		{name: "many receives within the limit are retried", attributes: map[string]string{"ApproximateReceiveCount": "60", "ApproximateFirstReceiveTimestamp": msAgo(14 * time.Minute)}, failed: []string{"MessageID_1"}},
		{name: "a backlog before the first receive does not count", attributes: map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": msAgo(3 * time.Hour), "ApproximateFirstReceiveTimestamp": msAgo(time.Minute)}, failed: []string{"MessageID_1"}},
		{name: "failing past the limit is dead-lettered", attributes: map[string]string{"ApproximateReceiveCount": "5", "ApproximateFirstReceiveTimestamp": msAgo(16 * time.Minute)}, dead: true},
		{name: "without a first receive time, the send time counts", attributes: map[string]string{"ApproximateReceiveCount": "5", "SentTimestamp": msAgo(20 * time.Minute)}, dead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			cfg := f.cfg
			cfg.Tables.Events = cfg.Tables.Events + "-missing"
			h := functions.Processor(cfg, f.clients.DynamoDB, f.clients.SQS, discard())
			ev := sqsEvent(t)
			ev.Records = ev.Records[:1]
			ev.Records[0].Attributes = tt.attributes

			resp, err := h.Handle(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := failedIDs(resp); !reflect.DeepEqual(got, tt.failed) {
				t.Errorf("batch item failures %v, want %v", got, tt.failed)
			}
			dead := drain(t, f, f.cfg.DeadLettersURL)
			if !tt.dead {
				if len(dead) != 0 {
					t.Errorf("%d dead letters within the retry limit", len(dead))
				}
				return
			}
			if len(dead) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dead))
			}
			if aws.ToString(dead[0].Body) != ev.Records[0].Body {
				t.Errorf("dead letter body %q, want the message", aws.ToString(dead[0].Body))
			}
			reason := attr(dead[0], queue.AttrReason)
			want := "gave up after failing for over 15m (" + tt.attributes["ApproximateReceiveCount"] + " receives)"
			if !strings.Contains(reason, want) || !strings.Contains(reason, sampleVotes[0].SubmissionID) {
				t.Errorf("reason %q does not say %q on submission %s", reason, want, sampleVotes[0].SubmissionID)
			}
		})
	}
}

// TestProcessorRetriesNewerSchema: a message of a newer schema version was
// queued by newer code during a deploy. It is retried, not poisoned, for an
// hour from when it was sent, then dead-lettered with that reason; the
// rest of the batch is stored either way.
func TestProcessorRetriesNewerSchema(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		sent time.Duration // ago
		dead bool
	}{
		{name: "during a deploy", sent: 5 * time.Minute},
		{name: "over an hour old", sent: 61 * time.Minute, dead: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			h := functions.Processor(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
			ev := sqsEvent(t)
			// A newer receiver may change the shape in any other way too.
			ev.Records[0].Body = strings.Replace(strings.Replace(ev.Records[0].Body, `"v":1`, `"v":2`, 1), `"votes":`, `"ballot":`, 1)
			ev.Records[0].Attributes["SentTimestamp"] = msAgo(tt.sent)
			ev.Records[0].Attributes["ApproximateFirstReceiveTimestamp"] = msAgo(tt.sent)

			resp, err := h.Handle(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			dead := drain(t, f, f.cfg.DeadLettersURL)
			if !tt.dead {
				if got := failedIDs(resp); !reflect.DeepEqual(got, []string{"MessageID_1"}) {
					t.Errorf("batch item failures %v, want the newer message retried", got)
				}
				if len(dead) != 0 {
					t.Errorf("dead letters %v: a newer schema during a deploy is not poison", attr(dead[0], queue.AttrReason))
				}
			} else {
				if got := failedIDs(resp); len(got) != 0 {
					t.Errorf("batch item failures %v after the hour", got)
				}
				if len(dead) != 1 {
					t.Fatalf("%d dead letters, want the newer message", len(dead))
				}
				want := "schema version 2 is newer than this processor understands (v1), for over 1h"
				if reason := attr(dead[0], queue.AttrReason); reason != want {
					t.Errorf("reason %q, want %q", reason, want)
				}
			}
			if _, ok := storedEvent(t, f, sampleVotes[2]); !ok || eventCount(t, f) != 1 {
				t.Errorf("bob's vote of the same batch was not stored alone: %d events", eventCount(t, f))
			}
		})
	}
}
