package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/infra/functions"
	"votes/infra/queue"
	"votes/internal/kumotest"
	"votes/projections"
)

// appendVotes stores one vote per voter on title in the event table, in
// order, and returns them.
func appendVotes(t *testing.T, f fixture, title string, choices ...string) []domain.VoteCast {
	t.Helper()
	store := dynamo.NewEventStore(f.clients.DynamoDB, f.cfg.Tables.Events)
	var out []domain.VoteCast
	for i, choice := range choices {
		e := domain.VoteCast{
			Schema: domain.EventSchema, SubmissionID: fmt.Sprintf("sub-%d", i), VoterID: fmt.Sprintf("voter-%d", i), TitleID: title,
			Aspect: "story", Choice: choice, RecordedAt: time.Now().UnixNano(),
		}
		e.VoteID = domain.VoteID(e.VoterID, e.TitleID, e.SubmissionID, e.Aspect)
		if _, err := store.Append(context.Background(), []domain.VoteCast{e}); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// streamRecords reads the event table's stream as Lambda would: its ARN,
// its one shard, and the shard's records in order.
func streamRecords(t *testing.T, f fixture) (string, string, []streamtypes.Record) {
	t.Helper()
	ctx := context.Background()
	desc, err := f.clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(f.cfg.Tables.Events)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(desc.Table.LatestStreamArn)
	sd, err := f.clients.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	shard := aws.ToString(sd.StreamDescription.Shards[0].ShardId)
	it, err := f.clients.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(arn), ShardId: aws.String(shard), ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.clients.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	return arn, shard, out.Records
}

// onFailure is the captured OnFailure record of testdata, describing
// instead the records from first to last of a shard, when set.
func onFailure(t *testing.T, arn, shard string, first, last *streamtypes.Record) string {
	t.Helper()
	var rec map[string]any
	loadEvent(t, "dynamodb-onfailure.json", &rec)
	if first != nil {
		info := rec["DDBStreamBatchInfo"].(map[string]any)
		info["streamArn"], info["shardId"] = arn, shard
		info["startSequenceNumber"], info["endSequenceNumber"] = aws.ToString(first.Dynamodb.SequenceNumber), aws.ToString(last.Dynamodb.SequenceNumber)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// failureEvent is the captured SQS event, carrying body on its receives-th
// receive.
func failureEvent(t *testing.T, body string, receives int) events.SQSEvent {
	t.Helper()
	ev := sqsEvent(t)
	ev.Records = ev.Records[:1]
	ev.Records[0].Body = body
	ev.Records[0].Attributes["ApproximateReceiveCount"] = fmt.Sprint(receives)
	return ev
}

func sqsFailures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func toCounts(m map[string]map[string]int64) projections.Counts { return projections.Counts(m) }

// TestRepairerReprojectsStreamRange: an OnFailure record, as Lambda puts it
// on the failure queue, makes the repairer read its sequence range back
// from the stream and project exactly the events in it, once however often
// it is repaired.
func TestRepairerReprojectsStreamRange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	evs := appendVotes(t, f, "tt-range", "up", "down", "up", "up", "down")
	arn, shard, recs := streamRecords(t, f)
	if len(recs) != len(evs) {
		t.Fatalf("%d stream records, want %d", len(recs), len(evs))
	}
	r := functions.Repairer(f.cfg, f.clients.DynamoDB, f.clients.Streams, f.clients.SQS, discard())
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())

	// Records 2 to 4 of 5: the repair must neither miss them nor reach
	// beyond them (kumo starts AT_SEQUENCE_NUMBER iterators at the shard's
	// beginning; AWS at the sequence number).
	body := onFailure(t, arn, shard, &recs[1], &recs[3])
	want := projections.Fold(evs[1:4])["tt-range"]
	for range 2 {
		resp, err := r.Handle(context.Background(), failureEvent(t, body, 1))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("repair: %v, failures %v", err, sqsFailures(resp))
		}
		if got := toCounts(tallies(t, q, "tt-range")); !got.Equal(want) {
			t.Fatalf("tallies %v after repairing records 2 to 4, want %v", got, want)
		}
	}
	if msgs := drain(t, f, f.cfg.RepairFailedURL); len(msgs) != 0 {
		t.Errorf("%d repair dead letters after a repair that worked", len(msgs))
	}
}

// TestRepairerRetriesDeadLetteredRecord: a stream record the projector
// could not decode is decoded again; a valid one is projected, one that is
// still not an event goes to the repair dead-letter queue with the reason.
func TestRepairerRetriesDeadLetteredRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := functions.Repairer(f.cfg, f.clients.DynamoDB, f.clients.Streams, f.clients.SQS, discard())
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	var good, broken events.DynamoDBEventRecord
	for _, rec := range streamEvent(t).Records {
		switch {
		case rec.Change.SequenceNumber == brokenSeq:
			broken = rec
		case good.EventName == "":
			good = rec // alice: overall up
		}
	}
	for _, rec := range []events.DynamoDBEventRecord{good, broken} {
		body, _ := json.Marshal(rec) // as the projector dead-letters it
		resp, err := r.Handle(context.Background(), failureEvent(t, string(body), 1))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%s: %v, failures %v: the broken record belongs in the repair dead-letter queue, not back in the failure queue",
				rec.Change.SequenceNumber, err, sqsFailures(resp))
		}
	}
	if got := tallies(t, q, "tt0111161"); got["overall"]["up"] != 1 {
		t.Errorf("tallies %v, want alice's overall up repaired", got)
	}
	msgs := drain(t, f, f.cfg.RepairFailedURL)
	if len(msgs) != 1 || !strings.Contains(attr(msgs[0], queue.AttrReason), "stream record "+brokenSeq+": still undecodable") ||
		attr(msgs[0], queue.AttrSource) != "repairer" {
		for _, m := range msgs {
			t.Logf("repair dead letter: %s", attr(m, queue.AttrReason))
		}
		t.Fatalf("%d repair dead letters, want the broken record with its reason", len(msgs))
	}
}

// TestRepairerNamesTheFallbackForExpiredRange: the captured OnFailure record
// names a stream this emulator never had, as a range past the stream's
// 24 hours does (its shard is gone): the repair dead letter says which
// command repairs it from the event table.
func TestRepairerNamesTheFallbackForExpiredRange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := functions.Repairer(f.cfg, f.clients.DynamoDB, f.clients.Streams, f.clients.SQS, discard())
	resp, err := r.Handle(context.Background(), failureEvent(t, onFailure(t, "", "", nil, nil), 1))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, failures %v: an expired range cannot be retried from the stream", err, sqsFailures(resp))
	}
	msgs := drain(t, f, f.cfg.RepairFailedURL)
	if len(msgs) != 1 {
		t.Fatalf("%d repair dead letters, want 1", len(msgs))
	}
	reason := attr(msgs[0], queue.AttrReason)
	if !strings.Contains(reason, "past the stream's retention") ||
		!strings.Contains(reason, "votes repair --from 2019-11-13T00:13:19Z --to 2019-11-14T00:18:19Z") {
		t.Errorf("reason %q, want the expiry and the votes repair command for its window", reason)
	}
}

// TestRepairerRetriesUntilLastReceive: a repair that fails for a reason
// that may pass (here every tally write fails) comes back to the failure
// queue, and on its last allowed receive goes to the repair dead-letter
// queue with the reason.
func TestRepairerRetriesUntilLastReceive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	evs := appendVotes(t, f, "tt-flaky", "up", "down")
	arn, shard, recs := streamRecords(t, f)
	flaky := faults.New(5)
	flaky.Set(1, 0, func(target, _ string) bool { return faults.Action(target, "UpdateItem") })
	flakyClients := kumotest.Clients(t, flaky.Client())
	r := functions.Repairer(f.cfg, flakyClients.DynamoDB, flakyClients.Streams, flakyClients.SQS, discard())
	body := onFailure(t, arn, shard, &recs[0], &recs[len(recs)-1])

	resp, err := r.Handle(context.Background(), failureEvent(t, body, 1))
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("first receive: %v, failures %v, want the message back", err, sqsFailures(resp))
	}
	if msgs := drain(t, f, f.cfg.RepairFailedURL); len(msgs) != 0 {
		t.Fatalf("dead-lettered on its first receive")
	}
	resp, err = r.Handle(context.Background(), failureEvent(t, body, f.cfg.RepairMaxReceives))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("last receive: %v, failures %v, want it dead-lettered", err, sqsFailures(resp))
	}
	msgs := drain(t, f, f.cfg.RepairFailedURL)
	if len(msgs) != 1 || !strings.Contains(attr(msgs[0], queue.AttrReason), "cells failed") || aws.ToString(msgs[0].Body) != body {
		t.Fatalf("repair dead letters %v, want the OnFailure record with the failed cells", msgs)
	}

	// Once the writes go through, the same record repairs.
	flaky.Off()
	if resp, err := r.Handle(context.Background(), failureEvent(t, body, 1)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("after the fault: %v, failures %v", err, sqsFailures(resp))
	}
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	if got, want := toCounts(tallies(t, q, "tt-flaky")), projections.Fold(evs)["tt-flaky"]; !got.Equal(want) {
		t.Errorf("tallies %v, want %v", got, want)
	}
}
