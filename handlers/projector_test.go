package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/handlers"
	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/infra/queue"
)

// The broken record of testdata/dynamodb-event.json: its choice is a
// boolean and its vote ID matches nothing.
const brokenSeq = "1405400000000002063282836"

func streamEvent(t *testing.T) events.DynamoDBEvent {
	t.Helper()
	var ev events.DynamoDBEvent
	loadEvent(t, "dynamodb-event.json", &ev)
	return ev
}

func streamFailures(resp events.DynamoDBEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// tallies asks the query function for a title's tallies, as a client would.
func tallies(t *testing.T, q *handlers.Query, titleID string) map[string]map[string]int64 {
	t.Helper()
	req := apiRequest(t, "apigw-v2-request-tallies.json")
	req.PathParameters["titleId"] = titleID
	req.RawPath = "/titles/" + titleID + "/tallies"
	resp, err := q.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET tallies of %s: status %d: %s", titleID, resp.StatusCode, resp.Body)
	}
	var body handlers.TallyBody
	decodeBody(t, resp, &body)
	if body.TitleID != titleID {
		t.Errorf("tallies of %q answered for %q", titleID, body.TitleID)
	}
	return body.Aspects
}

// sampleTallies are the tallies of the good records of the stream sample:
// alice overall up and story down, bob overall down, carol overall up.
var sampleTallies = map[string]map[string]int64{
	"overall": {"up": 2, "down": 1},
	"story":   {"up": 0, "down": 1},
}

func TestProjectorTalliesStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := functions.Projector(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())

	resp, err := p.Handle(context.Background(), streamEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("batch item failures %v; the broken record must not hold up the batch", streamFailures(resp))
	}
	if got := tallies(t, q, "tt0111161"); !reflect.DeepEqual(got, sampleTallies) {
		t.Errorf("tallies %v, want %v", got, sampleTallies)
	}

	failed := drain(t, f, f.cfg.FailuresURL)
	if len(failed) != 1 {
		t.Fatalf("%d messages on the failure queue, want the broken record", len(failed))
	}
	if reason := attr(failed[0], queue.AttrReason); !strings.HasPrefix(reason, "undecodable event:") {
		t.Errorf("reason %q, want one starting undecodable event:", reason)
	}
	if src := attr(failed[0], queue.AttrSource); src != "projector" {
		t.Errorf("source %q, want projector", src)
	}
	// The failure names the record, so that it can be found and replayed.
	var rec events.DynamoDBEventRecord
	if err := json.Unmarshal([]byte(aws.ToString(failed[0].Body)), &rec); err != nil {
		t.Fatalf("failure body is not the stream record: %v", err)
	}
	if rec.Change.SequenceNumber != brokenSeq || rec.Change.NewImage["voteId"].String() != "broken-vote-id" {
		t.Errorf("failure body is record %s with vote %s, want %s", rec.Change.SequenceNumber, rec.Change.NewImage["voteId"].String(), brokenSeq)
	}

	// Lambda retries a batch after a timeout: the tallies do not move.
	if resp, err := p.Handle(context.Background(), streamEvent(t)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivered batch: %v, failures %v", err, streamFailures(resp))
	}
	if got := tallies(t, q, "tt0111161"); !reflect.DeepEqual(got, sampleTallies) {
		t.Errorf("after redelivery tallies %v, want %v", got, sampleTallies)
	}
}

func TestProjectorLatestVoteWins(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := functions.Projector(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	ev := streamEvent(t)
	ev.Records = ev.Records[:4] // the good ones
	if resp, err := p.Handle(context.Background(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, failures %v", err, streamFailures(resp))
	}

	// Alice changes her overall vote to down in a later submission; an older
	// vote of carol's arrives late and changes nothing.
	later := voteRecord(domain.VoteCast{Schema: 1, SubmissionID: "sub-alice-2", VoterID: "alice", TitleID: "tt0111161",
		Aspect: "overall", Choice: "down", RecordedAt: 1700000100000000000}, "1405400000000002063282900")
	older := voteRecord(domain.VoteCast{Schema: 1, SubmissionID: "sub-carol-0", VoterID: "carol", TitleID: "tt0111161",
		Aspect: "overall", Choice: "down", RecordedAt: 1600000000000000000}, "1405400000000002063282901")
	batch := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{later, older}}
	if resp, err := p.Handle(context.Background(), batch); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, failures %v", err, streamFailures(resp))
	}
	want := map[string]map[string]int64{"overall": {"up": 1, "down": 2}, "story": {"up": 0, "down": 1}}
	if got := tallies(t, q, "tt0111161"); !reflect.DeepEqual(got, want) {
		t.Errorf("tallies %v, want %v", got, want)
	}
}

func TestProjectorIgnoresOtherThanInserts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := functions.Projector(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	ev := streamEvent(t)
	for i := range ev.Records {
		ev.Records[i].EventName = string(events.DynamoDBOperationTypeModify)
	}
	ev.Records[0].EventName = string(events.DynamoDBOperationTypeRemove)
	resp, err := p.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, failures %v", err, streamFailures(resp))
	}
	if got := tallies(t, q, "tt0111161"); len(got) != 0 {
		t.Errorf("tallies %v from records that are not inserts", got)
	}
	if msgs := drain(t, f, f.cfg.FailuresURL); len(msgs) != 0 {
		t.Errorf("%d failures from records that are not inserts", len(msgs))
	}
}

func TestProjectorKeepsBrokenRecordWhenFailureQueueFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.cfg
	cfg.FailuresURL = f.missingQueueURL(t)
	p := functions.Projector(cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())

	resp, err := p.Handle(context.Background(), streamEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := streamFailures(resp); !reflect.DeepEqual(got, []string{brokenSeq}) {
		t.Errorf("batch item failures %v, want the broken record %s", got, brokenSeq)
	}
	if got := tallies(t, q, "tt0111161"); !reflect.DeepEqual(got, sampleTallies) {
		t.Errorf("tallies %v, want %v", got, sampleTallies)
	}
}

func TestProjectorReportsFailedCells(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.cfg
	cfg.Tables.Ballots = cfg.Tables.Ballots + "-missing"
	p := functions.Projector(cfg, f.clients.DynamoDB, f.clients.SQS, discard())

	resp, err := p.Handle(context.Background(), streamEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	// Every good record failed, earliest first, so that Lambda retries from
	// the first; the broken one went to the failure queue instead.
	want := []string{"1405400000000002063282832", "1405400000000002063282833", "1405400000000002063282834", "1405400000000002063282835"}
	if got := streamFailures(resp); !reflect.DeepEqual(got, want) {
		t.Errorf("batch item failures %v, want %v", got, want)
	}
	if msgs := drain(t, f, f.cfg.FailuresURL); len(msgs) != 1 {
		t.Errorf("%d messages on the failure queue, want 1", len(msgs))
	}
}

func TestProjectorOrdersFailuresBySequenceNumber(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.cfg
	cfg.Tables.Ballots = cfg.Tables.Ballots + "-missing"
	p := functions.Projector(cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	// Sequence numbers of different lengths: 99 comes before 100.
	ev := streamEvent(t)
	ev.Records = ev.Records[:3]
	seqs := []string{"100", "99", "1000"}
	for i := range ev.Records {
		ev.Records[i].Change.SequenceNumber = seqs[i]
	}
	resp, err := p.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := streamFailures(resp), []string{"99", "100", "1000"}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch item failures %v, want %v", got, want)
	}
}

// voteRecord is a stream record of e as the event table stores it.
func voteRecord(e domain.VoteCast, seq string) events.DynamoDBEventRecord {
	e.VoteID = domain.VoteID(e.VoterID, e.TitleID, e.SubmissionID, e.Aspect)
	s := events.NewStringAttribute
	n := events.NewNumberAttribute
	img := map[string]events.DynamoDBAttributeValue{
		"cell":         s(e.Cell().String()),
		"voteId":       s(e.VoteID),
		"v":            n("1"),
		"submissionId": s(e.SubmissionID),
		"voterId":      s(e.VoterID),
		"titleId":      s(e.TitleID),
		"aspect":       s(e.Aspect),
		"choice":       s(e.Choice),
		"recordedAt":   n(strconv.FormatInt(e.RecordedAt, 10)),
	}
	return events.DynamoDBEventRecord{
		EventName:   string(events.DynamoDBOperationTypeInsert),
		EventSource: "aws:dynamodb",
		Change: events.DynamoDBStreamRecord{
			Keys:           map[string]events.DynamoDBAttributeValue{"cell": img["cell"], "voteId": img["voteId"]},
			NewImage:       img,
			SequenceNumber: seq,
			StreamViewType: "NEW_IMAGE",
		},
	}
}

// TestProjectorRetriesNewerSchema: a record of a newer event schema was
// written by newer code during a deploy. It is reported failed (retried)
// for an hour from its creation, then goes to the failure queue with that
// reason; the other records are projected either way.
func TestProjectorRetriesNewerSchema(t *testing.T) {
	t.Parallel()
	const newerSeq = "1405400000000002063282832" // alice overall up
	withoutAlice := map[string]map[string]int64{"overall": {"up": 1, "down": 1}, "story": {"up": 0, "down": 1}}
	for _, tt := range []struct {
		name    string
		created time.Duration // ago
		dead    bool
	}{
		{name: "during a deploy", created: 5 * time.Minute},
		{name: "over an hour old", created: 61 * time.Minute, dead: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			p := functions.Projector(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
			q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
			ev := streamEvent(t)
			rec := &ev.Records[0]
			if rec.Change.SequenceNumber != newerSeq {
				t.Fatalf("sample changed: first record %s", rec.Change.SequenceNumber)
			}
			// A newer writer may change the shape in any other way too.
			rec.Change.NewImage["v"] = events.NewNumberAttribute(strconv.Itoa(domain.EventSchema + 1))
			rec.Change.NewImage["choice"] = events.NewBooleanAttribute(true)
			rec.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: time.Now().Add(-tt.created)}

			resp, err := p.Handle(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, m := range drain(t, f, f.cfg.FailuresURL) {
				reasons = append(reasons, attr(m, queue.AttrReason))
			}
			if !tt.dead {
				if got := streamFailures(resp); !reflect.DeepEqual(got, []string{newerSeq}) {
					t.Errorf("batch item failures %v, want the newer record %s retried", got, newerSeq)
				}
				if len(reasons) != 1 || !strings.HasPrefix(reasons[0], "undecodable event:") {
					t.Errorf("failure queue %q, want only the broken record", reasons)
				}
			} else {
				if got := streamFailures(resp); len(got) != 0 {
					t.Errorf("batch item failures %v after the hour", got)
				}
				want := fmt.Sprintf("schema version %d is newer than this projector understands (%s), for over 1h", domain.EventSchema+1, domain.ReadableEventSchemas())
				if !slices.Contains(reasons, want) || len(reasons) != 2 {
					t.Errorf("failure queue %q, want the newer record with %q and the broken one", reasons, want)
				}
			}
			if got := tallies(t, q, "tt0111161"); !reflect.DeepEqual(got, withoutAlice) {
				t.Errorf("tallies %v, want the other records projected: %v", got, withoutAlice)
			}
		})
	}
}

// TestProjectorReadsSubmissionItems: the processor stores a submission's
// votes as one item (event schema 2); its stream record counts every vote,
// and records of one-vote items (schema 1) in the same batch still count.
func TestProjectorReadsSubmissionItems(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := functions.Projector(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	sub := domain.Submission{VoterID: "dora", TitleID: "tt0111161", Votes: []domain.Choice{
		{Aspect: "overall", Choice: "up"}, {Aspect: "story", Choice: "down"}, {Aspect: "acting", Choice: "up"}}}
	item, err := dynamo.SubmissionItem(sub.Accept("k-1", time.Unix(1700000000, 0)).Events())
	if err != nil {
		t.Fatal(err)
	}
	img := map[string]events.DynamoDBAttributeValue{}
	for name, av := range item {
		switch v := av.(type) {
		case *dbtypes.AttributeValueMemberS:
			img[name] = events.NewStringAttribute(v.Value)
		case *dbtypes.AttributeValueMemberN:
			img[name] = events.NewNumberAttribute(v.Value)
		}
	}
	old := voteRecord(domain.VoteCast{SubmissionID: "sub-eve-1", VoterID: "eve", TitleID: "tt0111161",
		Aspect: "overall", Choice: "down", RecordedAt: 1700000001000000000}, "200")
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{
		EventName: string(events.DynamoDBOperationTypeInsert), EventSource: "aws:dynamodb",
		Change: events.DynamoDBStreamRecord{NewImage: img, SequenceNumber: "100", StreamViewType: "NEW_IMAGE"},
	}, old}}
	if resp, err := p.Handle(context.Background(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%v, failures %v", err, streamFailures(resp))
	}
	want := map[string]map[string]int64{"overall": {"up": 1, "down": 1}, "story": {"up": 0, "down": 1}, "acting": {"up": 1, "down": 0}}
	if got := tallies(t, q, "tt0111161"); !reflect.DeepEqual(got, want) {
		t.Errorf("tallies %v, want %v", got, want)
	}
}
