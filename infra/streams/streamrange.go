// Package streams reads the event table's DynamoDB stream with
// aws-sdk-go-v2, for the repairer: a shard's sequence range, read back
// after Lambda gave up on it.
package streams

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"votes/domain"
	"votes/handlers"
	"votes/infra/dynamo"
)

// Range reads a shard's sequence range of a stream.
type Range struct {
	client *dynamodbstreams.Client
	// emptyReads bounds the empty pages read in a row before the end of the
	// range is reached: an open shard answers an iterator past its last
	// record with empty pages, and the range's end may not be in the shard.
	emptyReads int
	pause      time.Duration
}

var _ handlers.StreamRange = (*Range)(nil)

// NewRange reads through client.
func NewRange(client *dynamodbstreams.Client) *Range {
	return &Range{client: client, emptyReads: 10, pause: 100 * time.Millisecond}
}

// Read returns the records of b's shard from b.StartSequenceNumber to
// b.EndSequenceNumber, both included.
//
// It asks for an AT_SEQUENCE_NUMBER iterator at the start, as AWS defines
// it, and also skips every record below the start and every record it has
// already seen: the premise is only that an iterator starts at or before the
// sequence number asked for, never after it. (kumo v0.33.1 started
// AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER iterators at the beginning of
// the shard; third_party/kumo starts them where AWS does.) It stops after
// the end, or at the end of a closed shard.
func (r *Range) Read(ctx context.Context, b handlers.StreamBatch) (handlers.RangeRead, error) {
	var read handlers.RangeRead
	start, ok1 := new(big.Int).SetString(b.StartSequenceNumber, 10)
	end, ok2 := new(big.Int).SetString(b.EndSequenceNumber, 10)
	if !ok1 || !ok2 || start.Cmp(end) > 0 {
		return read, fmt.Errorf("dynamodb streams: shard %s: bad sequence range %q..%q: %w", b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber, handlers.ErrUnrepairable)
	}
	var last *big.Int // the last record taken
	it, err := r.iterator(ctx, b, nil)
	if err != nil {
		return read, err
	}
	for empty, renewed := 0, 0; ; {
		out, err := r.client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1000)})
		var expired *types.ExpiredIteratorException
		if errors.As(err, &expired) && renewed < 3 {
			renewed++
			// Iterators last 15 minutes: take a new one after the last
			// record taken.
			if it, err = r.iterator(ctx, b, last); err != nil {
				return read, err
			}
			continue
		}
		if err != nil {
			return read, r.classify(b, "get records", err)
		}
		for _, rec := range out.Records {
			seq, ok := new(big.Int).SetString(aws.ToString(rec.Dynamodb.SequenceNumber), 10)
			if !ok {
				return read, fmt.Errorf("dynamodb streams: shard %s: record with sequence number %q", b.ShardID, aws.ToString(rec.Dynamodb.SequenceNumber))
			}
			if seq.Cmp(start) < 0 || (last != nil && seq.Cmp(last) <= 0) {
				continue
			}
			if seq.Cmp(end) > 0 {
				return read, nil
			}
			last = seq
			read.Records++
			if rec.EventName == types.OperationTypeInsert { // events are only ever inserted
				if e, err := decode(rec.Dynamodb.NewImage); err != nil {
					read.Undecodable = append(read.Undecodable, seq.String()+": "+err.Error())
				} else {
					read.Events = append(read.Events, e...)
				}
			}
			if seq.Cmp(end) == 0 {
				return read, nil
			}
		}
		if out.NextShardIterator == nil {
			return read, nil // a closed shard, read to its end
		}
		it = out.NextShardIterator
		if len(out.Records) > 0 {
			empty = 0
			continue
		}
		if empty++; empty >= r.emptyReads {
			return read, fmt.Errorf("dynamodb streams: shard %s: sequence number %s not reached after %d empty reads", b.ShardID, b.EndSequenceNumber, empty)
		}
		select {
		case <-ctx.Done():
			return read, ctx.Err()
		case <-time.After(r.pause):
		}
	}
}

// iterator starts at the range's start, or after the record last taken.
func (r *Range) iterator(ctx context.Context, b handlers.StreamBatch, after *big.Int) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(b.StreamARN), ShardId: aws.String(b.ShardID),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(b.StartSequenceNumber),
	}
	if after != nil {
		in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(after.String())
	}
	out, err := r.client.GetShardIterator(ctx, in)
	if err != nil {
		return nil, r.classify(b, "get shard iterator", err)
	}
	return out.ShardIterator, nil
}

// classify marks the errors that say the range is gone for good: a
// sequence number before the shard's trim horizon (TrimmedDataAccess), or a
// shard or stream that no longer exists (ResourceNotFound: shards are
// deleted 24 hours after they close, a stream when its table's stream is
// turned off).
func (r *Range) classify(b handlers.StreamBatch, op string, err error) error {
	var trimmed *types.TrimmedDataAccessException
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &trimmed) || errors.As(err, &notFound) {
		return fmt.Errorf("dynamodb streams: %s of shard %s: %w: %w", op, b.ShardID, handlers.ErrStreamExpired, err)
	}
	return fmt.Errorf("dynamodb streams: %s of shard %s: %w", op, b.ShardID, err)
}

func decode(img map[string]types.AttributeValue) ([]domain.VoteCast, error) {
	return dynamo.DecodeEventFields(func(name string) (string, bool) {
		switch v := img[name].(type) {
		case *types.AttributeValueMemberS:
			return v.Value, true
		case *types.AttributeValueMemberN:
			return v.Value, true
		}
		return "", false
	})
}
