package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
)

// EventAppender appends vote events to the event table, idempotently.
type EventAppender interface {
	Append(ctx context.Context, e domain.VoteCast) (domain.Outcome, error)
}

// DeadLetterer stores a message that cannot be processed, with the reason.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, body, reason string) error
}

// Processor handles SQS batches of accepted submissions: it appends every
// vote to the event table. A message whose votes were all stored (or were
// stored before) is done; one that failed is reported as a batch-item
// failure and comes back; one that can never be processed, or that failed
// on its last allowed receive, goes to the dead-letter queue with the
// reason and is done.
type Processor struct {
	events      EventAppender
	deadLetters DeadLetterer
	maxReceives int
	concurrency int
	log         *slog.Logger
}

// NewProcessor builds the processor. maxReceives is the queue's redrive
// maxReceiveCount: on that receive a failing message is dead-lettered here,
// with its reason, rather than silently by SQS.
func NewProcessor(events EventAppender, deadLetters DeadLetterer, maxReceives, concurrency int, log *slog.Logger) *Processor {
	return &Processor{events: events, deadLetters: deadLetters, maxReceives: maxReceives, concurrency: max(concurrency, 1), log: log}
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
	if err != nil {
		return p.deadLetter(ctx, msg, "poison: "+err.Error(), s)
	}
	for _, e := range sub.Events() {
		out, err := p.events.Append(ctx, e)
		if err != nil {
			receives, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
			if p.maxReceives > 0 && receives >= p.maxReceives {
				return p.deadLetter(ctx, msg, fmt.Sprintf("gave up after %d receives: %v", receives, err), s)
			}
			p.log.WarnContext(ctx, "append vote", "message", msg.MessageId, "vote", e.VoteID, "receives", receives, "err", err)
			return false
		}
		switch out {
		case domain.Appended:
			s.Appended++
		case domain.Duplicate:
			s.Duplicates++
		case domain.Conflict:
			s.Conflicts++
			p.log.ErrorContext(ctx, "vote conflict: another vote is stored under this ID (a hash collision or a bug); kept out",
				"vote", e.VoteID, "submission", e.SubmissionID, "title", e.TitleID)
		}
	}
	return true
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
