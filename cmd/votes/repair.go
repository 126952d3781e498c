package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"votes/domain"
	"votes/handlers"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/infra/queue"
)

// ops is a deployment as the repair and dead-letter commands see it.
type ops struct {
	clients awscfg.Clients
	tables  dynamo.Tables
	names   queue.Names
	urls    map[string]string
}

func (t target) ops(ctx context.Context) (ops, error) {
	c, stage, err := t.clients(ctx)
	if err != nil {
		return ops{}, err
	}
	o := ops{clients: c, tables: dynamo.TablesFor(stage), names: queue.NamesFor(stage)}
	if o.urls, err = queue.URLs(ctx, c.SQS, o.names); err != nil {
		return ops{}, err
	}
	return o, nil
}

// repairer is the repairer function's code, run here.
func (o ops) repairer() *handlers.Repairer {
	cfg := functions.DefaultConfig()
	cfg.Tables = o.tables
	cfg.FailuresURL, cfg.RepairFailedURL = o.urls[o.names.ProjectorFailed], o.urls[o.names.RepairFailed]
	cfg.RepairMaxReceives = 0 // an operator's repair does not give up on a message for its receive count
	return functions.Repairer(cfg, o.clients.DynamoDB, o.clients.Streams, o.clients.SQS, slog.New(slog.DiscardHandler))
}

func runRepair(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("repair", stderr)
	t := targetFlags(fs)
	fromFlag := fs.String("from", "", "with --to: re-project the events received from this time (RFC 3339) on, from the event table")
	toFlag := fs.String("to", "", "with --from: ... up to this time (RFC 3339)")
	page := fs.Int("page", 1000, "events per scanned page, with --from and --to")
	maxMsgs := fs.Int("max", 1000, "at most this many messages from each queue")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	if (*fromFlag == "") != (*toFlag == "") {
		return usageError{errors.New("give both --from and --to, or neither")}
	}
	o, err := t.ops(ctx)
	if err != nil {
		return err
	}
	rep := o.repairer()
	if *fromFlag != "" {
		from, err1 := time.Parse(time.RFC3339, *fromFlag)
		to, err2 := time.Parse(time.RFC3339, *toFlag)
		if err := errors.Join(err1, err2); err != nil {
			return usageError{err}
		}
		if !from.Before(to) {
			return usageError{errors.New("--from must come before --to")}
		}
		return repairRange(ctx, o, rep, from, to, *page, *maxMsgs, stdout)
	}
	return repairQueues(ctx, o, rep, *maxMsgs, stdout)
}

// repairQueues runs the failure queue, then the repair dead-letter queue,
// through the repairer's code. What it repairs is deleted; what fails stays
// where it was.
func repairQueues(ctx context.Context, o ops, rep *handlers.Repairer, maxMsgs int, stdout io.Writer) error {
	failures := 0
	for _, name := range []string{o.names.ProjectorFailed, o.names.RepairFailed} {
		// Hidden for two minutes while this works on it: a repairer
		// running in the deployment does not take it meanwhile.
		ok, failed, err := queue.Drain(ctx, o.clients.SQS, o.urls[name], 120, maxMsgs, func(m queue.Message) error {
			r, err := rep.Repair(ctx, m.Body)
			if err != nil {
				fmt.Fprintf(stdout, "not repaired: %s: %v\n", m.ID, err)
				return err
			}
			fmt.Fprintf(stdout, "repaired: %s: %d events into versions %s\n", r.What, r.Events, strings.Join(r.Versions, ", "))
			return nil
		})
		fmt.Fprintf(stdout, "%s: %d repaired, %d not repaired\n", name, ok, failed)
		if err != nil {
			return err
		}
		failures += failed
	}
	if failures > 0 {
		return fmt.Errorf("%d failures not repaired (they stay queued; see votes dlq --repair)", failures)
	}
	return nil
}

// repairRange re-projects every event received from from to to, then
// clears the repair dead letters of stream ranges too old to read back
// whose window the repair covered.
func repairRange(ctx context.Context, o ops, rep *handlers.Repairer, from, to time.Time, page, maxMsgs int, stdout io.Writer) error {
	var events, invalid int
	var versions []string
	err := dynamo.ScanReceived(ctx, o.clients.DynamoDB, o.tables.Events, from, to, page, func(evs []domain.VoteCast, bad int) error {
		r, err := rep.ProjectEvents(ctx, evs)
		if err != nil {
			return fmt.Errorf("after %d events: %w (run it again: repairing twice changes nothing)", events, err)
		}
		events, invalid, versions = events+len(evs), invalid+bad, r.Versions
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "repaired %d events received from %s to %s into versions %s (%d items not valid events)\n",
		events, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), strings.Join(versions, ", "), invalid)
	cleared, _, err := queue.Drain(ctx, o.clients.SQS, o.urls[o.names.RepairFailed], 30, maxMsgs, func(m queue.Message) error {
		b, ok := handlers.FailedBatch(m.Body)
		if !ok {
			return errors.New("not a stream range")
		}
		wf, wt := handlers.ExpiredWindow(b)
		if wf.Before(from) || wt.After(to) {
			return errors.New("not covered")
		}
		fmt.Fprintf(stdout, "cleared: stream range %s %s..%s (arrived %s to %s), covered by this repair\n",
			b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber, b.FirstArrival.Format(time.RFC3339), b.LastArrival.Format(time.RFC3339))
		return nil
	})
	if cleared > 0 {
		fmt.Fprintf(stdout, "%s: %d cleared\n", o.names.RepairFailed, cleared)
	}
	return err
}

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dlq", stderr)
	t := targetFlags(fs)
	repair := fs.Bool("repair", false, "list the repair dead-letter queue instead of the submissions'")
	maxMsgs := fs.Int("max", 100, "at most this many messages")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || (len(pos) == 1 && pos[0] != "redrive") {
		return usageError{fmt.Errorf("unexpected argument %q", pos[len(pos)-1])}
	}
	o, err := t.ops(ctx)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		if *repair {
			return usageError{errors.New("redrive sends submissions back; repairs are retried with votes repair")}
		}
		moved, err := queue.Redrive(ctx, o.clients.SQS, o.urls[o.names.DeadLetters], o.urls[o.names.Submissions], *maxMsgs)
		fmt.Fprintf(stdout, "sent %d submissions back to %s\n", moved, o.names.Submissions)
		if err != nil {
			return err
		}
		left, err := queue.Depth(ctx, o.clients.SQS, o.urls[o.names.DeadLetters])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d left\n", o.names.DeadLetters, left)
		return nil
	}

	name := o.names.DeadLetters
	if *repair {
		name = o.names.RepairFailed
	}
	msgs, err := queue.Peek(ctx, o.clients.SQS, o.urls[name], *maxMsgs)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d messages\n", name, len(msgs))
	if len(msgs) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MESSAGE\tSENT\tFROM\tWHAT\tREASON")
		for _, m := range msgs {
			reason := m.Reason
			if reason == "" {
				reason = "moved by SQS redrive, no reason recorded"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.ID, m.Sent.Format(time.RFC3339), or(m.Source, "-"), what(m.Body), reason)
		}
		tw.Flush()
	}
	for _, q := range []string{o.names.ProjectorFailed, o.names.RepairFailed, o.names.DeadLetters} {
		if q == name {
			continue
		}
		n, err := queue.Depth(ctx, o.clients.SQS, o.urls[q])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d messages\n", q, n)
	}
	return nil
}

// what names a dead letter's content without printing it: a submission by
// its ID, a stream range or record by its sequence numbers.
func what(body string) string {
	if b, ok := handlers.FailedBatch(body); ok {
		return fmt.Sprintf("stream range %s..%s", b.StartSequenceNumber, b.EndSequenceNumber)
	}
	var m struct {
		SubmissionID string `json:"submissionId"`
		Change       *struct {
			SequenceNumber string `json:"SequenceNumber"`
		} `json:"dynamodb"`
	}
	switch {
	case json.Unmarshal([]byte(body), &m) != nil:
		return "not JSON"
	case m.SubmissionID != "":
		return "submission " + m.SubmissionID
	case m.Change != nil:
		return "stream record " + m.Change.SequenceNumber
	}
	return "-"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
