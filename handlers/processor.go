package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
)

// EventAppender appends vote events to the event table, idempotently.
type EventAppender interface {
	// Append stores the votes of one submission, all or none, once: a
	// submission stored before with the same votes is Duplicate, other
	// votes under its key Conflict (kept out). It is safe to retry after
	// any error.
	Append(ctx context.Context, votes []domain.VoteCast) (domain.Outcome, error)
}

// DeadLetterer stores a message that cannot be processed, with the reason.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, body, reason string) error
}

// Processor handles SQS batches of accepted submissions: it appends every
// vote to the event table. A message whose votes were all stored (or were
// stored before) is done; one that failed is reported as a batch-item
// failure and comes back; one that can never be processed, or that has
// been failing for longer than its RetryLimits allow, goes to the
// dead-letter queue with the reason and is done.
type Processor struct {
	events      EventAppender
	deadLetters DeadLetterer
	limits      RetryLimits
	concurrency int
	log         *slog.Logger
}

// RetryLimits bound how long the processor retries a message before it
// dead-letters it itself, with the reason. They are ages, not receive
// counts: throttled invocations count as receives (SQS cannot tell them
// apart), so a burst would turn a receive count into dead letters of votes
// that never failed. The queue's redrive maxReceiveCount is only a backstop,
// far above these, for messages the function never sees.
type RetryLimits struct {
	// Failing is how long a message whose votes fail to be stored is
	// retried, from its first receive (ApproximateFirstReceiveTimestamp),
	// so that a backlog waiting in the queue does not count against it.
	Failing time.Duration
	// NewerSchema is how long a message of a schema version newer than this
	// code reads is retried, from when it was sent (SentTimestamp): during
	// a deploy the receiver may be updated before the processor.
	NewerSchema time.Duration
}

// DefaultRetryLimits are the deployment's: 15 minutes of failures (five
// receives at the queue's 3-minute visibility timeout), and an hour for a
// deploy to finish.
func DefaultRetryLimits() RetryLimits {
	return RetryLimits{Failing: 15 * time.Minute, NewerSchema: time.Hour}
}

// NewProcessor builds the processor; a zero limit takes its default.
func NewProcessor(events EventAppender, deadLetters DeadLetterer, limits RetryLimits, concurrency int, log *slog.Logger) *Processor {
	if limits.Failing <= 0 {
		limits.Failing = DefaultRetryLimits().Failing
	}
	if limits.NewerSchema <= 0 {
		limits.NewerSchema = DefaultRetryLimits().NewerSchema
	}
	return &Processor{events: events, deadLetters: deadLetters, limits: limits, concurrency: max(concurrency, 1), log: log}
}

// BatchStats counts what one batch did.
type BatchStats struct {
	Messages, Appended, Duplicates, Conflicts, DeadLettered, Failed int
}

// Handle is the Lambda handler for the submissions queue.
func (p *Processor) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var (
		mu    sync.Mutex
		resp  events.SQSEventResponse
		stats = BatchStats{Messages: len(ev.Records)}
		wg    sync.WaitGroup
		sem   = make(chan struct{}, p.concurrency)
	)
	for _, msg := range ev.Records {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var s BatchStats
			ok := p.handleMessage(ctx, msg, &s)
			mu.Lock()
			defer mu.Unlock()
			stats.Appended += s.Appended
			stats.Duplicates += s.Duplicates
			stats.Conflicts += s.Conflicts
			stats.DeadLettered += s.DeadLettered
			if !ok {
				stats.Failed++
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
			}
		}()
	}
	wg.Wait()
	p.log.InfoContext(ctx, "processed submissions", "messages", stats.Messages, "appended", stats.Appended,
		"duplicates", stats.Duplicates, "conflicts", stats.Conflicts, "deadLettered", stats.DeadLettered, "failed", stats.Failed)
	return resp, nil
}

// handleMessage reports whether the message is done with.
func (p *Processor) handleMessage(ctx context.Context, msg events.SQSMessage, s *BatchStats) bool {
	sub, err := domain.DecodeAccepted([]byte(msg.Body))
	var newer *domain.NewerVersionError
	if errors.As(err, &newer) {
		sent := attrTime(msg, "SentTimestamp", time.Now())
		if time.Now().Sub(sent) > p.limits.NewerSchema {
			return p.deadLetter(ctx, msg, fmt.Sprintf("schema version %d is newer than this processor understands (%s), for over %s",
				newer.Version, domain.ReadableSchemas(), shortDuration(p.limits.NewerSchema)), s)
		}
		p.log.WarnContext(ctx, "message of a newer schema version: retried until this processor is updated",
			"message", msg.MessageId, "version", newer.Version, "sent", sent)
		return false
	}
	if err != nil {
		return p.deadLetter(ctx, msg, "poison: "+err.Error(), s)
	}
	votes := sub.Events()
	out, err := p.events.Append(ctx, votes)
	if err != nil {
		receives, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
		first := attrTime(msg, "ApproximateFirstReceiveTimestamp", attrTime(msg, "SentTimestamp", time.Now()))
		if time.Now().Sub(first) > p.limits.Failing {
			return p.deadLetter(ctx, msg, fmt.Sprintf("gave up after failing for over %s (%d receives): %v",
				shortDuration(p.limits.Failing), receives, err), s)
		}
		p.log.WarnContext(ctx, "append submission", "message", msg.MessageId, "submission", sub.SubmissionID, "receives", receives, "err", err)
		return false
	}
	switch out {
	case domain.Appended:
		s.Appended += len(votes)
	case domain.Duplicate:
		s.Duplicates += len(votes)
	case domain.Conflict:
		s.Conflicts += len(votes)
		p.log.ErrorContext(ctx, "submission conflict: other votes are stored under this key (a hash collision or a bug); kept out",
			"submission", sub.SubmissionID, "votes", sub.VoteIDs(), "title", sub.TitleID)
	}
	return true
}

// attrTime reads an SQS timestamp attribute (Unix milliseconds), or def
// when it is missing or unreadable.
func attrTime(msg events.SQSMessage, name string, def time.Time) time.Time {
	ms, err := strconv.ParseInt(msg.Attributes[name], 10, 64)
	if err != nil || ms <= 0 {
		return def
	}
	return time.UnixMilli(ms)
}

// shortDuration writes d as people do: 1h, 15m, 1h30m, 2s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (p *Processor) deadLetter(ctx context.Context, msg events.SQSMessage, reason string, s *BatchStats) bool {
	if err := p.deadLetters.DeadLetter(ctx, msg.Body, reason); err != nil {
		p.log.ErrorContext(ctx, "dead-letter message", "message", msg.MessageId, "reason", reason, "err", err)
		return false
	}
	p.log.WarnContext(ctx, "dead-lettered message", "message", msg.MessageId, "reason", reason)
	s.DeadLettered++
	return true
}
