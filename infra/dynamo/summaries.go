package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/projections"
)

// SummaryPrefix starts the key of every tally summary item in the tallies
// table: _summary#<version>#<title>. No cell key starts with '_', so scans
// of a version's cells (version#...) never see a summary.
const SummaryPrefix = "_summary#"

// summaryItem is how a handlers.Summary is stored.
type summaryItem struct {
	PK     string                      `dynamodbav:"pk"`
	At     int64                       `dynamodbav:"at"` // Unix nanoseconds
	Counts map[string]map[string]int64 `dynamodbav:"counts"`
}

// SummaryStore keeps the query function's tally summaries in the tallies
// table, one item per version and title, well under 4 KB (one read unit
// at most, half of one eventually consistent).
type SummaryStore struct {
	client *dynamodb.Client
	table  string
}

// NewSummaryStore keeps summaries in table.
func NewSummaryStore(client *dynamodb.Client, table string) *SummaryStore {
	return &SummaryStore{client: client, table: table}
}

func summaryKey(version, titleID string) string { return SummaryPrefix + version + "#" + titleID }

// Summary reads the summary of a version's title with an eventually
// consistent read: its counts and when the sum began. ok is false when none
// is stored.
func (s *SummaryStore) Summary(ctx context.Context, version, titleID string) (counts projections.Counts, at time.Time, ok bool, err error) {
	key := summaryKey(version, titleID)
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table),
		Key:       map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: key}},
	})
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("dynamodb: read summary %s: %w", key, err)
	}
	if out.Item == nil {
		return nil, time.Time{}, false, nil
	}
	var it summaryItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return nil, time.Time{}, false, fmt.Errorf("dynamodb: decode summary %s: %w", key, err)
	}
	counts = projections.Counts{}
	for aspect, m := range it.Counts {
		for choice, n := range m {
			counts.Add(aspect, choice, n)
		}
	}
	return counts, time.Unix(0, it.At), true, nil
}

// Offer puts counts, summed from cells from at on, on condition that no
// summary is stored or the stored one is older, so that a put landing late
// (a slow refresh, or the SDK retrying a put whose first try was applied)
// never moves it back. A put refused for a newer summary returns nil.
func (s *SummaryStore) Offer(ctx context.Context, version, titleID string, counts projections.Counts, at time.Time) error {
	key := summaryKey(version, titleID)
	it := summaryItem{PK: key, At: at.UnixNano(), Counts: map[string]map[string]int64{}}
	for aspect, m := range counts.Compact() {
		it.Counts[aspect] = m
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("dynamodb: encode summary %s: %w", key, err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(#at) OR #at < :at"),
		ExpressionAttributeNames:  map[string]string{"#at": "at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": &types.AttributeValueMemberN{Value: strconv.FormatInt(it.At, 10)}},
	})
	if err == nil || conditionFailed(err) {
		return nil // a failed condition: a summary as new or newer is stored
	}
	return fmt.Errorf("dynamodb: put summary %s: %w", key, err)
}
