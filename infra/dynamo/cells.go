package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/projections"
)

// Attributes of a tally cell item besides its key.
const (
	attrStepID     = "stepId"
	attrStepVoters = "stepVoters"
	attrStepOwner  = "stepOwner"
	attrStepExpiry = "stepExpires"
	attrLastStep   = "lastStep" // the last step the cell finished; step IDs only increase
	countPrefix    = "n_"       // n_<aspect>_<choice>
)

// CellStore keeps the tally cells of one projection version: one item per
// title and shard, holding counts as n_<aspect>_<choice> numbers and the
// projection step in flight, if any.
type CellStore struct {
	client  *dynamodb.Client
	table   string
	version string
}

var _ projections.Cells = (*CellStore)(nil)

// NewCellStore keeps the cells of projection version in table.
func NewCellStore(client *dynamodb.Client, table, version string) *CellStore {
	return &CellStore{client: client, table: table, version: version}
}

func (s *CellStore) key(c domain.Cell) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: versionPrefix(s.version) + c.String()}}
}

// Begin records step as in flight on cell unless another step is.
func (s *CellStore) Begin(ctx context.Context, cell domain.Cell, step projections.Step) (*projections.Step, error) {
	voters := make([]types.AttributeValue, len(step.Voters))
	for i, v := range step.Voters {
		voters[i] = &types.AttributeValueMemberS{Value: v}
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              s.key(cell),
		UpdateExpression: aws.String("SET #sid = :sid, #sv = :sv, #so = :so, #se = :se, #title = :title, #shard = :shard"),
		// A step not newer than the last finished one is refused, so that
		// a Begin landing late (the SDK retrying a call whose first try was
		// applied, after another writer took the step over and finished
		// it) cannot put a finished step back in flight.
		ConditionExpression: aws.String("attribute_not_exists(#sid) AND (attribute_not_exists(#last) OR #last < :sid)"),
		ExpressionAttributeNames: map[string]string{
			"#sid": attrStepID, "#sv": attrStepVoters, "#so": attrStepOwner, "#se": attrStepExpiry, "#title": AttrTitleID, "#shard": "shard",
			"#last": attrLastStep,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":sid":   &types.AttributeValueMemberS{Value: step.ID},
			":sv":    &types.AttributeValueMemberL{Value: voters},
			":so":    &types.AttributeValueMemberS{Value: step.Owner},
			":se":    &types.AttributeValueMemberN{Value: strconv.FormatInt(step.Expires, 10)},
			":title": &types.AttributeValueMemberS{Value: cell.TitleID},
			":shard": &types.AttributeValueMemberN{Value: strconv.Itoa(cell.Shard)},
		},
	})
	if err == nil {
		return nil, nil
	}
	if !conditionFailed(err) {
		return nil, fmt.Errorf("dynamodb: begin step on cell %s: %w", cell, err)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.key(cell), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("dynamodb: read cell %s: %w", cell, err)
	}
	inflight := projections.Step{}
	if v, ok := out.Item[attrStepID].(*types.AttributeValueMemberS); ok {
		inflight.ID = v.Value
	}
	if v, ok := out.Item[attrStepOwner].(*types.AttributeValueMemberS); ok {
		inflight.Owner = v.Value
	}
	if v, ok := out.Item[attrStepExpiry].(*types.AttributeValueMemberN); ok {
		inflight.Expires, _ = strconv.ParseInt(v.Value, 10, 64)
	}
	if l, ok := out.Item[attrStepVoters].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				inflight.Voters = append(inflight.Voters, s.Value)
			}
		}
	}
	if inflight.ID == step.ID {
		return nil, nil // an earlier try of this call was applied
	}
	if inflight.ID != "" {
		return &inflight, nil
	}
	if last, ok := out.Item[attrLastStep].(*types.AttributeValueMemberS); ok && last.Value >= step.ID {
		return nil, &projections.StepOrderError{Cell: cell, Last: last.Value}
	}
	// Committed between the two calls: begin again.
	return s.Begin(ctx, cell, step)
}

// Commit adds delta and clears stepID in one conditional update.
func (s *CellStore) Commit(ctx context.Context, cell domain.Cell, stepID string, delta projections.Counts) error {
	names := map[string]string{"#sid": attrStepID, "#sv": attrStepVoters, "#so": attrStepOwner, "#se": attrStepExpiry, "#last": attrLastStep}
	values := map[string]types.AttributeValue{":sid": &types.AttributeValueMemberS{Value: stepID}}
	var adds []string
	i := 0
	for aspect, m := range delta {
		for choice, n := range m {
			if n == 0 {
				continue
			}
			nk, vk := fmt.Sprintf("#n%d", i), fmt.Sprintf(":n%d", i)
			names[nk] = countPrefix + aspect + "_" + choice
			values[vk] = &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
			adds = append(adds, nk+" "+vk)
			i++
		}
	}
	expr := "SET #last = :sid REMOVE #sid, #sv, #so, #se"
	if len(adds) > 0 {
		expr = "ADD " + strings.Join(adds, ", ") + " " + expr
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       s.key(cell),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("#sid = :sid"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err == nil || conditionFailed(err) {
		return nil // a failed condition: this step was committed already
	}
	return fmt.Errorf("dynamodb: commit step %s on cell %s: %w", stepID, cell, err)
}

// Tally sums a title's cells with eventually consistent reads.
func (s *CellStore) Tally(ctx context.Context, titleID string) (projections.Counts, error) {
	keys := make([]map[string]types.AttributeValue, domain.TallyShards)
	for i := range keys {
		keys[i] = s.key(domain.Cell{TitleID: titleID, Shard: i})
	}
	items, err := batchGet(ctx, s.client, s.table, keys, false)
	if err != nil {
		return nil, fmt.Errorf("tally %s: %w", titleID, err)
	}
	return sumCells(items), nil
}

func sumCells(items []map[string]types.AttributeValue) projections.Counts {
	out := projections.Counts{}
	for _, item := range items {
		out.Merge(CellCounts(item))
	}
	return out.Compact()
}

// CellCounts reads the counts of one tally cell item.
func CellCounts(item map[string]types.AttributeValue) projections.Counts {
	out := projections.Counts{}
	{
		for name, av := range item {
			rest, ok := strings.CutPrefix(name, countPrefix)
			if !ok {
				continue
			}
			aspect, choice, ok := strings.Cut(rest, "_")
			n, isNum := av.(*types.AttributeValueMemberN)
			if !ok || !isNum {
				continue
			}
			v, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				continue
			}
			out.Add(aspect, choice, v)
		}
	}
	return out
}
