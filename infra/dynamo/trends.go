package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/projections"
)

// A title's trend items live in the titles table under
// <version>#t#<title>, sort key the level and the span's start (Unix
// minutes, ten digits): m0029612345, h0029612340. Numbers are
// c_<aspect>_<choice> (votes cast), d_<aspect>_<choice> (tally change),
// and f (the revision of the last title summary flush counted).
const (
	trendCastPrefix  = "c_"
	trendTallyPrefix = "d_"
	trendFlushAttr   = "f"
)

var (
	_ projections.TrendStore  = (*TitleStore)(nil)
	_ projections.TrendReader = (*TitleStore)(nil)
)

// placeholder is an expression attribute name or value placeholder of
// fixed width: none is a prefix of another, since the emulator puts names
// and values in by plain text replacement (kumo's storage.go and
// condition.go), where #n1 would also replace the start of #n10.
func placeholder(prefix string, i int) string {
	return fmt.Sprintf("%s%03d", prefix, i)
}

func (s *TitleStore) trendPK(titleID string) string {
	return versionPrefix(s.version) + "t" + keySep + titleID
}

func trendSK(level projections.Level, start int64) string {
	return fmt.Sprintf("%c%010d", level, start)
}

func (s *TitleStore) trendKey(titleID string, span projections.Span) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: s.trendPK(titleID)},
		AttrSK: &types.AttributeValueMemberS{Value: trendSK(span.Level, span.Start)},
	}
}

// AddTrend adds add to the item of span and makes rev its flush
// revision, in one UpdateItem on condition that its flush revision is
// below rev.
func (s *TitleStore) AddTrend(ctx context.Context, titleID string, span projections.Span, add projections.Trend, rev int64) error {
	names := map[string]string{"#f": trendFlushAttr}
	num := func(n int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
	}
	values := map[string]types.AttributeValue{":f": num(rev)}
	var adds []string
	i := 0
	for k, c := range add {
		for _, x := range []struct {
			prefix string
			n      int64
		}{{trendCastPrefix, c.Cast}, {trendTallyPrefix, c.Tally}} {
			if x.n == 0 {
				continue
			}
			nk, vk := placeholder("#n", i), placeholder(":n", i)
			names[nk], values[vk] = x.prefix+k.Aspect+"_"+k.Choice, num(x.n)
			adds = append(adds, nk+" "+vk)
			i++
		}
	}
	expr := "SET #f = :f"
	if len(adds) > 0 {
		expr = "ADD " + strings.Join(adds, ", ") + " " + expr
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       s.trendKey(titleID, span),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("attribute_not_exists(#f) OR #f < :f"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if conditionFailed(err) {
		return fmt.Errorf("dynamodb: trend of %s at %c%d: %w", titleID, span.Level, span.Start, projections.ErrStale)
	}
	if err != nil {
		return fmt.Errorf("dynamodb: trend of %s at %c%d: %w", titleID, span.Level, span.Start, err)
	}
	return nil
}

// TrendRange queries the items of level starting in [start, end),
// strongly consistent, in time order.
func (s *TitleStore) TrendRange(ctx context.Context, titleID string, level projections.Level, start, end int64) ([]projections.TrendItem, error) {
	if end <= start {
		return nil, nil
	}
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :from AND :to"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   &types.AttributeValueMemberS{Value: s.trendPK(titleID)},
			":from": &types.AttributeValueMemberS{Value: trendSK(level, start)},
			":to":   &types.AttributeValueMemberS{Value: trendSK(level, end-1)},
		},
		ConsistentRead: aws.Bool(true),
	})
	var out []projections.TrendItem
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("dynamodb: read trend of %s: %w", titleID, err)
		}
		for _, item := range page.Items {
			sk, _ := item[AttrSK].(*types.AttributeValueMemberS)
			if sk == nil || len(sk.Value) < 2 {
				continue
			}
			n, err := strconv.ParseInt(sk.Value[1:], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: trend of %s: sort key %q: %w", titleID, sk.Value, err)
			}
			out = append(out, decodeTrendItem(projections.Span{Level: level, Start: n}, item))
		}
	}
	return out, nil
}

func decodeTrendItem(span projections.Span, item map[string]types.AttributeValue) projections.TrendItem {
	it := projections.TrendItem{Span: span, Counts: projections.Trend{}}
	for name, av := range item {
		n, ok := av.(*types.AttributeValueMemberN)
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, trendCastPrefix), strings.HasPrefix(name, trendTallyPrefix):
			aspect, choice, ok := strings.Cut(name[2:], "_")
			if !ok {
				continue
			}
			k := projections.TrendKey{Minute: span.Start, Aspect: aspect, Choice: choice}
			c := it.Counts[k]
			if name[0] == trendCastPrefix[0] {
				c.Cast = v
			} else {
				c.Tally = v
			}
			it.Counts[k] = c
		case name == trendFlushAttr:
			it.Flush = v
		}
	}
	return it
}
