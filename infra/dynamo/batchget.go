package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/internal/backoff"
)

// batchRetry paces the retries of the items a batch call leaves
// unprocessed (DynamoDB throttling part of the batch). Each retry makes
// progress or waits longer; only ctx ends it.
var batchRetry = backoff.Policy{Base: 20 * time.Millisecond, Max: 2 * time.Second}

// batchGet reads keys from table in calls of at most 100 keys, retrying
// unprocessed keys with backoff until ctx ends.
func batchGet(ctx context.Context, client *dynamodb.Client, table string, keys []map[string]types.AttributeValue, consistent bool) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	for start := 0; start < len(keys); start += 100 {
		pending := map[string]types.KeysAndAttributes{
			table: {Keys: keys[start:min(start+100, len(keys))], ConsistentRead: aws.Bool(consistent)},
		}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				if err := batchRetry.Wait(ctx, attempt); err != nil {
					return nil, fmt.Errorf("dynamodb: batch get from %s: %w", table, err)
				}
			}
			out, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, fmt.Errorf("dynamodb: batch get from %s: %w", table, err)
			}
			items = append(items, out.Responses[table]...)
			pending = out.UnprocessedKeys
		}
	}
	return items, nil
}
