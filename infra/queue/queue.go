// Package queue puts accepted submissions and dead letters on SQS queues
// with aws-sdk-go-v2.
package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"votes/domain"
)

// Names of the pipeline's queues for a stage, as serverless.yml names them.
type Names struct {
	Submissions     string
	DeadLetters     string
	ProjectorFailed string
	// RepairFailed holds the projector failures that the repairer could
	// not repair within the failure queue's maxReceiveCount.
	RepairFailed string
}

// NamesFor names the queues of a stage.
func NamesFor(stage string) Names {
	return Names{
		Submissions:     "votes-" + stage + "-submissions",
		DeadLetters:     "votes-" + stage + "-submissions-dlq",
		ProjectorFailed: "votes-" + stage + "-projector-failures",
		RepairFailed:    "votes-" + stage + "-repair-failed",
	}
}

// Submissions is the queue between the receiver and the processor.
type Submissions struct {
	client *sqs.Client
	url    string
}

// NewSubmissions sends to the queue at url.
func NewSubmissions(client *sqs.Client, url string) *Submissions {
	return &Submissions{client: client, url: url}
}

// Send puts the submission on the queue; when it returns nil, SQS has stored
// the message durably.
func (q *Submissions) Send(ctx context.Context, a domain.Accepted) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("sqs: encode submission %s: %w", a.SubmissionID, err)
	}
	if _, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(string(body))}); err != nil {
		return fmt.Errorf("sqs: send submission %s: %w", a.SubmissionID, err)
	}
	return nil
}

// DeadLetters is a queue of messages that cannot be processed, each with the
// reason and where it came from as message attributes.
type DeadLetters struct {
	client *sqs.Client
	url    string
	source string
}

// NewDeadLetters sends to the queue at url, naming source as the origin.
func NewDeadLetters(client *sqs.Client, url, source string) *DeadLetters {
	return &DeadLetters{client: client, url: url, source: source}
}

// Attribute names on dead letters.
const (
	AttrReason = "reason"
	AttrSource = "source"
)

// DeadLetter stores body with its reason.
func (q *DeadLetters) DeadLetter(ctx context.Context, body, reason string) error {
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	_, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(q.url),
		MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			AttrReason: {DataType: aws.String("String"), StringValue: aws.String(reason)},
			AttrSource: {DataType: aws.String("String"), StringValue: aws.String(q.source)},
		},
	})
	if err != nil {
		return fmt.Errorf("sqs: dead-letter from %s: %w", q.source, err)
	}
	return nil
}
