package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"votes/domain"
	"votes/infra/dynamo"
)

// ballotView is what votes ballot shows, and its JSON.
type ballotView struct {
	VoterID string                   `json:"voterId"`
	TitleID string                   `json:"titleId"`
	Version string                   `json:"version"`
	Current map[string]ballotCurrent `json:"current"`
	Events  []ballotEvent            `json:"events"`
	// Matches says whether the ballot holds, for every aspect, the vote
	// its events make current (latest wins): false while the projector has
	// not caught up with them.
	Matches bool `json:"matches"`
}

type ballotCurrent struct {
	Choice     string    `json:"choice"`
	ReceivedAt time.Time `json:"receivedAt"`
	VoteID     string    `json:"voteId"`
}

type ballotEvent struct {
	ReceivedAt   time.Time `json:"receivedAt"`
	SubmissionID string    `json:"submissionId"`
	Aspect       string    `json:"aspect"`
	Choice       string    `json:"choice"`
	VoteID       string    `json:"voteId"`
	OccurredAt   string    `json:"occurredAt,omitempty"`
	// Counts: it is the voter's latest vote on its aspect, the one the
	// tallies count; the others were superseded.
	Counts bool `json:"counts"`
}

func runBallot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ballot", stderr)
	tgt := targetFlags(fs)
	version := fs.String("version", "", "the projection version whose ballot to read (default: the active one)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageError{errors.New("want a VOTER and a TITLE")}
	}
	if err := noMoreArgs(pos, 2); err != nil {
		return err
	}
	voter, err := domain.ValidVoterID(pos[0])
	if err != nil {
		return usageError{err}
	}
	title, err := domain.ValidTitleID(pos[1])
	if err != nil {
		return usageError{err}
	}
	clients, stage, err := tgt.clients(ctx)
	if err != nil {
		return err
	}
	tables := dynamo.TablesFor(stage)
	st := dynamo.NewStage(clients.DynamoDB, tables)
	if err := st.CheckTables(ctx); err != nil {
		return err
	}
	if *version == "" {
		reg, err := st.Deployment().Registry.Load(ctx, true)
		if err != nil {
			return err
		}
		*version = reg.Active
	}
	events, err := dynamo.NewEventStore(clients.DynamoDB, tables.Events).VoterEvents(ctx, title, voter)
	if err != nil {
		return err
	}
	ballots, err := dynamo.NewBallotStore(clients.DynamoDB, tables.Ballots, *version).Load(ctx, title, []string{voter})
	if err != nil {
		return err
	}
	if len(events) == 0 && len(ballots) == 0 {
		return fmt.Errorf("no votes by %s on %s in the event table, and no ballot in version %s", voter, title, *version)
	}
	view := ballotView{VoterID: voter, TitleID: title, Version: *version, Current: map[string]ballotCurrent{}, Matches: true}
	for aspect, c := range ballots[voter].Aspects {
		view.Current[aspect] = ballotCurrent{Choice: c.Choice, ReceivedAt: time.Unix(0, c.RecordedAt).UTC(), VoteID: c.VoteID}
	}
	latest := map[string]domain.VoteCast{}
	for _, e := range events {
		if l, ok := latest[e.Aspect]; !ok || e.After(l) {
			latest[e.Aspect] = e
		}
	}
	for _, e := range events {
		view.Events = append(view.Events, ballotEvent{ReceivedAt: time.Unix(0, e.RecordedAt).UTC(), SubmissionID: e.SubmissionID,
			Aspect: e.Aspect, Choice: e.Choice, VoteID: e.VoteID, OccurredAt: e.OccurredAt, Counts: latest[e.Aspect].VoteID == e.VoteID})
	}
	for aspect, l := range latest {
		if view.Current[aspect].VoteID != l.VoteID {
			view.Matches = false
		}
	}
	if len(view.Current) != len(latest) {
		view.Matches = false
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(view)
	}
	return writeBallot(stdout, view)
}

func writeBallot(w io.Writer, v ballotView) error {
	fmt.Fprintf(w, "%s on %s, version %s:\n", v.VoterID, v.TitleID, v.Version)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(v.Current) == 0 {
		fmt.Fprintln(w, "  no ballot: no choice counted")
	} else {
		fmt.Fprintln(tw, "  ASPECT\tCHOICE\tRECEIVED\tVOTE")
		for _, aspect := range sortedKeys(v.Current) {
			c := v.Current[aspect]
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", aspect, c.Choice, c.ReceivedAt.Format(stampMilli), c.VoteID)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "the %d vote events behind it, oldest first:\n", len(v.Events))
	fmt.Fprintln(tw, "  RECEIVED\tSUBMISSION\tASPECT\tCHOICE\tCOUNTS\tVOTE")
	for _, e := range v.Events {
		counts := "superseded"
		if e.Counts {
			counts = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", e.ReceivedAt.Format(stampMilli), e.SubmissionID, e.Aspect, e.Choice, counts, e.VoteID)
	}
	tw.Flush()
	if !v.Matches {
		fmt.Fprintln(w, "the ballot does not hold the latest vote of every aspect yet: the projector has not caught up with these events (or, once idle, votes verify will say more)")
	}
	return nil
}

const stampMilli = "2006-01-02 15:04:05.000 UTC"
