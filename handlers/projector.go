package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/projections"
)

// WriteSet says which projection versions the live projector writes: the
// active one, and any being rebuilt or ready to be promoted.
type WriteSet interface {
	WriteSet(ctx context.Context) ([]string, error)
}

// Projector handles DynamoDB Stream batches of the event table and folds
// them into the ballots and tally cells of every version it writes.
type Projector struct {
	fanout
	deadLetters DeadLetterer
}

// NewProjector builds the stream handler.
func NewProjector(decode EventDecoder, versions WriteSet, projectorFor func(version string) projections.BatchProjector, deadLetters DeadLetterer, log *slog.Logger) *Projector {
	return &Projector{fanout: newFanout(decode, versions, projectorFor, log), deadLetters: deadLetters}
}

// fanout projects events into every version of the write set, through one
// projections.Projector per version, built on first use. The live
// projector and the repairer share it, so a repair writes what the live
// projector would have written.
type fanout struct {
	decode       EventDecoder
	versions     WriteSet
	projectorFor func(version string) projections.BatchProjector
	mu           sync.Mutex
	projectors   map[string]projections.BatchProjector
	log          *slog.Logger
}

func newFanout(decode EventDecoder, versions WriteSet, projectorFor func(version string) projections.BatchProjector, log *slog.Logger) fanout {
	return fanout{decode: decode, versions: versions, projectorFor: projectorFor, projectors: map[string]projections.BatchProjector{}, log: log}
}

func (h *fanout) projector(version string) projections.BatchProjector {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.projectors[version]
	if !ok {
		p = h.projectorFor(version)
		h.projectors[version] = p
	}
	return p
}

// projectAll projects votes into every version the write set lists now. It
// returns what was done, summed over the versions, and the cells that
// failed in any version, with one of their errors. An error means the write
// set could not be read and nothing was projected.
func (h *fanout) projectAll(ctx context.Context, votes []domain.VoteCast) (rep projections.Report, versions []string, err error) {
	versions, err = h.versions.WriteSet(ctx)
	if err != nil {
		return rep, nil, err
	}
	rep.Failed = map[domain.Cell]error{}
	for _, version := range versions {
		r := h.projector(version).Project(ctx, votes)
		rep.Cells, rep.Ballots, rep.Recovered = rep.Cells+r.Cells, rep.Ballots+r.Ballots, rep.Recovered+r.Recovered
		for cell, err := range r.Failed {
			h.log.WarnContext(ctx, "project cell", "version", version, "cell", cell.String(), "err", err)
			rep.Failed[cell] = err
		}
	}
	return rep, versions, nil
}

// Handle is the Lambda handler for the event table's stream. It reports the
// records of failed cells as batch-item failures; Lambda retries from the
// earliest, and the projection's idempotence makes the repeats harmless.
// A record that can never be decoded goes to the failure queue with the
// reason and does not hold up the rest.
func (h *Projector) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var resp events.DynamoDBEventResponse
	votes := make([]domain.VoteCast, 0, len(ev.Records))
	seqOf := make(map[domain.Cell][]string)
	for _, rec := range ev.Records {
		if rec.EventName != string(events.DynamoDBOperationTypeInsert) {
			continue // events are only ever inserted
		}
		decoded, err := decodeImage(h.decode, rec.Change.NewImage)
		if err != nil {
			reason := "undecodable event: " + err.Error()
			var newer *domain.NewerVersionError
			if errors.As(err, &newer) {
				// Written by newer code during a deploy: retried until
				// this function is updated too, for a bounded time.
				created := rec.Change.ApproximateCreationDateTime.Time
				if time.Since(created) <= NewerSchemaRetry {
					h.log.WarnContext(ctx, "event of a newer schema version: retried until this projector is updated",
						"seq", rec.Change.SequenceNumber, "version", newer.Version, "created", created)
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
					continue
				}
				reason = fmt.Sprintf("schema version %d is newer than this projector understands (%s), for over %s",
					newer.Version, domain.ReadableEventSchemas(), shortDuration(NewerSchemaRetry))
			}
			body, _ := json.Marshal(rec)
			if dlErr := h.deadLetters.DeadLetter(ctx, string(body), reason); dlErr != nil {
				h.log.ErrorContext(ctx, "dead-letter stream record", "seq", rec.Change.SequenceNumber, "err", dlErr)
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
			}
			continue
		}
		votes = append(votes, decoded...)
		cell := decoded[0].Cell() // a record's votes share voter and title
		seqOf[cell] = append(seqOf[cell], rec.Change.SequenceNumber)
	}
	rep, versions, err := h.projectAll(ctx, votes)
	if err != nil {
		// Nothing can be projected: retry the batch from its start.
		h.log.ErrorContext(ctx, "read projection versions", "err", err)
		if len(ev.Records) > 0 {
			resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: ev.Records[0].Change.SequenceNumber}}
		}
		return resp, nil
	}
	failed := rep.Failed
	for cell := range failed {
		for _, seq := range seqOf[cell] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seq})
		}
	}
	slices.SortFunc(resp.BatchItemFailures, func(a, b events.DynamoDBBatchItemFailure) int {
		return compareSeq(a.ItemIdentifier, b.ItemIdentifier)
	})
	h.log.InfoContext(ctx, "projected events", "records", len(ev.Records), "votes", len(votes), "cells", rep.Cells,
		"ballots", rep.Ballots, "recovered", rep.Recovered, "versions", len(versions), "failedCells", len(failed), "failedRecords", len(resp.BatchItemFailures))
	return resp, nil
}

// compareSeq orders stream sequence numbers, which are decimal strings of
// varying length.
func compareSeq(a, b string) int {
	x, okx := new(big.Int).SetString(a, 10)
	y, oky := new(big.Int).SetString(b, 10)
	if okx && oky {
		return x.Cmp(y)
	}
	return strings.Compare(a, b)
}

// NewerSchemaRetry is how long a stream record of a schema version newer
// than this code reads is retried, from its ApproximateCreationDateTime,
// before it goes to the failure queue. The stream mapping's own retry
// attempts may run out first: the record then reaches the failure queue
// through its on-failure destination instead.
const NewerSchemaRetry = time.Hour

// EventDecoder builds the vote events of an event-table item (one or
// more, all of one voter and title), from its attributes looked up by name
// as the string form of a string or number attribute (absent: false). It
// validates them, and gives an error
// wrapping domain.ErrNewerVersion for an event of a schema version newer
// than this code reads. The event store's adapter owns the item layout and
// provides it.
type EventDecoder func(field func(name string) (string, bool)) ([]domain.VoteCast, error)

// decodeImage decodes a stream record's new image with decode.
func decodeImage(decode EventDecoder, img map[string]events.DynamoDBAttributeValue) ([]domain.VoteCast, error) {
	return decode(func(name string) (string, bool) {
		av, ok := img[name]
		if !ok {
			return "", false
		}
		switch av.DataType() {
		case events.DataTypeString:
			return av.String(), true
		case events.DataTypeNumber:
			return av.Number(), true
		}
		return "", false
	})
}
