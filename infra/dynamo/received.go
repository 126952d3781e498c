package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
)

// ScanReceived reads every event of table that the receiver accepted from
// from to to (its recordedAt, both included), a page at a time, and hands
// each page's events to fn with the number of items in the range that are
// not valid events. The filter saves sending the other items, not reading
// them: the scan reads, and is billed for, the whole table. Reads are
// strongly consistent, so an event written before the scan is seen.
func ScanReceived(ctx context.Context, client *dynamodb.Client, table string, from, to time.Time, pageSize int, fn func(events []domain.VoteCast, invalid int) error) error {
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true), Limit: aws.Int32(int32(pageSize)),
		FilterExpression:         aws.String("#r BETWEEN :from AND :to"),
		ExpressionAttributeNames: map[string]string{"#r": AttrRecordedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":from": &types.AttributeValueMemberN{Value: strconv.FormatInt(from.UnixNano(), 10)},
			":to":   &types.AttributeValueMemberN{Value: strconv.FormatInt(to.UnixNano(), 10)},
		},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("dynamodb: scan %s for events received from %s to %s: %w", table, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		events := make([]domain.VoteCast, 0, len(page.Items))
		invalid := 0
		for _, item := range page.Items {
			e, err := DecodeEvent(item)
			if err != nil {
				invalid++
				continue
			}
			events = append(events, e...)
		}
		if err := fn(events, invalid); err != nil {
			return err
		}
	}
	return nil
}
