package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/projections"
)

// Key attributes of the titles table.
const (
	AttrSK = "sk"
)

// titleBuckets spreads a version's title summaries over this many partition
// keys, so that listing them is that many queries and writing them never
// leans on one key.
const titleBuckets = 16

// TitleStore keeps one projection version's title index and ranking pages
// in the titles table:
//   - a summary per title under <version>#s#<bucket>, sort key the title;
//   - a ranking page under <version>#r#<order>, sort key the page number.
type TitleStore struct {
	client  *dynamodb.Client
	table   string
	version string
}

var (
	_ projections.TitleIndex   = (*TitleStore)(nil)
	_ projections.TitleLister  = (*TitleStore)(nil)
	_ projections.RankingStore = (*TitleStore)(nil)
)

// NewTitleStore keeps the title index of projection version in table.
func NewTitleStore(client *dynamodb.Client, table, version string) *TitleStore {
	return &TitleStore{client: client, table: table, version: version}
}

type summaryRow struct {
	PK     string                      `dynamodbav:"pk"`
	SK     string                      `dynamodbav:"sk"`
	Counts map[string]map[string]int64 `dynamodbav:"counts"`
	Last   int64                       `dynamodbav:"last"`
	Cells  map[string]int64            `dynamodbav:"cells"`
	Rev    int64                       `dynamodbav:"rev"`
	// The trend the summary holds: pending, and its last flush (encodeTrend).
	Pending  *string `dynamodbav:"pend,omitempty"`
	Flush    *string `dynamodbav:"flush,omitempty"`
	FlushRev int64   `dynamodbav:"frev,omitempty"`
}

func (s *TitleStore) bucketKey(titleID string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(titleID))
	return s.bucketPK(int(h.Sum32() % titleBuckets))
}

func (s *TitleStore) bucketPK(bucket int) string {
	return versionPrefix(s.version) + "s" + keySep + strconv.Itoa(bucket)
}

func (s *TitleStore) summaryKey(titleID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: s.bucketKey(titleID)},
		AttrSK: &types.AttributeValueMemberS{Value: titleID},
	}
}

func encodeSummary(pk string, sum projections.TitleSummary) (summaryRow, error) {
	row := summaryRow{PK: pk, SK: sum.TitleID, Counts: map[string]map[string]int64{}, Last: sum.LastVoteAt, Cells: map[string]int64{}, Rev: sum.Rev, FlushRev: sum.FlushRev}
	for _, t := range []struct {
		trend projections.Trend
		to    **string
	}{{sum.Pending, &row.Pending}, {sum.Flush, &row.Flush}} {
		if len(t.trend) == 0 {
			continue
		}
		enc, err := encodeTrend(t.trend)
		if err != nil {
			return row, err
		}
		*t.to = &enc
	}
	for a, m := range sum.Counts.Compact() {
		row.Counts[a] = m
	}
	for shard, v := range sum.Cells {
		row.Cells[strconv.Itoa(shard)] = v
	}
	return row, nil
}

func decodeSummary(row summaryRow) (projections.TitleSummary, error) {
	sum := projections.TitleSummary{TitleID: row.SK, Counts: projections.Counts{}, LastVoteAt: row.Last, Cells: map[int]int64{}, Rev: row.Rev, FlushRev: row.FlushRev}
	for _, t := range []struct {
		enc *string
		to  *projections.Trend
	}{{row.Pending, &sum.Pending}, {row.Flush, &sum.Flush}} {
		if t.enc == nil {
			continue
		}
		trend, err := decodeTrend(strings.Split(*t.enc, redoField))
		if err != nil {
			return sum, fmt.Errorf("title %s: %w", row.SK, err)
		}
		*t.to = trend
	}
	for a, m := range row.Counts {
		for c, n := range m {
			sum.Counts.Add(a, c, n)
		}
	}
	for k, v := range row.Cells {
		if shard, err := strconv.Atoi(k); err == nil {
			sum.Cells[shard] = v
		}
	}
	return sum, nil
}

// Get reads titleID's summary, strongly consistent.
func (s *TitleStore) Get(ctx context.Context, titleID string) (projections.TitleSummary, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.summaryKey(titleID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return projections.TitleSummary{}, false, fmt.Errorf("dynamodb: read title %s: %w", titleID, err)
	}
	if out.Item == nil {
		return projections.TitleSummary{TitleID: titleID, Counts: projections.Counts{}, Cells: map[int]int64{}}, false, nil
	}
	var row summaryRow
	if err := attributevalue.UnmarshalMap(out.Item, &row); err != nil {
		return projections.TitleSummary{}, false, fmt.Errorf("dynamodb: decode title %s: %w", titleID, err)
	}
	sum, err := decodeSummary(row)
	if err != nil {
		return sum, false, fmt.Errorf("dynamodb: decode %w", err)
	}
	return sum, true, nil
}

// Put writes sum as revision sum.Rev on condition that the stored one is at
// sum.Rev-1 (absent for revision 1). A failed condition is read back: the
// same summary stored means an earlier try of this call was applied.
func (s *TitleStore) Put(ctx context.Context, sum projections.TitleSummary) error {
	row, err := encodeSummary(s.bucketKey(sum.TitleID), sum)
	if err != nil {
		return fmt.Errorf("dynamodb: encode title %s: %w", sum.TitleID, err)
	}
	item, err := attributevalue.MarshalMap(row)
	if err != nil {
		return fmt.Errorf("dynamodb: encode title %s: %w", sum.TitleID, err)
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item,
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK}}
	if sum.Rev <= 1 {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk)")
	} else {
		in.ConditionExpression = aws.String("#rev = :prev")
		in.ExpressionAttributeNames = map[string]string{"#rev": "rev"}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":prev": &types.AttributeValueMemberN{Value: strconv.FormatInt(sum.Rev-1, 10)}}
	}
	_, err = s.client.PutItem(ctx, in)
	if err == nil {
		return nil
	}
	if !conditionFailed(err) {
		return fmt.Errorf("dynamodb: write title %s: %w", sum.TitleID, err)
	}
	stored, found, err := s.Get(ctx, sum.TitleID)
	if err != nil {
		return err
	}
	if found && stored.Rev == sum.Rev && stored.LastVoteAt == sum.LastVoteAt && stored.Counts.Equal(sum.Counts) && sameCells(stored.Cells, sum.Cells) && stored.SameTrendState(sum) {
		return nil
	}
	return fmt.Errorf("dynamodb: write title %s at revision %d: %w", sum.TitleID, sum.Rev, projections.ErrStale)
}

func sameCells(a, b map[int]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// All lists every summary of the version: one query per bucket,
// eventually consistent.
func (s *TitleStore) All(ctx context.Context) ([]projections.TitleSummary, error) {
	var out []projections.TitleSummary
	for b := range titleBuckets {
		p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String("#pk = :pk"),
			ExpressionAttributeNames:  map[string]string{"#pk": AttrPK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: s.bucketPK(b)}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: list titles: %w", err)
			}
			for _, item := range page.Items {
				var row summaryRow
				if err := attributevalue.UnmarshalMap(item, &row); err != nil {
					return nil, fmt.Errorf("dynamodb: decode title: %w", err)
				}
				sum, err := decodeSummary(row)
				if err != nil {
					return nil, fmt.Errorf("dynamodb: decode %w", err)
				}
				out = append(out, sum)
			}
		}
	}
	return out, nil
}

type pageRow struct {
	PK     string     `dynamodbav:"pk"`
	SK     string     `dynamodbav:"sk"`
	Gen    int64      `dynamodbav:"gen"`
	Titles []rankedAt `dynamodbav:"titles"`
}

// rankedAt is a ranked title, kept short: a page holds a hundred.
type rankedAt struct {
	ID     string                      `dynamodbav:"i"`
	Counts map[string]map[string]int64 `dynamodbav:"c"`
	Last   int64                       `dynamodbav:"l"`
}

func (s *TitleStore) pageKey(key projections.RankingKey, number int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: versionPrefix(s.version) + "r" + keySep + key.String()},
		AttrSK: &types.AttributeValueMemberS{Value: fmt.Sprintf("%06d", number)},
	}
}

// Page reads a ranking page, eventually consistent.
func (s *TitleStore) Page(ctx context.Context, key projections.RankingKey, number int) (projections.RankingPage, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.pageKey(key, number)})
	if err != nil {
		return projections.RankingPage{}, false, fmt.Errorf("dynamodb: read ranking %s page %d: %w", key, number, err)
	}
	if out.Item == nil {
		return projections.RankingPage{}, false, nil
	}
	var row pageRow
	if err := attributevalue.UnmarshalMap(out.Item, &row); err != nil {
		return projections.RankingPage{}, false, fmt.Errorf("dynamodb: decode ranking %s page %d: %w", key, number, err)
	}
	p := projections.RankingPage{Key: key, Number: number, Generation: row.Gen}
	for _, r := range row.Titles {
		sum := projections.TitleSummary{TitleID: r.ID, Counts: projections.Counts{}, LastVoteAt: r.Last}
		for a, m := range r.Counts {
			for c, n := range m {
				sum.Counts.Add(a, c, n)
			}
		}
		p.Titles = append(p.Titles, sum)
	}
	return p, true, nil
}

// PutPages writes each page with a PutItem of its own.
func (s *TitleStore) PutPages(ctx context.Context, pages []projections.RankingPage) error {
	for _, p := range pages {
		key := s.pageKey(p.Key, p.Number)
		row := pageRow{
			PK:  key[AttrPK].(*types.AttributeValueMemberS).Value,
			SK:  key[AttrSK].(*types.AttributeValueMemberS).Value,
			Gen: p.Generation, Titles: make([]rankedAt, 0, len(p.Titles)),
		}
		for _, t := range p.Titles {
			row.Titles = append(row.Titles, rankedAt{ID: t.TitleID, Counts: t.Counts.Compact(), Last: t.LastVoteAt})
		}
		item, err := attributevalue.MarshalMap(row)
		if err != nil {
			return fmt.Errorf("dynamodb: encode ranking %s page %d: %w", p.Key, p.Number, err)
		}
		if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
			return fmt.Errorf("dynamodb: write ranking %s page %d: %w", p.Key, p.Number, err)
		}
	}
	return nil
}

// deleteTitles deletes every title summary and ranking page of version
// from the titles table (a scan filtered by the version's prefix), telling
// progress how many each batch deleted.
func deleteTitles(ctx context.Context, client *dynamodb.Client, table, version string, progress func(int)) (int64, error) {
	var deleted int64
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{
		TableName:                 aws.String(table),
		FilterExpression:          aws.String("begins_with(#pk, :prefix)"),
		ProjectionExpression:      aws.String("#pk, #sk"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":prefix": &types.AttributeValueMemberS{Value: versionPrefix(version)}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return deleted, fmt.Errorf("dynamodb: scan %s: %w", table, err)
		}
		n, err := deleteItems(ctx, client, table, page.Items)
		deleted += int64(n)
		if progress != nil {
			progress(n)
		}
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}
