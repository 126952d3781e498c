package handlers_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"votes/domain"
	"votes/handlers"
	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/projections"
)

// Two submissions under one Idempotency-Key with different votes are two
// submissions: both are stored, and the one the receiver took later wins
// every aspect it votes on, whatever order the processor sees them in. A
// retry with the same votes is stored once. Each run goes through the real
// receiver, queue, processor and event table; the ballot is folded from
// the stored events by the projection's own Ballot.
func TestIdempotencyKeyReusedWithOtherContent(t *testing.T) {
	t.Parallel()
	const runs = 50
	const title = "tt0111161"
	f := newFixture(t)
	recv := functions.Receiver(f.cfg, f.clients.SQS, nil, discard())
	proc := functions.Processor(f.cfg, f.clients.DynamoDB, f.clients.SQS, discard())

	t.Run("sequential", func(t *testing.T) {
		// {story:up}, then {story:down, acting:up} under the same key, each
		// sent twice, as a client retries after a lost response.
		first := `{"voterId":"%s","titleId":"` + title + `","votes":[{"aspect":"story","choice":"up"}]}`
		second := `{"voterId":"%s","titleId":"` + title + `","votes":[{"aspect":"story","choice":"down"},{"aspect":"acting","choice":"up"}]}`
		for run := range runs {
			voter := fmt.Sprintf("seq-%02d", run)
			var answers []string
			for _, body := range []string{first, first, second, second} {
				answers = append(answers, postVote(t, recv, "reused-key", fmt.Sprintf(body, voter)).SubmissionID)
			}
			if !slices.Equal(answers, []string{"reused-key", "reused-key", "reused-key", "reused-key"}) {
				t.Fatalf("run %d: submission IDs answered %v, want the key each time", run, answers)
			}
			msgs := queuedInReceiveOrder(t, f, 4)
			process(t, proc, run, msgs)

			stored := voterEvents(t, f, voter, title)
			if len(stored) != 3 {
				t.Errorf("run %d: %d events stored, want 3 (each submission once, both in full)", run, len(stored))
			}
			if got, want := ballotOf(voter, title, stored), map[string]string{"story": "down", "acting": "up"}; !maps.Equal(got, want) {
				t.Errorf("run %d (delivery %s): ballot %v, want the later submission's %v", run, deliveries[run%len(deliveries)], got, want)
			}
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		bodies := map[string]string{
			"A": `{"voterId":"%s","titleId":"` + title + `","votes":[{"aspect":"story","choice":"up"},{"aspect":"acting","choice":"down"}]}`,
			"B": `{"voterId":"%s","titleId":"` + title + `","votes":[{"aspect":"story","choice":"down"},{"aspect":"acting","choice":"up"}]}`,
		}
		contents := map[string]map[string]string{
			"A": {"story": "up", "acting": "down"},
			"B": {"story": "down", "acting": "up"},
		}
		laterWins := map[string]int{}
		for run, tries := 0, 0; run < runs; tries++ {
			if tries > 2*runs {
				t.Fatalf("only %d of %d tries got two distinct receive times", run, tries)
			}
			voter := fmt.Sprintf("con-%03d", tries)
			start := make(chan struct{})
			errs := make(chan error, 2)
			var wg sync.WaitGroup
			names := []string{"A", "B"}
			if tries%2 == 1 {
				slices.Reverse(names)
			}
			for _, name := range names {
				req := voteRequest(t, "reused-key", fmt.Sprintf(bodies[name], voter))
				wg.Go(func() {
					<-start
					_, err := tryPostVote(recv, req)
					errs <- err
				})
			}
			close(start)
			wg.Wait()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			msgs := queuedInReceiveOrder(t, f, 2)
			if msgs[0].accepted.ReceivedAt == msgs[1].accepted.ReceivedAt {
				// Within one nanosecond vote IDs break the tie, aspect by
				// aspect; this test is about receipts that can be told apart.
				process(t, proc, run, msgs)
				continue
			}
			later := "A"
			if msgs[1].accepted.Votes[0].Choice == "down" { // story: B votes down
				later = "B"
			}
			process(t, proc, run, msgs)

			stored := voterEvents(t, f, voter, title)
			if len(stored) != 4 {
				t.Errorf("run %d: %d events stored, want both submissions' 4", run, len(stored))
			}
			if got := ballotOf(voter, title, stored); !maps.Equal(got, contents[later]) {
				t.Errorf("run %d (delivery %s): ballot %v, want %v of %s, received later", run, deliveries[run%len(deliveries)], got, contents[later], later)
			}
			laterWins[later]++
			run++
		}
		t.Logf("later receipt: %v", laterWins)
	})
}

// postVote posts body under key through the receiver and wants a 202.
func postVote(t *testing.T, recv *handlers.Receiver, key, body string) acceptedBody {
	t.Helper()
	out, err := tryPostVote(recv, voteRequest(t, key, body))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// voteRequest is the captured request without authorizer, carrying body
// under key.
func voteRequest(t *testing.T, key, body string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	req := apiRequest(t, "apigw-v2-request-no-authorizer.json")
	req.Headers["idempotency-key"] = key
	req.Body = body
	return req
}

// tryPostVote is postVote for other goroutines than the test's: it
// reports what went wrong rather than failing the test.
func tryPostVote(recv *handlers.Receiver, req events.APIGatewayV2HTTPRequest) (acceptedBody, error) {
	body := req.Body
	resp, err := recv.Handle(context.Background(), req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return acceptedBody{}, fmt.Errorf("POST %s: status %d, %v: %s", body, resp.StatusCode, err, resp.Body)
	}
	var out acceptedBody
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return acceptedBody{}, fmt.Errorf("POST %s: response %s: %w", body, resp.Body, err)
	}
	return out, nil
}

type queuedMessage struct {
	msg      sqstypes.Message
	accepted domain.Accepted
}

// queuedInReceiveOrder drains the submissions queue, wants n messages and
// sorts them by the receiver's clock.
func queuedInReceiveOrder(t *testing.T, f fixture, n int) []queuedMessage {
	t.Helper()
	var out []queuedMessage
	for _, m := range drain(t, f, f.cfg.SubmissionsURL) {
		a, err := domain.DecodeAccepted([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, queuedMessage{m, a})
	}
	if len(out) != n {
		t.Fatalf("%d messages queued, want %d", len(out), n)
	}
	slices.SortFunc(out, func(a, b queuedMessage) int { return cmp.Compare(a.accepted.ReceivedAt, b.accepted.ReceivedAt) })
	return out
}

// deliveries are the orders in which runs hand the queued messages to the
// processor: SQS standard queues promise no order.
var deliveries = []string{"in receive order", "latest first", "all in one batch, appended concurrently"}

func process(t *testing.T, proc *handlers.Processor, run int, msgs []queuedMessage) {
	t.Helper()
	record := func(m queuedMessage) events.SQSMessage {
		return events.SQSMessage{MessageId: aws.ToString(m.msg.MessageId), Body: aws.ToString(m.msg.Body),
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
	}
	var batches [][]events.SQSMessage
	switch run % len(deliveries) {
	case 0:
		for _, m := range msgs {
			batches = append(batches, []events.SQSMessage{record(m)})
		}
	case 1:
		for _, m := range slices.Backward(msgs) {
			batches = append(batches, []events.SQSMessage{record(m)})
		}
	case 2:
		var all []events.SQSMessage
		for _, m := range msgs {
			all = append(all, record(m))
		}
		batches = append(batches, all)
	}
	for _, b := range batches {
		resp, err := proc.Handle(context.Background(), events.SQSEvent{Records: b})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("process: %v, failures %v", err, failedIDs(resp))
		}
	}
}

// voterEvents reads a voter's stored events on a title back from the event
// table: the cell's partition, filtered to the voter.
func voterEvents(t *testing.T, f fixture, voter, title string) []domain.VoteCast {
	t.Helper()
	out, err := f.clients.DynamoDB.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(f.cfg.Tables.Events),
		KeyConditionExpression:    aws.String("#cell = :cell"),
		ExpressionAttributeNames:  map[string]string{"#cell": dynamo.AttrCell},
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":cell": &dbtypes.AttributeValueMemberS{Value: domain.CellOf(title, voter).String()}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var evs []domain.VoteCast
	for _, item := range out.Items {
		votes, err := dynamo.DecodeEvent(item)
		if err != nil {
			t.Fatal(err)
		}
		if votes[0].VoterID == voter {
			evs = append(evs, votes...)
		}
	}
	return evs
}

// ballotOf folds events into a ballot as the projection does and gives
// what it counts for: aspect -> choice.
func ballotOf(voter, title string, evs []domain.VoteCast) map[string]string {
	b := projections.NewBallot(voter, title)
	for _, e := range evs {
		b.Apply(e)
	}
	out := map[string]string{}
	for aspect, cur := range b.Aspects {
		out[aspect] = cur.Choice
	}
	return out
}
