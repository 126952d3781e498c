package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/projections"
)

// Errors the repairer's callers branch on.
var (
	// ErrStreamExpired means a stream range can no longer be read: it is
	// past the stream's 24-hour retention, or its shard is gone.
	ErrStreamExpired = errors.New("stream range is past the stream's retention")
	// ErrUnrepairable means a failure cannot be repaired by this code:
	// retrying will not help until the code or the data changes.
	ErrUnrepairable = errors.New("cannot be repaired")
)

// StreamBatch describes a stream batch that Lambda gave up on: the
// DDBStreamBatchInfo of its OnFailure record.
type StreamBatch struct {
	StreamARN           string    `json:"streamArn"`
	ShardID             string    `json:"shardId"`
	StartSequenceNumber string    `json:"startSequenceNumber"`
	EndSequenceNumber   string    `json:"endSequenceNumber"`
	FirstArrival        time.Time `json:"approximateArrivalOfFirstRecord"`
	LastArrival         time.Time `json:"approximateArrivalOfLastRecord"`
	BatchSize           int       `json:"batchSize"`
}

// RangeRead is what a StreamRange found in a range.
type RangeRead struct {
	// Events are the events of the range's INSERT records, in stream order.
	Events []domain.VoteCast
	// Records counts the range's records of every kind.
	Records int
	// Undecodable names each INSERT record that is not a valid event, by
	// sequence number, with the reason.
	Undecodable []string
}

// StreamRange reads back a range of one shard of the event table's stream.
type StreamRange interface {
	// Read returns the records of b's shard whose sequence numbers lie from
	// b.StartSequenceNumber to b.EndSequenceNumber, both included. It only
	// reads, so it can be repeated. A range that can no longer be read
	// (past the stream's retention, or the shard is gone) gives an error
	// wrapping ErrStreamExpired; other errors are worth retrying.
	Read(ctx context.Context, b StreamBatch) (RangeRead, error)
}

// Repaired says what one repair projected.
type Repaired struct {
	What     string   // what was repaired, for people
	Events   int      // events projected
	Versions []string // the versions written
}

// Repairer repairs what the live projector gave up on, from the
// projector's failure queue: a stream batch that exhausted its retries (its
// OnFailure record says which shard and sequence range) is read back from
// the stream and projected again; a single record that could not be decoded
// is decoded and projected again, in case newer code understands it. Both
// go through the live projector's path into every version of the write set,
// and projection is idempotent, so events that were projected already,
// or are repaired twice, change nothing.
type Repairer struct {
	fanout
	stream      StreamRange
	deadLetters DeadLetterer
	maxReceives int
}

// NewRepairer builds the failure queue's handler. projectorFor must give
// projectors that do not claim cells exclusively: the repairer runs
// alongside the live projector. deadLetters is the repair dead-letter
// queue, and maxReceives the failure queue's maxReceiveCount.
func NewRepairer(decode EventDecoder, stream StreamRange, versions WriteSet, projectorFor func(version string) projections.BatchProjector, deadLetters DeadLetterer, maxReceives int, log *slog.Logger) *Repairer {
	return &Repairer{fanout: newFanout(decode, versions, projectorFor, log), stream: stream, deadLetters: deadLetters, maxReceives: maxReceives}
}

// Handle is the Lambda handler for the failure queue. A message that can
// never be repaired by this code (ErrUnrepairable, ErrStreamExpired), or
// that failed on its last allowed receive, goes to the repair dead-letter
// queue with the reason, which raises an alarm; any other failure is
// reported as a batch-item failure and comes back after the visibility
// timeout. Should the dead-letter queue itself fail, SQS's redrive moves
// the message there after maxReceiveCount, without a reason.
func (h *Repairer) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, m := range ev.Records {
		r, err := h.Repair(ctx, m.Body)
		if err == nil {
			h.log.InfoContext(ctx, "repaired", "messageId", m.MessageId, "what", r.What, "events", r.Events, "versions", r.Versions)
			continue
		}
		receives, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
		h.log.ErrorContext(ctx, "repair failed", "messageId", m.MessageId, "receives", receives, "err", err)
		final := errors.Is(err, ErrUnrepairable) || errors.Is(err, ErrStreamExpired) || (h.maxReceives > 0 && receives >= h.maxReceives)
		if final {
			dlErr := h.deadLetters.DeadLetter(ctx, m.Body, "repair failed: "+err.Error())
			if dlErr == nil {
				continue
			}
			h.log.ErrorContext(ctx, "dead-letter failed repair", "messageId", m.MessageId, "err", dlErr)
		}
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
	}
	return resp, nil
}

// failureMessage is what the failure queue holds: a Lambda OnFailure record
// (DDBStreamBatchInfo set) or a stream record the projector could not decode
// (an events.DynamoDBEventRecord).
type failureMessage struct {
	Batch     *StreamBatch    `json:"DDBStreamBatchInfo"`
	EventName string          `json:"eventName"`
	Change    json.RawMessage `json:"dynamodb"`
}

// Repair repairs one message of the failure queue. It succeeds only when
// every event the message stands for is now projected into every version
// of the write set.
func (h *Repairer) Repair(ctx context.Context, body string) (Repaired, error) {
	var m failureMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return Repaired{}, fmt.Errorf("failure message is not JSON: %w: %w", ErrUnrepairable, err)
	}
	switch {
	case m.Batch != nil:
		return h.repairRange(ctx, *m.Batch)
	case m.Change != nil:
		return h.repairRecord(ctx, body)
	}
	return Repaired{}, fmt.Errorf("failure message is neither an OnFailure record nor a stream record: %w", ErrUnrepairable)
}

func (h *Repairer) repairRange(ctx context.Context, b StreamBatch) (Repaired, error) {
	what := fmt.Sprintf("stream range %s %s..%s", b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber)
	read, err := h.stream.Read(ctx, b)
	if errors.Is(err, ErrStreamExpired) {
		from, to := ExpiredWindow(b)
		return Repaired{}, fmt.Errorf("%s (arrived %s to %s): %w; repair it from the event table: votes repair --from %s --to %s",
			what, b.FirstArrival.Format(time.RFC3339), b.LastArrival.Format(time.RFC3339), err,
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if err != nil {
		return Repaired{}, fmt.Errorf("%s: %w", what, err)
	}
	r, err := h.ProjectEvents(ctx, read.Events)
	r.What = fmt.Sprintf("%s (%d records)", what, read.Records)
	if err != nil {
		return r, fmt.Errorf("%s: %w", what, err)
	}
	if len(read.Undecodable) > 0 {
		// The decodable events are projected; the rest needs newer code, or
		// a look by someone: keep the failure until then.
		return r, fmt.Errorf("%s: %d records are not valid events (%s): %w", what, len(read.Undecodable), strings.Join(read.Undecodable, "; "), ErrUnrepairable)
	}
	return r, nil
}

func (h *Repairer) repairRecord(ctx context.Context, body string) (Repaired, error) {
	var rec events.DynamoDBEventRecord
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		return Repaired{}, fmt.Errorf("stream record: %w: %w", ErrUnrepairable, err)
	}
	what := "stream record " + rec.Change.SequenceNumber
	if rec.EventName != string(events.DynamoDBOperationTypeInsert) {
		return Repaired{What: what + " (not an insert: nothing to project)"}, nil
	}
	votes, err := decodeImage(h.decode, rec.Change.NewImage)
	if err != nil {
		return Repaired{What: what}, fmt.Errorf("%s: still undecodable: %w: %w", what, ErrUnrepairable, err)
	}
	r, err := h.ProjectEvents(ctx, votes)
	r.What = what
	return r, err
}

// ProjectEvents projects events into every version of the write set, as
// the live projector does. It fails if any cell failed in any version;
// projecting the same events again is then safe.
func (h *Repairer) ProjectEvents(ctx context.Context, evs []domain.VoteCast) (Repaired, error) {
	rep, versions, err := h.projectAll(ctx, evs)
	if err != nil {
		return Repaired{}, fmt.Errorf("read projection versions: %w", err)
	}
	r := Repaired{Events: len(evs), Versions: versions}
	if len(rep.Failed) > 0 {
		errs := map[string]error{}
		cells := make([]string, 0, len(rep.Failed))
		for c, err := range rep.Failed {
			errs[c.String()] = err
			cells = append(cells, c.String())
		}
		sort.Strings(cells)
		first := errs[cells[0]]
		return r, fmt.Errorf("%d cells failed (%s): %w", len(cells), strings.Join(cells, ", "), first)
	}
	return r, nil
}

// ExpiredWindow is the receive-time window of the event table that holds
// the events of a stream batch that can no longer be read from the stream.
// An event's receive time (the receiver's clock) comes before its arrival on
// the stream by its time in the submissions queue, which the queue's redrive
// bounds to a few visibility timeouts, but a vote redriven from the
// dead-letter queue can be older: the window starts a day early, and
// re-projecting events that were projected already changes nothing. It ends
// five minutes late, for the clock skew between the receivers and DynamoDB.
func ExpiredWindow(b StreamBatch) (from, to time.Time) {
	return b.FirstArrival.Add(-24 * time.Hour).UTC(), b.LastArrival.Add(5 * time.Minute).UTC()
}

// FailedBatch returns the stream batch an OnFailure record describes, and
// false for any other message of the failure queue.
func FailedBatch(body string) (StreamBatch, bool) {
	var m failureMessage
	if json.Unmarshal([]byte(body), &m) != nil || m.Batch == nil {
		return StreamBatch{}, false
	}
	return *m.Batch, true
}
