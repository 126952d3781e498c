package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"votes/domain"
	"votes/handlers"
	"votes/infra/dynamo"
	"votes/infra/streams"
	"votes/internal/kumotest"
)

// TestRangeReadsShardRange writes events and other records to an event
// table on kumo, then reads sequence ranges of its stream's shard back.
func TestRangeReadsShardRange(t *testing.T) {
	ctx := context.Background()
	cl := kumotest.Clients(t, nil)
	tables := dynamo.TablesFor(kumotest.Stage(t))
	spec := tables.Specs()[0]
	if spec.Name != tables.Events {
		t.Fatalf("first table spec is %s", spec.Name)
	}
	if _, err := cl.DynamoDB.CreateTable(ctx, spec.CreateInput()); err != nil {
		t.Fatal(err)
	}
	store := dynamo.NewEventStore(cl.DynamoDB, tables.Events)
	var evs []domain.VoteCast
	for i := range 6 {
		e := domain.VoteCast{Schema: domain.EventSchema, SubmissionID: fmt.Sprint("s", i), VoterID: fmt.Sprint("v", i), TitleID: "tt1", Aspect: "story", Choice: "up", RecordedAt: int64(1 + i)}
		e.VoteID = domain.VoteID(e.VoterID, e.TitleID, e.SubmissionID, e.Aspect)
		if _, err := store.Append(ctx, []domain.VoteCast{e}); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
		if i == 2 { // an item that is not an event, then a change of it
			bad := map[string]types.AttributeValue{dynamo.AttrCell: &types.AttributeValueMemberS{Value: "tt1#00"}, dynamo.AttrVoteID: &types.AttributeValueMemberS{Value: "bad"}}
			for range 2 {
				if _, err := cl.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Events), Item: bad}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	desc, err := cl.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tables.Events)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(desc.Table.LatestStreamArn)
	sd, err := cl.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	shard := aws.ToString(sd.StreamDescription.Shards[0].ShardId)
	// The shard's records, from a fresh iterator. kumo's iterators serve one
	// call: a call the SDK sends again finds its iterator gone, as an
	// expired one is in AWS, so the test takes a new one, as the reader does.
	var out *dynamodbstreams.GetRecordsOutput
	for attempt := 0; ; attempt++ {
		it, err := cl.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn), ShardId: aws.String(shard), ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		out, err = cl.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
		var expired *streamtypes.ExpiredIteratorException
		if errors.As(err, &expired) && attempt < 3 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	seqs := make([]string, len(out.Records))
	for i, r := range out.Records {
		seqs[i] = aws.ToString(r.Dynamodb.SequenceNumber)
	}
	if len(seqs) != 8 {
		t.Fatalf("%d stream records, want 6 events and 2 other records", len(seqs))
	}
	// Stream order: e0 e1 e2 bad(insert) bad(modify) e3 e4 e5.
	batch := func(from, to int) handlers.StreamBatch {
		return handlers.StreamBatch{StreamARN: arn, ShardID: shard, StartSequenceNumber: seqs[from], EndSequenceNumber: seqs[to]}
	}
	r := streams.NewRange(cl.Streams)
	for _, tc := range []struct {
		name        string
		from, to    int
		want        []domain.VoteCast
		records     int
		undecodable int
	}{
		{"one record", 1, 1, evs[1:2], 1, 0},
		{"inside", 1, 2, evs[1:3], 2, 0},
		{"across a record that is not an event", 2, 5, evs[2:4], 4, 1},
		{"to the shard's last record", 5, 7, evs[3:6], 3, 0},
		{"the whole shard", 0, 7, evs, 8, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			got, err := r.Read(ctx, batch(tc.from, tc.to))
			if err != nil {
				t.Fatal(err)
			}
			if got.Records != tc.records || len(got.Undecodable) != tc.undecodable || len(got.Events) != len(tc.want) {
				t.Fatalf("%d records, %d undecodable %v, %d events; want %d, %d, %d", got.Records, len(got.Undecodable), got.Undecodable, len(got.Events), tc.records, tc.undecodable, len(tc.want))
			}
			for i := range tc.want {
				if got.Events[i] != tc.want[i] {
					t.Errorf("event %d: %+v, want %+v", i, got.Events[i], tc.want[i])
				}
			}
		})
	}

	t.Run("a shard that is gone", func(t *testing.T) {
		b := batch(0, 1)
		b.ShardID = "shardId-00000001573689847184-864758bb"
		if _, err := r.Read(ctx, b); !errors.Is(err, handlers.ErrStreamExpired) {
			t.Errorf("error %v, want ErrStreamExpired", err)
		}
	})
	t.Run("an end the shard never reaches", func(t *testing.T) {
		b := batch(6, 7)
		b.EndSequenceNumber = "9" + seqs[7]
		_, err := r.Read(ctx, b)
		if err == nil || errors.Is(err, handlers.ErrStreamExpired) {
			t.Errorf("error %v, want a retryable error", err)
		}
	})
}
