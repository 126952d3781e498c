package metering_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"votes/infra/awscfg"
	"votes/internal/kumotest"
	"votes/internal/metering"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// TestMeterCountsBillableUnits checks the arithmetic the cost figures rest
// on, with calls made by the real SDK to kumo.
func TestMeterCountsBillableUnits(t *testing.T) {
	ctx := context.Background()
	stage := kumotest.Stage(t)
	table := "meter-" + stage
	meter := metering.New(map[string]string{table: "pk"})
	opts := kumotest.Options(nil)
	opts.APIOptions = []func(*middleware.Stack) error{meter.APIOption}
	c, err := awscfg.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DynamoDB.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table), BillingMode: types.BillingModePayPerRequest,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
	}); err != nil {
		t.Fatal(err)
	}
	meter.Reset()
	small := map[string]types.AttributeValue{"pk": s("hot"), "v": s("x")}
	big := map[string]types.AttributeValue{"pk": s("cold"), "v": s(strings.Repeat("x", 1500))} // 2 write units, 1 read unit
	for _, item := range []map[string]types.AttributeValue{small, small, big} {
		if _, err := c.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DynamoDB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{"pk": s("t1")}}},
		{Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{"pk": s("t2")}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": s("cold")}, ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": s("hot")}}); err != nil {
		t.Fatal(err)
	}
	// A batch of one item found and two not: each costs the minimum read.
	if _, err := c.DynamoDB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		table: {Keys: []map[string]types.AttributeValue{{"pk": s("hot")}, {"pk": s("none-1")}, {"pk": s("none-2")}}},
	}}); err != nil {
		t.Fatal(err)
	}
	q, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(strings.Repeat("m", 70<<10))}); err != nil {
		t.Fatal(err)
	}

	got := meter.Snapshot()
	// Puts: 1 + 1 + 2; the transaction: 2 items x 2.
	if got.WCU != 8 {
		t.Errorf("write units %v, want 8", got.WCU)
	}
	// A consistent read of a 1.5 KB item: 1; an eventually consistent one:
	// 0.5; the batch: 3 x 0.5.
	if got.RCU != 3 {
		t.Errorf("read units %v, want 3", got.RCU)
	}
	// CreateQueue: 1; a 70 KiB message: 2 chunks of 64 KiB.
	if got.SQSUnits != 3 {
		t.Errorf("SQS units %d, want 3", got.SQSUnits)
	}
	if got.HottestKey != table+" cold" || got.HottestWCU != 2 {
		t.Errorf("hottest key %q with %v units, want the big item's key with 2", got.HottestKey, got.HottestWCU)
	}
	if got.Requests["DynamoDB PutItem"] != 3 || got.Requests["SQS SendMessage"] != 1 {
		t.Errorf("requests %v", got.Requests)
	}
	bill := metering.ListPrices.Price(got, 1000, map[string]metering.Lambda{"f": {Invocations: 1000, GBSeconds: 100}})
	wantLambda := 1000*0.20/1e6 + 100*0.0000133334
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	if !near(bill.APIGateway, 1000*1.00/1e6) || !near(bill.Lambda, wantLambda) || !near(bill.SQS, 3*0.40/1e6) || !near(bill.DynamoDB, 8*0.625/1e6+3*0.125/1e6) {
		t.Errorf("bill %+v", bill)
	}
}
