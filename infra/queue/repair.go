package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"votes/admin"
)

// URLs looks up the queue URLs of names, by name.
func URLs(ctx context.Context, client *sqs.Client, names Names) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range []string{names.Submissions, names.DeadLetters, names.ProjectorFailed, names.RepairFailed} {
		r, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(n)})
		if err != nil {
			var missing *types.QueueDoesNotExist
			if errors.As(err, &missing) {
				return nil, fmt.Errorf("queue %s does not exist: is the stage deployed, or votes dev running?", n)
			}
			return nil, fmt.Errorf("sqs: get queue url of %s: %w", n, err)
		}
		out[n] = aws.ToString(r.QueueUrl)
	}
	return out, nil
}

// Depth counts a queue's messages: visible, in flight and delayed.
// SQS gives approximate counts; a message is counted in one of the three
// from the moment SendMessage returns until it is deleted or moved.
func Depth(ctx context.Context, client *sqs.Client, url string) (int, error) {
	names := []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: names})
	if err != nil {
		return 0, fmt.Errorf("sqs: queue attributes of %s: %w", url, err)
	}
	total := 0
	for _, k := range names {
		n, _ := strconv.Atoi(out.Attributes[string(k)])
		total += n
	}
	return total, nil
}

// Repairs are the queues of stream failures: the projector's failure queue,
// which the repairer consumes, and the repair dead-letter queue, where SQS
// moves what the repairer could not repair.
type Repairs struct {
	client          *sqs.Client
	failuresURL     string
	repairFailedURL string
}

// NewRepairs reads the failure queue at failuresURL and the repair
// dead-letter queue at repairFailedURL.
func NewRepairs(client *sqs.Client, failuresURL, repairFailedURL string) *Repairs {
	return &Repairs{client: client, failuresURL: failuresURL, repairFailedURL: repairFailedURL}
}

// Unrepaired counts the stream failures not repaired yet: every message of
// the failure queue (visible, being repaired, or delayed) and of the repair
// dead-letter queue. Zero means every record the live projector gave up on
// has been projected since. A rebuild must not mark its version ready
// while it is above zero: a failure may hold events of the version's window
// that neither the scan nor the live projector wrote.
func (r *Repairs) Unrepaired(ctx context.Context) (int, error) {
	a, err := Depth(ctx, r.client, r.failuresURL)
	if err != nil {
		return 0, err
	}
	b, err := Depth(ctx, r.client, r.repairFailedURL)
	if err != nil {
		return 0, err
	}
	return a + b, nil
}

// Message is a queued message as the operator tools see it.
type Message struct {
	ID       string
	Body     string
	Reason   string // the reason attribute, empty when none was recorded
	Source   string // the source attribute
	Receives int    // ApproximateReceiveCount, this look included
	Sent     time.Time
	receipt  string
}

func messageOf(m types.Message) Message {
	msg := Message{ID: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), receipt: aws.ToString(m.ReceiptHandle)}
	if a, ok := m.MessageAttributes[AttrReason]; ok {
		msg.Reason = aws.ToString(a.StringValue)
	}
	if a, ok := m.MessageAttributes[AttrSource]; ok {
		msg.Source = aws.ToString(a.StringValue)
	}
	msg.Receives, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		msg.Sent = time.UnixMilli(ms).UTC()
	}
	return msg
}

// lookTimeout is how long a message received only to be looked at stays
// hidden if giving it back fails: short, so that the queue's consumer and
// the next look see it again soon.
const lookTimeout = 20

// Peek lists up to max messages of the queue at url without consuming
// them: each is received with a short visibility timeout and made visible
// again at once. Messages in flight elsewhere are not seen. SQS counts a
// look as a receive, so do not peek at a queue that has a redrive policy
// (its maxReceiveCount would count the looks).
func Peek(ctx context.Context, client *sqs.Client, url string, max int) ([]Message, error) {
	var out []Message
	seen := map[string]bool{}
	var back []types.ChangeMessageVisibilityBatchRequestEntry
	defer func() {
		// Give them back even when ctx ended: hidden messages would delay
		// a redrive or another look by the visibility timeout.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for start := 0; start < len(back); start += 10 {
			_, _ = client.ChangeMessageVisibilityBatch(bctx, &sqs.ChangeMessageVisibilityBatchInput{
				QueueUrl: aws.String(url), Entries: back[start:min(start+10, len(back))],
			})
		}
	}()
	for len(out) < max {
		r, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: int32(min(10, max-len(out))), VisibilityTimeout: lookTimeout,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return out, fmt.Errorf("sqs: receive from %s: %w", url, err)
		}
		fresh := 0
		for _, m := range r.Messages {
			back = append(back, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(len(back))), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
			})
			if seen[aws.ToString(m.MessageId)] {
				continue
			}
			seen[aws.ToString(m.MessageId)] = true
			out = append(out, messageOf(m))
			fresh++
		}
		if fresh == 0 {
			return out, nil
		}
	}
	return out, nil
}

// Drain receives the messages of the queue at url, hands each to handle,
// and deletes those it handled without error. A message that failed stays
// hidden for the visibility timeout (seconds), then comes back to the
// queue's consumer; Drain does not see it again. It stops when a receive
// finds nothing, after max messages, or when ctx ends.
func Drain(ctx context.Context, client *sqs.Client, url string, visibility int32, max int, handle func(Message) error) (handled, failed int, err error) {
	for handled+failed < max {
		r, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: int32(min(10, max-handled-failed)), VisibilityTimeout: visibility,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return handled, failed, fmt.Errorf("sqs: receive from %s: %w", url, err)
		}
		if len(r.Messages) == 0 {
			return handled, failed, nil
		}
		for _, m := range r.Messages {
			msg := messageOf(m)
			if herr := handle(msg); herr != nil {
				failed++
				continue
			}
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return handled, failed, fmt.Errorf("sqs: delete message %s from %s: %w", msg.ID, url, err)
			}
			handled++
		}
	}
	return handled, failed, nil
}

// Redrive moves the messages the queue at from holds when it starts, up
// to max, to the queue at to: sent to to first, then deleted from from, so
// a failure in between leaves a copy in both (the consumer of to must
// tolerate duplicates). A message that fails again and comes back while it
// runs waits for the next redrive, instead of going round until max. It
// returns how many it moved.
func Redrive(ctx context.Context, client *sqs.Client, from, to string, max int) (int, error) {
	held, err := Depth(ctx, client, from)
	if err != nil {
		return 0, err
	}
	max = min(max, held)
	if max == 0 {
		return 0, nil
	}
	var first error
	moved, failed, err := Drain(ctx, client, from, 60, max, func(m Message) error {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(to), MessageBody: aws.String(m.Body)}); err != nil {
			err = fmt.Errorf("sqs: send message %s to %s: %w", m.ID, to, err)
			first = cmp.Or(first, err)
			return err
		}
		return nil
	})
	if err == nil && first != nil {
		err = fmt.Errorf("%d messages not moved: %w", failed, first)
	}
	return moved, err
}

var _ admin.FailureCounter = (*Repairs)(nil)

// RepairsByName are a stage's Repairs, their queues looked up by name on
// each count, so that building them makes no call and a command that never
// rebuilds never asks for the queues.
type RepairsByName struct {
	client *sqs.Client
	names  Names
}

var _ admin.FailureCounter = (*RepairsByName)(nil)

// NewRepairsByName finds the queues of names through client.
func NewRepairsByName(client *sqs.Client, names Names) *RepairsByName {
	return &RepairsByName{client: client, names: names}
}

// Unrepaired looks the queues up and counts as Repairs.Unrepaired does.
func (r *RepairsByName) Unrepaired(ctx context.Context) (int, error) {
	urls, err := URLs(ctx, r.client, r.names)
	if err != nil {
		return 0, err
	}
	return NewRepairs(r.client, urls[r.names.ProjectorFailed], urls[r.names.RepairFailed]).Unrepaired(ctx)
}
