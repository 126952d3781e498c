package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/admin"
	"votes/projections"
)

// Keys of the ballot and tally tables. A projection version's ballots
// and cells are keyed "<version>#..."; the tallies table also holds items
// of its own, keyed from '_' (the version registry, rebuild checkpoints
// "_rebuild#<version>#<segment>"), which no version name starts with.
const (
	keySep           = "#"
	internalPrefix   = "_"
	checkpointPrefix = "_rebuild#"
)

// versionPrefix starts the key of every ballot and cell of version.
func versionPrefix(version string) string { return version + keySep }

// VersionItems are the projection versions' items seen whole, across the
// ballot and tally tables: what the engineers' tools count, list and
// delete. The projector reads and writes them one by one through
// BallotStore and CellStore.
type VersionItems struct {
	client *dynamodb.Client
	tables Tables
}

// NewVersionItems works on the ballot and tally tables of tables.
func NewVersionItems(client *dynamodb.Client, tables Tables) *VersionItems {
	return &VersionItems{client: client, tables: tables}
}

// VersionStats is what a version's tally cells hold, as admin counts it.
type VersionStats = admin.VersionStats

var _ admin.VersionItems = (*VersionItems)(nil)

// Stats counts every version's cells and votes, from a scan of the tallies
// table (small: one item per title, shard and version).
func (v *VersionItems) Stats(ctx context.Context) (map[string]VersionStats, error) {
	out := map[string]VersionStats{}
	err := v.scan(ctx, v.tables.Tallies, "", func(items []map[string]types.AttributeValue) error {
		for _, item := range items {
			pk, _ := item[AttrPK].(*types.AttributeValueMemberS)
			if pk == nil || strings.HasPrefix(pk.Value, internalPrefix) {
				continue
			}
			version, _, _ := strings.Cut(pk.Value, keySep)
			s := out[version]
			s.Cells++
			for _, m := range CellCounts(item) {
				for _, n := range m {
					s.Votes += n
				}
			}
			out[version] = s
		}
		return nil
	})
	return out, err
}

// Titles lists, sorted, the titles version has tally cells for.
func (v *VersionItems) Titles(ctx context.Context, version string) ([]string, error) {
	seen := map[string]bool{}
	err := v.scan(ctx, v.tables.Tallies, versionPrefix(version), func(items []map[string]types.AttributeValue) error {
		for _, item := range items {
			if t, ok := item[AttrTitleID].(*types.AttributeValueMemberS); ok {
				seen[t.Value] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

// Delete deletes version's ballots, cells, rebuild checkpoints, read
// summaries, title index and rankings, telling
// progress (when set) how many items each batch deleted, and returns how
// many it deleted. Deleting what is already gone changes nothing, so it
// can be run again to delete items written while it ran.
func (v *VersionItems) Delete(ctx context.Context, version string, progress func(deleted int)) (int64, error) {
	var deleted atomic.Int64
	for _, t := range []struct{ table, prefix string }{
		{v.tables.Ballots, versionPrefix(version)},
		{v.tables.Tallies, versionPrefix(version)},
		{v.tables.Tallies, checkpointPrefix + versionPrefix(version)},
		{v.tables.Tallies, SummaryPrefix + versionPrefix(version)},
	} {
		err := v.scan(ctx, t.table, t.prefix, func(items []map[string]types.AttributeValue) error {
			n, err := v.deleteItems(ctx, t.table, items)
			deleted.Add(int64(n))
			if progress != nil {
				progress(n)
			}
			return err
		})
		if err != nil {
			return deleted.Load(), err
		}
	}
	if v.tables.Titles != "" {
		n, err := deleteTitles(ctx, v.client, v.tables.Titles, version, progress)
		deleted.Add(n)
		if err != nil {
			return deleted.Load(), err
		}
	}
	return deleted.Load(), nil
}

// scan reads table (keyed by pk alone) with projections.ScanSegments in 8
// parallel segments, keeping items whose pk starts with prefix (all when
// empty), and hands each page to page, one page at a time.
func (v *VersionItems) scan(ctx context.Context, table, prefix string, page func([]map[string]types.AttributeValue) error) error {
	const segments = 8
	var mu sync.Mutex
	return projections.ScanSegments(ctx, projections.Segments(segments),
		func(ctx context.Context, segment int, after projections.Cursor) ([]map[string]types.AttributeValue, projections.Cursor, error) {
			in := &dynamodb.ScanInput{TableName: aws.String(table), Segment: aws.Int32(int32(segment)), TotalSegments: aws.Int32(segments), Limit: aws.Int32(5000)}
			if prefix != "" {
				in.FilterExpression = aws.String("begins_with(#pk, :prefix)")
				in.ExpressionAttributeNames = map[string]string{"#pk": AttrPK}
				in.ExpressionAttributeValues = map[string]types.AttributeValue{":prefix": &types.AttributeValueMemberS{Value: prefix}}
			}
			if after != "" {
				in.ExclusiveStartKey = map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: string(after)}}
			}
			out, err := v.client.Scan(ctx, in)
			if err != nil {
				return nil, "", fmt.Errorf("dynamodb: scan %s segment %d/%d: %w", table, segment, segments, err)
			}
			var next projections.Cursor
			if k, ok := out.LastEvaluatedKey[AttrPK].(*types.AttributeValueMemberS); ok {
				next = projections.Cursor(k.Value)
			}
			return out.Items, next, nil
		},
		func(_ context.Context, _ int, items []map[string]types.AttributeValue, _ projections.Cursor) error {
			mu.Lock()
			defer mu.Unlock()
			return page(items)
		})
}

// deleteItems deletes items in batches of 25, retrying the unprocessed
// ones. An item's key is its pk, and its sk when it has one.
func (v *VersionItems) deleteItems(ctx context.Context, table string, items []map[string]types.AttributeValue) (int, error) {
	return deleteItems(ctx, v.client, table, items)
}

func deleteItems(ctx context.Context, client *dynamodb.Client, table string, items []map[string]types.AttributeValue) (int, error) {
	deleted := 0
	for start := 0; start < len(items); start += 25 {
		var reqs []types.WriteRequest
		for _, item := range items[start:min(start+25, len(items))] {
			key := map[string]types.AttributeValue{AttrPK: item[AttrPK]}
			if sk, ok := item[AttrSK]; ok {
				key[AttrSK] = sk
			}
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key}})
		}
		pending := map[string][]types.WriteRequest{table: reqs}
		for attempt := 0; len(pending[table]) > 0; attempt++ {
			if attempt > 0 {
				if err := batchRetry.Wait(ctx, attempt); err != nil {
					return deleted, fmt.Errorf("dynamodb: delete from %s: %w", table, err)
				}
			}
			out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return deleted, fmt.Errorf("dynamodb: delete from %s: %w", table, err)
			}
			deleted += len(pending[table]) - len(out.UnprocessedItems[table])
			pending = out.UnprocessedItems
		}
	}
	return deleted, nil
}
