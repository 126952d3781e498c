package queue_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"votes/infra/queue"
	"votes/internal/kumotest"
)

// TestUnrepairedCountsEveryFailureNotYetRepaired: a failure counts while it
// waits, while a repairer holds it, while it is delayed, and once it is in
// the repair dead-letter queue; only deleting it (repaired) takes it off.
func TestUnrepairedCountsEveryFailureNotYetRepaired(t *testing.T) {
	ctx := context.Background()
	cl := kumotest.Clients(t, nil)
	names := queue.NamesFor(kumotest.Stage(t))
	for _, n := range []string{names.Submissions, names.DeadLetters, names.ProjectorFailed, names.RepairFailed} {
		if _, err := cl.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	urls, err := queue.URLs(ctx, cl.SQS, names)
	if err != nil {
		t.Fatal(err)
	}
	r := queue.NewRepairs(cl.SQS, urls[names.ProjectorFailed], urls[names.RepairFailed])
	count := func(want int) {
		t.Helper()
		if n, err := r.Unrepaired(ctx); err != nil || n != want {
			t.Fatalf("unrepaired %d, %v; want %d", n, err, want)
		}
	}
	send := func(url string, delay int32) {
		t.Helper()
		if _, err := cl.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("{}"), DelaySeconds: delay}); err != nil {
			t.Fatal(err)
		}
	}
	count(0)
	send(urls[names.ProjectorFailed], 0)
	send(urls[names.ProjectorFailed], 0)
	count(2)
	held, err := cl.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(urls[names.ProjectorFailed]), MaxNumberOfMessages: 1, VisibilityTimeout: 60})
	if err != nil || len(held.Messages) != 1 {
		t.Fatalf("receive: %v", err)
	}
	count(2) // one waiting, one being repaired
	send(urls[names.ProjectorFailed], 60)
	send(urls[names.RepairFailed], 0)
	count(4)
	if _, err := cl.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(urls[names.ProjectorFailed]), ReceiptHandle: held.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	count(3)

	// Looking at the repair dead letters takes nothing away; draining them
	// takes what the handler accepted.
	for range 2 {
		msgs, err := queue.Peek(ctx, cl.SQS, urls[names.RepairFailed], 10)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("peek: %d messages, %v", len(msgs), err)
		}
	}
	done, failed, err := queue.Drain(ctx, cl.SQS, urls[names.RepairFailed], 30, 10, func(queue.Message) error { return nil })
	if err != nil || done != 1 || failed != 0 {
		t.Fatalf("drain: %d done, %d failed, %v", done, failed, err)
	}
	count(2)
}
