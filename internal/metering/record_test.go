package metering

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TestRecordBillsEachKindOfCall covers the calls the emulator test does not
// make: updates, transactions with updates, deletes and condition checks,
// batch writes, scans and queries (eventually and strongly consistent),
// batch reads with keys left unprocessed, and SQS batches and receives.
func TestRecordBillsEachKindOfCall(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	key := map[string]types.AttributeValue{"pk": s("a")}                        // 3 bytes
	big := map[string]types.AttributeValue{"pk": s(strings.Repeat("x", 2998))}  // 3000 bytes
	huge := map[string]types.AttributeValue{"pk": s(strings.Repeat("x", 4998))} // 5000 bytes: 2 read units
	t3 := aws.String("t")
	for _, c := range []struct {
		name     string
		service  string
		in, out  any
		wcu, rcu float64
		sqsUnits int64
		hottest  string
	}{
		{name: "update", service: "DynamoDB", in: &dynamodb.UpdateItemInput{TableName: t3, Key: key,
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: "1"}}},
			wcu: 1, hottest: "t a"},
		{name: "transaction", service: "DynamoDB", in: &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{TableName: t3, Key: key}},
			{Delete: &types.Delete{TableName: t3, Key: key}},
			{ConditionCheck: &types.ConditionCheck{TableName: t3, Key: key}},
		}}, wcu: 4, rcu: 2, hottest: "t a"},
		{name: "batch write", service: "DynamoDB", in: &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"t": {{PutRequest: &types.PutRequest{Item: key}}, {DeleteRequest: &types.DeleteRequest{Key: key}}},
		}}, wcu: 2, hottest: "t a"},
		{name: "scan", service: "DynamoDB", in: &dynamodb.ScanInput{TableName: t3},
			out: &dynamodb.ScanOutput{Items: []map[string]types.AttributeValue{big, big}}, rcu: 1},
		{name: "consistent scan", service: "DynamoDB", in: &dynamodb.ScanInput{TableName: t3, ConsistentRead: aws.Bool(true)},
			out: &dynamodb.ScanOutput{Items: []map[string]types.AttributeValue{big, big}}, rcu: 2},
		{name: "query, nothing found", service: "DynamoDB", in: &dynamodb.QueryInput{TableName: t3}, out: &dynamodb.QueryOutput{}, rcu: 0.5},
		{name: "consistent query", service: "DynamoDB", in: &dynamodb.QueryInput{TableName: t3, ConsistentRead: aws.Bool(true)},
			out: &dynamodb.QueryOutput{Items: []map[string]types.AttributeValue{big}}, rcu: 1},
		{name: "failed get", service: "DynamoDB", in: &dynamodb.GetItemInput{TableName: t3, Key: key}, rcu: 0.5},
		{name: "batch get, one found, one missing, one unprocessed", service: "DynamoDB",
			in: &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				"t": {Keys: []map[string]types.AttributeValue{key, key, key}, ConsistentRead: aws.Bool(true)}}},
			out: &dynamodb.BatchGetItemOutput{
				Responses:       map[string][]map[string]types.AttributeValue{"t": {huge}},
				UnprocessedKeys: map[string]types.KeysAndAttributes{"t": {Keys: []map[string]types.AttributeValue{key}}}},
			rcu: 3},
		{name: "other DynamoDB call", service: "DynamoDB", in: &dynamodb.DescribeTableInput{TableName: t3}},
		{name: "send batch", service: "SQS", in: &sqs.SendMessageBatchInput{Entries: []sqstypes.SendMessageBatchRequestEntry{
			{MessageBody: aws.String(strings.Repeat("m", 40<<10))}, {MessageBody: aws.String(strings.Repeat("m", 40<<10))}}}, sqsUnits: 2},
		{name: "receive", service: "SQS", in: &sqs.ReceiveMessageInput{},
			out: &sqs.ReceiveMessageOutput{Messages: []sqstypes.Message{{Body: aws.String("hello")}}}, sqsUnits: 1},
		{name: "empty receive", service: "SQS", in: &sqs.ReceiveMessageInput{}, out: &sqs.ReceiveMessageOutput{}, sqsUnits: 1},
		{name: "other SQS call", service: "SQS", in: &sqs.GetQueueUrlInput{}, sqsUnits: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := New(map[string]string{"t": "pk"})
			m.record(c.service, "Call", c.in, c.out)
			got := m.Snapshot()
			if got.WCU != c.wcu || got.RCU != c.rcu || got.SQSUnits != c.sqsUnits || got.HottestKey != c.hottest || got.Total() != 1 {
				t.Errorf("got %s, hottest %q; want %v WCU, %v RCU, %d SQS units, hottest %q", got, got.HottestKey, c.wcu, c.rcu, c.sqsUnits, c.hottest)
			}
		})
	}
}

// TestWritesByTable: write units are counted by the table each write
// names, transactions and batch writes item by item, they add up to the
// total, and requests add up by service.
func TestWritesByTable(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	key := map[string]types.AttributeValue{"pk": s("a")}
	m := New(map[string]string{"events": "pk"})
	m.record("DynamoDB", "PutItem", &dynamodb.PutItemInput{TableName: aws.String("events"), Item: key}, nil)
	m.record("DynamoDB", "TransactWriteItems", &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{TableName: aws.String("tallies"), Key: key}},
		{Put: &types.Put{TableName: aws.String("ballots"), Item: key}},
	}}, nil)
	m.record("DynamoDB", "BatchWriteItem", &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
		"ballots": {{PutRequest: &types.PutRequest{Item: key}}},
		"tallies": {{DeleteRequest: &types.DeleteRequest{Key: key}}},
	}}, nil)
	m.record("DynamoDB Streams", "GetRecords", &struct{}{}, nil)
	m.record("SQS", "SendMessage", &sqs.SendMessageInput{MessageBody: aws.String("m")}, nil)
	got := m.Snapshot()
	want := map[string]float64{"events": 1, "tallies": 3, "ballots": 3}
	if len(got.TableWCU) != len(want) || got.WCU != 7 {
		t.Fatalf("write units by table %v (total %v), want %v (total 7)", got.TableWCU, got.WCU, want)
	}
	for table, w := range want {
		if got.TableWCU[table] != w {
			t.Errorf("table %s: %v write units, want %v", table, got.TableWCU[table], w)
		}
	}
	services := got.Services()
	if services["DynamoDB"] != 3 || services["DynamoDB Streams"] != 1 || services["SQS"] != 1 || len(services) != 3 {
		t.Errorf("requests by service %v, want DynamoDB 3, DynamoDB Streams 1, SQS 1", services)
	}
}

// TestUpdateBilledOnTheLargerItem: DynamoDB bills an update on the larger
// of the item before and after it, so a small update of an item a large
// one left costs what the large one does.
func TestUpdateBilledOnTheLargerItem(t *testing.T) {
	m := New(nil)
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}
	other := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "b"}}
	update := func(key map[string]types.AttributeValue, size int) {
		m.record("DynamoDB", "UpdateItem", &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key,
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: strings.Repeat("x", size)}}}, nil)
	}
	update(key, 3000) // 3 units
	update(key, 10)   // the item before held 3 KB: 3 units
	update(key, 10)   // both small: 1 unit
	update(other, 10) // another item: 1 unit
	if got := m.Snapshot().WCU; got != 8 {
		t.Fatalf("write units %v, want 8 (3 + 3 + 1 + 1)", got)
	}
}
