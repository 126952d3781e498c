package local_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/sivchari/kumo"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/projections"
)

// eventStream is the event table's stream and its shard.
func eventStream(t *testing.T, s *local.Stack) (arn, shard string) {
	t.Helper()
	ctx := context.Background()
	tab, err := s.Admin.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.Tables.Events)})
	if err != nil {
		t.Fatal(err)
	}
	arn = aws.ToString(tab.Table.LatestStreamArn)
	desc, err := s.Admin.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(desc.StreamDescription.Shards); n != 1 {
		t.Fatalf("the event stream has %d shards, want 1", n)
	}
	return arn, aws.ToString(desc.StreamDescription.Shards[0].ShardId)
}

// appendEvents stores n votes in the event table, as the processor does,
// each a stream record; the first one's vote ID is from.
func appendEvents(t *testing.T, s *local.Stack, from, n int) {
	t.Helper()
	store := dynamo.NewEventStore(s.Admin.DynamoDB, s.Tables.Events)
	for i := from; i < from+n; i++ {
		e := domain.VoteCast{
			Schema: domain.EventSchema, SubmissionID: fmt.Sprintf("sub-%d", i), VoterID: fmt.Sprintf("voter-%d", i),
			TitleID: fmt.Sprintf("tt-%d", i%5), Aspect: "story", Choice: []string{"up", "down"}[i%2], RecordedAt: time.Now().UnixNano(),
		}
		e.VoteID = domain.VoteID(e.VoterID, e.TitleID, e.SubmissionID, e.Aspect)
		if _, err := store.Append(context.Background(), []domain.VoteCast{e}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamLogKeepsOnlyWhatIsNotProjected: the emulator's stream log
// holds the records the projector has not taken yet, not every record
// since the stack started (kumo v0.33.1 kept them all, which was a third of
// votes dev's heap): once the stream mapping is idle it holds none, wave
// after wave, and the tallies are the fold of the event table all the
// same. A reader of a trimmed record gets TrimmedDataAccessException, as
// from AWS, and TRIM_HORIZON starts after it.
func TestStreamLogKeepsOnlyWhatIsNotProjected(t *testing.T) {
	s := startStack(t, nil, local.FastSettings(), false)
	arn, shard := eventStream(t, s)
	ctx := context.Background()

	const wave = 600
	s.HoldStream()
	appendEvents(t, s, 0, wave)
	if n := kumo.StreamRecords(arn, shard); n != wave {
		t.Fatalf("with the mapping held, the stream log holds %d records, want the %d appended", n, wave)
	}
	horizon := func() *string {
		out, err := s.Admin.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn: aws.String(arn), ShardId: aws.String(shard), ShardIteratorType: stypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.ShardIterator
	}
	page, err := s.Admin.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: horizon(), Limit: aws.Int32(1)})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("first record: %v, %v", page, err)
	}
	firstSeq := page.Records[0].Dynamodb.SequenceNumber
	stale := horizon() // at the first record, used after the trim
	s.ReleaseStream()
	waitIdle(t, s)
	if n := kumo.StreamRecords(arn, shard); n != 0 {
		t.Errorf("after the projector took all %d records, the stream log holds %d", wave, n)
	}

	appendEvents(t, s, wave, wave)
	waitIdle(t, s)
	if n := kumo.StreamRecords(arn, shard); n != 0 {
		t.Errorf("after a second wave of %d records, the stream log holds %d", wave, n)
	}

	fold := projections.Fold(kumotest.StoredEvents(t, s.Tables.Events))
	for i := range 5 {
		title := fmt.Sprintf("tt-%d", i)
		if got := getTallies(t, s, title); !got.Equal(fold[title]) || got["story"]["up"]+got["story"]["down"] != 2*wave/5 {
			t.Errorf("%s: tallies %v, fold %v, want %d votes", title, got, fold[title], 2*wave/5)
		}
	}

	// An iterator taken before the trim, and one at the first record, are
	// refused as AWS refuses them; a new TRIM_HORIZON reads nothing old.
	var trimmed *stypes.TrimmedDataAccessException
	if _, err := s.Admin.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: stale}); !errors.As(err, &trimmed) {
		t.Errorf("GetRecords at a trimmed record: %v, want TrimmedDataAccessException", err)
	}
	if _, err := s.Admin.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(arn), ShardId: aws.String(shard), ShardIteratorType: stypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: firstSeq,
	}); !errors.As(err, &trimmed) {
		t.Errorf("GetShardIterator at a trimmed sequence number: %v, want TrimmedDataAccessException", err)
	}
	if page, err := s.Admin.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: horizon()}); err != nil || len(page.Records) != 0 {
		t.Errorf("TRIM_HORIZON after the trim: %d records, %v; want none", len(page.Records), err)
	}
}
