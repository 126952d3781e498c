// Package dynamo stores the pipeline's data in DynamoDB with aws-sdk-go-v2:
// the append-only event table, and the ballots and tally cells of a
// projection version.
package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names of the event table. Stream consumers decode the same names.
const (
	AttrCell         = "cell"   // partition key: title#shard
	AttrVoteID       = "voteId" // sort key
	AttrSchema       = "v"
	AttrSubmissionID = "submissionId"
	AttrVoterID      = "voterId"
	AttrTitleID      = "titleId"
	AttrAspect       = "aspect"
	AttrChoice       = "choice"
	AttrRecordedAt   = "recordedAt"
	AttrOccurredAt   = "occurredAt"
	AttrVotes        = "votes" // version 2: a submission's votes, "aspect=choice;aspect=choice"
)

// Key attribute of the ballot and tally tables.
const AttrPK = "pk"

// Tables names the pipeline's tables.
type Tables struct {
	Events  string
	Ballots string
	Tallies string
	Titles  string // the title index and rankings of each version
}

// TablesFor names the tables of a stage, as serverless.yml does.
func TablesFor(stage string) Tables {
	return Tables{
		Events:  "votes-" + stage + "-events",
		Ballots: "votes-" + stage + "-ballots",
		Tallies: "votes-" + stage + "-tallies",
		Titles:  "votes-" + stage + "-titles",
	}
}

// TableSpec is what the code needs of a table: its keys and stream. The
// local stack creates tables from it and a test holds serverless.yml to it.
type TableSpec struct {
	Name       string
	HashKey    string
	RangeKey   string // empty for none
	StreamView types.StreamViewType
}

// Specs lists the pipeline's tables.
func (t Tables) Specs() []TableSpec {
	return []TableSpec{
		{Name: t.Events, HashKey: AttrCell, RangeKey: AttrVoteID, StreamView: types.StreamViewTypeNewImage},
		{Name: t.Ballots, HashKey: AttrPK},
		{Name: t.Tallies, HashKey: AttrPK},
		{Name: t.Titles, HashKey: AttrPK, RangeKey: AttrSK},
	}
}

// CreateInput is the CreateTable call for the spec, billed on demand.
func (s TableSpec) CreateInput() *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(s.Name),
		BillingMode:          types.BillingModePayPerRequest,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(s.HashKey), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(s.HashKey), AttributeType: types.ScalarAttributeTypeS}},
	}
	if s.RangeKey != "" {
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(s.RangeKey), KeyType: types.KeyTypeRange})
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(s.RangeKey), AttributeType: types.ScalarAttributeTypeS})
	}
	if s.StreamView != "" {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: s.StreamView}
	}
	return in
}

// CheckTables fails with a clear error when one of the tables is missing.
func CheckTables(ctx context.Context, client *dynamodb.Client, t Tables) error {
	for _, name := range []string{t.Events, t.Ballots, t.Tallies, t.Titles} {
		if _, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
			var nf *types.ResourceNotFoundException
			if errors.As(err, &nf) {
				return fmt.Errorf("table %s does not exist: is the stage deployed, or votes dev running?", name)
			}
			return fmt.Errorf("dynamodb: describe table %s: %w", name, err)
		}
	}
	return nil
}

// ItemCount is DynamoDB's estimate of table's item count (refreshed about
// every six hours in AWS), or -1 when unknown.
func ItemCount(ctx context.Context, client *dynamodb.Client, table string) int64 {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil || out.Table.ItemCount == nil {
		return -1
	}
	return *out.Table.ItemCount
}
