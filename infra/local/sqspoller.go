package local

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSMapping is the settings of an SQS event-source mapping.
type SQSMapping struct {
	BatchSize      int
	Window         time.Duration // MaximumBatchingWindow
	MaxConcurrency int           // ScalingConfig.MaximumConcurrency: invocations at once, at most
	Pollers        int           // concurrent batches locally, at most MaxConcurrency
}

// sqsPoller plays Lambda's SQS event-source mapping: it long-polls the
// queue, gathers up to BatchSize messages or until Window has passed since
// the first, invokes the function with an events.SQSEvent, and deletes the
// messages the function did not report as failed. Failed messages come back
// when their visibility timeout ends, and the queue's redrive policy moves
// them to the dead-letter queue after maxReceiveCount receives. With
// overlap, every batch goes to two concurrent invocations.
type sqsPoller struct {
	client   *sqs.Client
	queueURL string
	queueARN string
	region   string
	mapping  SQSMapping
	fn       *Function
	overlap  bool
	log      *slog.Logger
	held     *atomic.Bool // the mapping is disabled: no receives
	stats    *mappingStats
}

// mappingStats counts what an SQS mapping's pollers did, for the stop's
// report.
type mappingStats struct {
	finished    atomic.Int64 // messages the function finished, deleted
	interrupted atomic.Int64 // batches whose invocation the stop cut off
}

func (p *sqsPoller) run(ctx context.Context) { p.serve(ctx, ctx, ctx) }

// serve receives batches until take ends, each receive under receive,
// and delivers each batch under invoke: a stop ends take first, so that
// the batch in flight can finish, then invoke when it will not wait any
// longer, and receive last.
func (p *sqsPoller) serve(take, receive, invoke context.Context) {
	for take.Err() == nil {
		if p.held != nil && p.held.Load() {
			sleep(take, 50*time.Millisecond)
			continue
		}
		batch := p.gather(take, receive)
		if len(batch) == 0 {
			continue
		}
		p.deliver(invoke, batch)
	}
}

// gather receives a batch until take ends. A receive runs under ctx, not
// take: one cancelled after the queue handed out its messages would leave
// them invisible for the visibility timeout, so a stop lets the receive in
// flight end (within its 1 s long poll) and delivers what it brought, or
// puts it back.
func (p *sqsPoller) gather(take, ctx context.Context) []types.Message {
	var (
		batch    []types.Message
		deadline time.Time
	)
	for len(batch) < p.mapping.BatchSize && take.Err() == nil {
		wait := int32(1)
		if len(batch) > 0 {
			if !time.Now().Before(deadline) {
				break
			}
			wait = 0
		}
		out, err := p.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(p.queueURL),
			MaxNumberOfMessages:         int32(min(10, p.mapping.BatchSize-len(batch))),
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			if take.Err() == nil {
				p.log.Warn("receive from queue", "queue", p.queueURL, "err", err)
				sleep(take, 200*time.Millisecond)
			}
			break
		}
		if len(batch) == 0 && len(out.Messages) > 0 {
			deadline = time.Now().Add(p.mapping.Window)
		}
		batch = append(batch, out.Messages...)
		if p.mapping.Window == 0 && len(batch) > 0 {
			break
		}
		if len(out.Messages) == 0 && len(batch) > 0 {
			sleep(take, min(10*time.Millisecond, time.Until(deadline)))
		}
	}
	return batch
}

func (p *sqsPoller) deliver(ctx context.Context, batch []types.Message) {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(batch))}
	for i, m := range batch {
		body := aws.ToString(m.Body)
		sum := md5.Sum([]byte(body))
		ev.Records[i] = events.SQSMessage{
			MessageId:      aws.ToString(m.MessageId),
			ReceiptHandle:  aws.ToString(m.ReceiptHandle),
			Body:           body,
			Md5OfBody:      hex.EncodeToString(sum[:]),
			Attributes:     m.Attributes,
			EventSource:    "aws:sqs",
			EventSourceARN: p.queueARN,
			AWSRegion:      p.region,
		}
		if ev.Records[i].Attributes == nil {
			ev.Records[i].Attributes = map[string]string{}
		}
	}
	var other chan map[string]bool
	if p.overlap {
		other = make(chan map[string]bool, 1)
		go func() { other <- p.invoke(ctx, ev) }()
	}
	finished := p.invoke(ctx, ev)
	if p.overlap {
		// A message is deleted when at least one of the two invocations
		// finished it: finishing means every vote of it is in the event
		// table (or the message is dead-lettered with its reason), and the
		// append is idempotent, so what the other invocation did or failed
		// to do can add nothing and lose nothing. Keeping the message
		// would only deliver a finished message again.
		for id := range <-other {
			finished[id] = true
		}
	}
	// Cut off by the stop: the function did not finish every message.
	cut := ctx.Err() != nil && len(finished) < len(batch)
	var (
		done []types.DeleteMessageBatchRequestEntry
		left []types.ChangeMessageVisibilityBatchRequestEntry
	)
	for i, m := range batch {
		if finished[aws.ToString(m.MessageId)] {
			done = append(done, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		} else if cut {
			left = append(left, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if cut && p.stats != nil {
		p.stats.interrupted.Add(1)
	}
	// A context of its own: messages the function finished must be deleted
	// even while the stack shuts down.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for start := 0; start < len(done); start += 10 {
		entries := done[start:min(start+10, len(done))]
		out, err := p.client.DeleteMessageBatch(dctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.queueURL), Entries: entries})
		if err != nil {
			// Under ctx: after a stop cut the stack off, its log handler
			// may count this rather than print it.
			p.log.WarnContext(ctx, "delete processed messages", "err", err)
			continue
		}
		if p.stats != nil {
			p.stats.finished.Add(int64(len(out.Successful)))
		}
		for _, f := range out.Failed {
			p.log.WarnContext(ctx, "delete processed message", "id", aws.ToString(f.Id), "code", aws.ToString(f.Code))
		}
	}
	// The messages of a batch the stop cut off go back on the queue at
	// once, rather than after their visibility timeout: whatever takes the
	// queue up next (a restart on the same data) sees them straight away.
	for start := 0; start < len(left); start += 10 {
		entries := left[start:min(start+10, len(left))]
		for i := range entries {
			entries[i].VisibilityTimeout = 0
		}
		_, _ = p.client.ChangeMessageVisibilityBatch(dctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(p.queueURL), Entries: entries})
	}
}

// invoke runs the function on ev and returns the IDs of the messages it
// finished: all but those it reported failed, none when it failed as a
// whole (every message then comes back after its visibility timeout).
func (p *sqsPoller) invoke(ctx context.Context, ev events.SQSEvent) map[string]bool {
	finished := map[string]bool{}
	var resp events.SQSEventResponse
	if err := p.fn.Invoke(ctx, ev, &resp); err != nil {
		if ctx.Err() == nil { // a batch the stop cut off is counted, not logged
			p.log.Warn("function invocation failed", "function", p.fn.name, "messages", len(ev.Records), "err", err)
		}
		return finished
	}
	for _, m := range ev.Records {
		finished[m.MessageId] = true
	}
	for _, f := range resp.BatchItemFailures {
		delete(finished, f.ItemIdentifier)
	}
	return finished
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
