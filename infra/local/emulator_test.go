package local_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"votes/infra/awscfg"
	"votes/infra/local"
	"votes/internal/kumotest"
)

// TestEmulatorAddress: a stack asked for an emulator address serves
// DynamoDB and SQS there; the queue URLs it hands out, and those SQS
// itself answers with, name that address (kumo's own say localhost:4566),
// and work; a second stack asked for the same address is refused, saying
// it is the emulator's address that is taken.
func TestEmulatorAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stage := kumotest.Stage(t)
	ctx := context.Background()
	s, err := local.Start(ctx, local.Config{AWSAddr: addr, Stage: stage, Settings: local.FastSettings()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	if want := "http://" + addr; s.Endpoint != want {
		t.Fatalf("endpoint %s, want %s", s.Endpoint, want)
	}
	for name, url := range s.QueueURLs {
		if url != s.Endpoint+"/000000000000/"+name {
			t.Errorf("queue %s: URL %s does not name the emulator's address %s", name, url, s.Endpoint)
		}
	}

	c, err := awscfg.New(ctx, awscfg.Options{Endpoint: s.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.Tables.Events)}); err != nil {
		t.Errorf("DynamoDB at %s: %v", addr, err)
	}
	listed, err := c.SQS.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("votes-" + stage)})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed.QueueUrls) != len(s.QueueURLs) {
		t.Errorf("ListQueues at %s: %v, want the stack's %d queues", addr, listed.QueueUrls, len(s.QueueURLs))
	}
	for _, url := range listed.QueueUrls {
		if !strings.HasPrefix(url, s.Endpoint+"/") {
			t.Errorf("ListQueues at %s answers %s, not naming the address", addr, url)
		}
	}
	got, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(s.Queues.DeadLetters)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.QueueUrl) != s.QueueURLs[s.Queues.DeadLetters] {
		t.Errorf("GetQueueUrl answers %s, want %s", aws.ToString(got.QueueUrl), s.QueueURLs[s.Queues.DeadLetters])
	}
	if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: got.QueueUrl, MessageBody: aws.String(`{"x":1}`)}); err != nil {
		t.Fatalf("send to %s: %v", aws.ToString(got.QueueUrl), err)
	}
	if n, err := s.QueueDepth(ctx, s.Queues.DeadLetters); err != nil || n != 1 {
		t.Errorf("the message sent to the URL the address answered is not in the queue: depth %d, %v", n, err)
	}

	_, err = local.Start(ctx, local.Config{AWSAddr: addr, Stage: stage + "b", Settings: local.FastSettings()})
	var le *local.ListenError
	if !errors.As(err, &le) || le.Role != "emulator" || le.Addr != addr || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("a second stack on emulator address %s: %v, want the emulator's listen error, address in use", addr, err)
	}
}
