package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/projections"
)

// EventScanner reads the event table with a parallel scan, a page at a time.
type EventScanner struct {
	client   *dynamodb.Client
	table    string
	pageSize int32
}

var _ projections.Scanner = (*EventScanner)(nil)

// NewEventScanner scans table in pages of up to pageSize items (DynamoDB
// also ends a page at 1 MB).
func NewEventScanner(client *dynamodb.Client, table string, pageSize int) *EventScanner {
	return &EventScanner{client: client, table: table, pageSize: int32(pageSize)}
}

// RawPage reads a page and returns its items undecoded: the floor a rebuild
// is measured against.
//
// The scan is strongly consistent. A rebuild counts on every event being
// either read by its scan or projected live into the new version. An event
// written just before the version joined the live write set can reach a
// projector batch that read the write set before the join, so only the
// scan, which starts after the join, puts it into the version. An
// eventually consistent scan can be served by a replica that has not
// received that event yet, and it would be in neither path. Strongly
// consistent reads cost twice the read units.
func (s *EventScanner) RawPage(ctx context.Context, segment, total int, after projections.Cursor) ([]map[string]types.AttributeValue, projections.Cursor, error) {
	in := &dynamodb.ScanInput{
		TableName: aws.String(s.table), Segment: aws.Int32(int32(segment)), TotalSegments: aws.Int32(int32(total)),
		Limit: aws.Int32(s.pageSize), ConsistentRead: aws.Bool(true),
	}
	if after != "" {
		cell, voteID, _ := strings.Cut(string(after), "\x00")
		in.ExclusiveStartKey = map[string]types.AttributeValue{
			AttrCell: &types.AttributeValueMemberS{Value: cell}, AttrVoteID: &types.AttributeValueMemberS{Value: voteID},
		}
	}
	out, err := s.client.Scan(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("dynamodb: scan %s segment %d/%d: %w", s.table, segment, total, err)
	}
	var next projections.Cursor
	if k := out.LastEvaluatedKey; len(k) > 0 {
		cell, _ := k[AttrCell].(*types.AttributeValueMemberS)
		voteID, _ := k[AttrVoteID].(*types.AttributeValueMemberS)
		if cell == nil || voteID == nil {
			return nil, "", fmt.Errorf("dynamodb: scan %s: unexpected LastEvaluatedKey", s.table)
		}
		next = projections.Cursor(cell.Value + "\x00" + voteID.Value)
	}
	return out.Items, next, nil
}

// Page reads and decodes a page of events.
func (s *EventScanner) Page(ctx context.Context, segment, total int, after projections.Cursor) ([]domain.VoteCast, int, projections.Cursor, error) {
	items, next, err := s.RawPage(ctx, segment, total, after)
	if err != nil {
		return nil, 0, "", err
	}
	events := make([]domain.VoteCast, 0, len(items))
	invalid := 0
	for _, item := range items {
		e, err := DecodeEvent(item)
		if err != nil {
			invalid++
			continue
		}
		events = append(events, e...)
	}
	return events, invalid, next, nil
}

// CheckpointStore keeps rebuild checkpoints in the tallies table, one item
// per version and segment.
type CheckpointStore struct {
	client *dynamodb.Client
	table  string
}

var _ projections.Checkpoints = (*CheckpointStore)(nil)

// NewCheckpointStore keeps checkpoints in table.
func NewCheckpointStore(client *dynamodb.Client, table string) *CheckpointStore {
	return &CheckpointStore{client: client, table: table}
}

func checkpointKey(version string, segment int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: checkpointPrefix + versionPrefix(version) + strconv.Itoa(segment)}}
}

// Load reads the checkpoints of every segment.
func (c *CheckpointStore) Load(ctx context.Context, version string, segments int) ([]projections.Checkpoint, error) {
	keys := make([]map[string]types.AttributeValue, segments)
	for i := range keys {
		keys[i] = checkpointKey(version, i)
	}
	items, err := batchGet(ctx, c.client, c.table, keys, true)
	if err != nil {
		return nil, fmt.Errorf("load checkpoints of version %s: %w", version, err)
	}
	out := make([]projections.Checkpoint, segments)
	for i := range out {
		out[i].Segment = i
	}
	for _, item := range items {
		seg, _ := item["segment"].(*types.AttributeValueMemberN)
		if seg == nil {
			continue
		}
		i, err := strconv.Atoi(seg.Value)
		if err != nil || i < 0 || i >= segments {
			continue
		}
		if v, ok := item["after"].(*types.AttributeValueMemberS); ok {
			out[i].After = projections.Cursor(v.Value)
		}
		if v, ok := item["done"].(*types.AttributeValueMemberBOOL); ok {
			out[i].Done = v.Value
		}
		if v, ok := item["events"].(*types.AttributeValueMemberN); ok {
			out[i].Events, _ = strconv.ParseInt(v.Value, 10, 64)
		}
	}
	return out, nil
}

// Save stores a segment's checkpoint.
func (c *CheckpointStore) Save(ctx context.Context, version string, cp projections.Checkpoint) error {
	item := checkpointKey(version, cp.Segment)
	item["segment"] = &types.AttributeValueMemberN{Value: strconv.Itoa(cp.Segment)}
	item["after"] = &types.AttributeValueMemberS{Value: string(cp.After)}
	item["done"] = &types.AttributeValueMemberBOOL{Value: cp.Done}
	item["events"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(cp.Events, 10)}
	if _, err := c.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(c.table), Item: item}); err != nil {
		return fmt.Errorf("dynamodb: save checkpoint of version %s segment %d: %w", version, cp.Segment, err)
	}
	return nil
}

// CountRaw reads every segment of the event table with ScanSegments in
// total parallel segments, decoding nothing, and counts the items: the
// floor a rebuild is measured against.
func (s *EventScanner) CountRaw(ctx context.Context, total int) (int64, error) {
	var n atomic.Int64
	err := projections.ScanSegments(ctx, projections.Segments(total),
		func(ctx context.Context, segment int, after projections.Cursor) ([]map[string]types.AttributeValue, projections.Cursor, error) {
			return s.RawPage(ctx, segment, total, after)
		},
		func(_ context.Context, _ int, items []map[string]types.AttributeValue, _ projections.Cursor) error {
			n.Add(int64(len(items)))
			return nil
		})
	return n.Load(), err
}
