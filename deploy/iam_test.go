package deploy

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/infra/functions"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/internal/loadgen"
	"votes/internal/metering"
)

// iamAction turns a metered "Service Action" into its IAM action. SQS
// authorises a batch call by its single action (DeleteMessageBatch needs
// sqs:DeleteMessage).
func iamAction(call string) string {
	i := strings.LastIndex(call, " ")
	service, action := call[:i], call[i+1:]
	switch service {
	case "DynamoDB", "DynamoDB Streams":
		return "dynamodb:" + action
	case "SQS":
		return "sqs:" + strings.TrimSuffix(action, "Batch")
	}
	return strings.ToLower(service) + ":" + action
}

// TestRolesAllowEveryCallTheFunctionsMake runs the pipeline locally with a
// meter on each function's own clients (its event-source mapping's calls
// included, as AWS makes them with the function's role), through the paths
// that only failures take (lost answers make conditional writes re-read,
// poison messages and records go to their queues), and requires every call
// to be allowed by the function's role in the packaged CloudFormation.
func TestRolesAllowEveryCallTheFunctionsMake(t *testing.T) {
	meters := map[string]*metering.Meter{}
	for _, fn := range functions.Names() {
		meters[fn] = metering.New(nil)
	}
	flaky := faults.New(11)
	settings := local.FastSettings()
	opts := kumotest.Options(nil)
	s, err := local.Start(context.Background(), local.Config{
		Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: settings,
		Faults: flaky,
		FunctionAPIOptions: func(fn string) []func(*middleware.Stack) error {
			return []func(*middleware.Stack) error{meters[fn].APIOption}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	// The stream's mapping waits until the repairer has read the batch
	// described below back: once projected, records leave the local
	// stream log.
	s.HoldStream()
	// Answers lost after DynamoDB applied a write: the retries find their
	// own writes and read them back.
	flaky.Set(0, 0.2, func(target, _ string) bool {
		return faults.Action(target, "PutItem", "UpdateItem", "TransactWriteItems")
	})
	if _, err := loadgen.Run(context.Background(), loadgen.Config{
		URL: s.URL, Count: 200, Concurrency: 8, Voters: 20, Titles: 3, Skew: "uniform", Aspects: 2, ChangeShare: 0.3, RetryShare: 0.1, Run: "iam",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Admin.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURLs[s.Queues.Submissions]), MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Admin.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(s.Tables.Events), Item: map[string]types.AttributeValue{
		dynamo.AttrCell: &types.AttributeValueMemberS{Value: "x#00"}, dynamo.AttrVoteID: &types.AttributeValueMemberS{Value: "broken"},
	}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		n, err := s.QueueDepth(ctx, s.Queues.Submissions)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A stream batch given up on, as Lambda describes it on the failure
	// queue: the repairer reads its range back and projects it. (The
	// broken record above reaches the repairer too, which dead-letters it.)
	sendOnFailure(t, s)
	if err := s.WaitRepaired(ctx); err != nil {
		t.Fatal(err)
	}
	s.ReleaseStream()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitRepaired(ctx); err != nil {
		t.Fatal(err)
	}
	flaky.Off()
	for _, path := range []string{"/titles/load-iam-0/tallies", "/titles", "/", "/healthz"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if flaky.FailedAfter.Load() == 0 {
		t.Fatal("no answer was lost: the re-read paths were not exercised")
	}

	res := resources(template(t, "prod", prodParams...))
	for _, fn := range functions.Names() {
		allowed := map[string]bool{}
		for _, pol := range props(res[title(fn)+"Role"])["Policies"].([]any) {
			for _, st := range pol.(cfn)["PolicyDocument"].(cfn)["Statement"].([]any) {
				for _, a := range st.(cfn)["Action"].([]any) {
					allowed[a.(string)] = true
				}
			}
		}
		calls := meters[fn].Snapshot()
		var used []string
		for _, call := range calls.Actions() {
			action := iamAction(call)
			used = append(used, action)
			if !allowed[action] {
				t.Errorf("%s calls %s (%d times), which its role does not allow", fn, action, calls.Requests[call])
			}
		}
		slices.Sort(used)
		t.Logf("%s called %s", fn, strings.Join(used, ", "))
		if len(used) == 0 {
			t.Errorf("%s made no calls: the test exercised nothing", fn)
		}
	}
}

// sendOnFailure puts on the failure queue the OnFailure record of a batch
// made of the first ten records of the event stream's first shard.
func sendOnFailure(t *testing.T, s *local.Stack) {
	t.Helper()
	ctx := context.Background()
	desc, err := s.Admin.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.Tables.Events)})
	if err != nil {
		t.Fatal(err)
	}
	arn := desc.Table.LatestStreamArn
	sd, err := s.Admin.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	shard := sd.StreamDescription.Shards[0].ShardId
	it, err := s.Admin.Streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: arn, ShardId: shard, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Admin.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(10)})
	if err != nil || len(out.Records) == 0 {
		t.Fatalf("read the stream: %v, %d records", err, len(out.Records))
	}
	first, last := out.Records[0].Dynamodb, out.Records[len(out.Records)-1].Dynamodb
	body, _ := json.Marshal(map[string]any{"DDBStreamBatchInfo": map[string]any{
		"shardId": aws.ToString(shard), "streamArn": aws.ToString(arn), "batchSize": len(out.Records),
		"startSequenceNumber": aws.ToString(first.SequenceNumber), "endSequenceNumber": aws.ToString(last.SequenceNumber),
		"approximateArrivalOfFirstRecord": aws.ToTime(first.ApproximateCreationDateTime).Format(time.RFC3339),
		"approximateArrivalOfLastRecord":  aws.ToTime(last.ApproximateCreationDateTime).Format(time.RFC3339),
	}})
	if _, err := s.Admin.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURLs[s.Queues.ProjectorFailed]), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
}
