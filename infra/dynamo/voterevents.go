package dynamo

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
)

// VoterEvents reads every vote a voter cast on a title, in the order they
// were received (ties by vote ID). They are stored under the partition key
// of the voter's tally cell, so this is one query of that partition,
// filtered on the voter, with strongly consistent reads.
func (s *EventStore) VoterEvents(ctx context.Context, titleID, voterID string) ([]domain.VoteCast, error) {
	cell := domain.CellOf(titleID, voterID).String()
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#c = :c"),
		FilterExpression:          aws.String("#v = :v"),
		ExpressionAttributeNames:  map[string]string{"#c": AttrCell, "#v": AttrVoterID},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: cell}, ":v": &types.AttributeValueMemberS{Value: voterID}},
		ConsistentRead:            aws.Bool(true),
	})
	var out []domain.VoteCast
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("dynamodb: query events of cell %s: %w", cell, err)
		}
		for _, item := range page.Items {
			votes, err := DecodeEvent(item)
			if err != nil {
				return nil, fmt.Errorf("dynamodb: event in cell %s: %w", cell, err)
			}
			for _, v := range votes {
				if v.TitleID == titleID { // a cell's key names its title; checked all the same
					out = append(out, v)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b domain.VoteCast) int {
		switch {
		case a.After(b):
			return 1
		case b.After(a):
			return -1
		}
		return 0
	})
	return out, nil
}
