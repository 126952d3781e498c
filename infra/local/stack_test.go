package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/infra/local"
	"votes/infra/queue"
	"votes/internal/kumotest"
	"votes/projections"
)

// startStack runs a local stack on the test binary's emulator; flaky, when
// not nil, carries the functions' SDK calls, and overlap delivers every
// batch to two concurrent invocations.
func startStack(t *testing.T, flaky *faults.Transport, settings local.Settings, overlap bool) *local.Stack {
	t.Helper()
	s := startConfigured(t, local.Config{Settings: settings, Faults: flaky, Overlap: overlap})
	if flaky != nil {
		t.Cleanup(flaky.Off) // runs before the stack closes
	}
	return s
}

// startConfigured runs a local stack of cfg on the test binary's emulator,
// on a free port under the test's own stage, and closes it after the test.
func startConfigured(t *testing.T, cfg local.Config) *local.Stack {
	t.Helper()
	opts := kumotest.Options(nil)
	cfg.Addr, cfg.Stage, cfg.Endpoint, cfg.Retryer = "127.0.0.1:0", kumotest.Stage(t), opts.Endpoint, opts.Retryer
	s, err := local.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

type submission struct {
	VoterID string                     `json:"voterId"`
	TitleID string                     `json:"titleId"`
	Votes   []map[string]string        `json:"votes"`
	Extra   map[string]json.RawMessage `json:"-"`
}

func post(t *testing.T, url, key string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url+"/votes", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// getTallies reads a title's tallies over HTTP once the read bound has
// passed, so that they show every vote tallied before the call.
func getTallies(t *testing.T, s *local.Stack, title string) projections.Counts {
	t.Helper()
	time.Sleep(s.ReadBound)
	resp, err := http.Get(s.URL + "/titles/" + title + "/tallies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET tallies of %s: %d %s", title, resp.StatusCode, b)
	}
	var body struct {
		TitleID string             `json:"titleId"`
		Aspects projections.Counts `json:"aspects"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.TitleID != title {
		t.Fatalf("tallies of %s came back for %s", title, body.TitleID)
	}
	return body.Aspects
}

func waitIdle(t *testing.T, s *local.Stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatalf("pipeline did not go idle: %v", err)
	}
}

func deadLetters(t *testing.T, s *local.Stack, name string) []string {
	t.Helper()
	var reasons []string
	for {
		out, err := s.Clients.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(s.QueueURLs[name]), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return reasons
		}
		for _, m := range out.Messages {
			reason := aws.ToString(m.Body)
			if a, ok := m.MessageAttributes[queue.AttrReason]; ok {
				reason = aws.ToString(a.StringValue)
			}
			reasons = append(reasons, reason)
		}
	}
}

// TestVotesPostedOverHTTPAreTallied runs the stack as `votes dev --overlap
// --faults 0.05` does: every batch goes to two concurrent invocations, and
// 5% of the functions' SDK calls fail. Clients retry a 503 with the same
// Idempotency-Key, as the contract tells them to.
func TestVotesPostedOverHTTPAreTallied(t *testing.T) {
	flaky := faults.New(5)
	flaky.SetRate(0.05)
	s := startStack(t, flaky, local.FastSettings(), true)
	votesArePostedAndTallied(t, s, flaky)
}

// votesArePostedAndTallied posts votes over HTTP, retrying a 5xx under the
// same Idempotency-Key, and checks the tallies read back over HTTP; flaky,
// when not nil, carries the functions' SDK calls and is turned off before
// the tallies are read.
func votesArePostedAndTallied(t *testing.T, s *local.Stack, flaky *faults.Transport) {
	t.Helper()
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	n := 0
	vote := func(voter, title string, pairs ...string) string {
		var votes []map[string]string
		for i := 0; i < len(pairs); i += 2 {
			votes = append(votes, map[string]string{"aspect": pairs[i], "choice": pairs[i+1]})
		}
		n++
		key := fmt.Sprintf("sub-%d", n)
		for attempt := 0; ; attempt++ {
			code, body := post(t, s.URL, key, map[string]any{"voterId": voter, "titleId": title, "votes": votes})
			if code == http.StatusAccepted {
				return body["submissionId"].(string)
			}
			if code < 500 || attempt > 20 { // any 5xx is retried under the same key
				t.Fatalf("POST %s %s: %d %v", voter, title, code, body)
			}
		}
	}
	vote("u-1", "tt1", "story", "up", "Acting", "DOWN")
	vote("u-2", "tt1", "story", "up")
	vote("u-3", "tt1", "story", "down", "overall", "up")
	vote("u-1", "tt2", "visuals", "up")
	waitIdle(t, s)
	vote("u-3", "tt1", "story", "up") // u-3 changes their mind
	waitIdle(t, s)
	if flaky != nil {
		flaky.Off()
		t.Logf("%d SDK calls, %d failed before sending, %d after kumo applied them", flaky.Calls.Load(), flaky.FailedBefore.Load(), flaky.FailedAfter.Load())
	}
	t.Logf("%d processor and %d projector invocations", s.Usage()["processor"].Invocations, s.Usage()["projector"].Invocations)

	want := map[string]projections.Counts{
		"tt1": {"story": {"up": 3, "down": 0}, "acting": {"up": 0, "down": 1}, "overall": {"up": 1, "down": 0}},
		"tt2": {"visuals": {"up": 1, "down": 0}},
	}
	for title, w := range want {
		got := getTallies(t, s, title)
		if !got.Equal(w) {
			t.Errorf("%s: tallies %v, want %v", title, got, w)
		}
		if len(got) != len(w) {
			t.Errorf("%s: tallies show aspects %v, want only %v", title, got, w)
		}
	}
	if got := getTallies(t, s, "tt-none"); len(got) != 0 {
		t.Errorf("a title without votes shows %v", got)
	}
}

// TestNoVoteLostUnderFaults runs the whole pipeline with every SDK call of
// every function going through injected faults (calls failing before they
// reach kumo, after kumo applied them, and outages that kill whole batches
// mid-way), while clients post votes and retry on 503 with the same
// Idempotency-Key, as the contract tells them to; every batch goes to two
// concurrent invocations. Afterwards every vote that got a 202 is in the
// event table exactly once, nothing went to a dead-letter queue, and the
// tallies read over HTTP equal the fold of the event table.
func TestNoVoteLostUnderFaults(t *testing.T) {
	flaky := faults.New(42)
	s := startStack(t, flaky, local.FastSettings(), true)
	flaky.Set(0.08, 0.08, nil)
	stop := make(chan struct{})
	go func() { // outages: every call fails for a few milliseconds, now and then
		for {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
				flaky.Outage(3 * time.Millisecond)
			}
		}
	}()

	titles := []string{"tt-a", "tt-b", "tt-c"}
	aspects := []string{"overall", "story", "acting", "visuals", "soundtrack"}
	var (
		mu       sync.Mutex
		accepted = map[string]bool{} // vote IDs that got a 202
		wg       sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 40 {
				voter := fmt.Sprintf("u-%d", rng.IntN(15))
				n := 1 + rng.IntN(3)
				var votes []map[string]string
				for _, a := range rng.Perm(len(aspects))[:n] {
					votes = append(votes, map[string]string{"aspect": aspects[a], "choice": []string{"up", "down"}[rng.IntN(2)]})
				}
				key := fmt.Sprintf("k-%d-%d", w, i)
				body := map[string]any{"voterId": voter, "titleId": titles[rng.IntN(len(titles))], "votes": votes}
				for attempt := 0; ; attempt++ {
					code, out := post(t, s.URL, key, body)
					if code == http.StatusAccepted {
						mu.Lock()
						for _, id := range out["voteIds"].([]any) {
							accepted[id.(string)] = true
						}
						mu.Unlock()
						break
					}
					// Any 5xx may come after the queue took the submission (a
					// lost answer, or an invocation cut off by its timeout):
					// a client retries it under the same key.
					if code < 500 || attempt > 50 {
						t.Errorf("POST gave %d %v after %d attempts", code, out, attempt)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	time.Sleep(300 * time.Millisecond) // let the pipeline work under faults a while longer
	flaky.Off()
	waitIdle(t, s)
	t.Logf("%d SDK calls, %d failed before sending, %d failed after kumo applied them; %d votes accepted",
		flaky.Calls.Load(), flaky.FailedBefore.Load(), flaky.FailedAfter.Load(), len(accepted))
	if flaky.FailedBefore.Load() == 0 || flaky.FailedAfter.Load() == 0 {
		t.Fatal("no faults were injected; the test proves nothing")
	}

	events := kumotest.StoredEvents(t, s.Tables.Events)
	stored := map[string]int{}
	for _, e := range events {
		stored[e.VoteID]++
	}
	for id := range accepted {
		if stored[id] != 1 {
			t.Errorf("accepted vote %s is stored %d times", id, stored[id])
		}
	}
	for id := range stored {
		if !accepted[id] {
			t.Errorf("vote %s is stored but was never accepted", id)
		}
	}
	if dl := deadLetters(t, s, s.Queues.DeadLetters); len(dl) > 0 {
		t.Errorf("dead letters: %v", dl)
	}
	if dl := deadLetters(t, s, s.Queues.ProjectorFailed); len(dl) > 0 {
		t.Errorf("projector failures: %v", dl)
	}
	fold := projections.Fold(events)
	for _, title := range titles {
		if got := getTallies(t, s, title); !got.Equal(fold[title]) {
			t.Errorf("%s: tallies %v, fold of the event table %v; diff %v", title, got, fold[title], got.Diff(fold[title]))
		}
	}
}

func TestPoisonMessageGoesToDeadLetterQueueWithReason(t *testing.T) {
	s := startStack(t, nil, local.FastSettings(), false)
	if _, err := s.Clients.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(s.QueueURLs[s.Queues.Submissions]), MessageBody: aws.String(`{"v":1,"votes":"nonsense"`),
	}); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, s.URL, "", map[string]any{"voterId": "u-1", "titleId": "tt1", "votes": []map[string]string{{"aspect": "story", "choice": "up"}}}); code != http.StatusAccepted {
		t.Fatalf("POST: %d %v", code, body)
	}
	waitIdle(t, s)
	dl := deadLetters(t, s, s.Queues.DeadLetters)
	if len(dl) != 1 || !strings.HasPrefix(dl[0], "poison:") {
		t.Fatalf("dead letters %q, want the one poison message with its reason", dl)
	}
	if got := getTallies(t, s, "tt1"); !got.Equal(projections.Counts{"story": {"up": 1}}) {
		t.Fatalf("the good vote was held up: tallies %v", got)
	}
}

// TestMessageFailingPastTheRetryLimitIsDeadLetteredWithReason: a message
// that keeps failing is retried until it has failed for longer than the
// limit, then the processor dead-letters it with the reason (SQS's own
// redrive, at 100 receives, is never reached).
func TestMessageFailingPastTheRetryLimitIsDeadLetteredWithReason(t *testing.T) {
	flaky := faults.New(3)
	settings := local.FastSettings()
	settings.Retry.Failing = 1500 * time.Millisecond // the visibility timeout is 1 s
	s := startStack(t, flaky, settings, false)
	// Every write of one voter's vote fails; everyone else's goes through.
	flaky.Set(1, 0, func(target, body string) bool {
		return faults.Action(target, "PutItem") && strings.Contains(body, "u-doomed")
	})
	for _, voter := range []string{"u-doomed", "u-1", "u-2"} {
		if code, body := post(t, s.URL, "", map[string]any{"voterId": voter, "titleId": "tt1", "votes": []map[string]string{{"aspect": "story", "choice": "up"}}}); code != http.StatusAccepted {
			t.Fatalf("POST: %d %v", code, body)
		}
	}
	waitIdle(t, s)
	dl := deadLetters(t, s, s.Queues.DeadLetters)
	if len(dl) != 1 || !strings.Contains(dl[0], "gave up after failing for over 1.5s") || !strings.Contains(dl[0], faults.ErrInjected.Error()) {
		t.Fatalf("dead letters %q, want the doomed message with the reason it failed", dl)
	}
	m := regexp.MustCompile(`\((\d+) receives\)`).FindStringSubmatch(dl[0])
	if m == nil {
		t.Fatalf("dead letter %q does not say how often it was received", dl[0])
	}
	if n, _ := strconv.Atoi(m[1]); n < 2 {
		t.Errorf("dead letter %q: want it retried before it was given up", dl[0])
	}
	if got := getTallies(t, s, "tt1"); !got.Equal(projections.Counts{"story": {"up": 2}}) {
		t.Fatalf("the other votes were held up: tallies %v", got)
	}
}

func TestUndecodableStreamRecordGoesToFailureQueue(t *testing.T) {
	s := startStack(t, nil, local.FastSettings(), false)
	// An item in the event table that is not a valid event (no vote fields).
	if _, err := s.Clients.DynamoDB.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(s.Tables.Events),
		Item: map[string]types.AttributeValue{
			dynamo.AttrCell:   &types.AttributeValueMemberS{Value: "tt1#00"},
			dynamo.AttrVoteID: &types.AttributeValueMemberS{Value: "broken"},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, s.URL, "", map[string]any{"voterId": "u-1", "titleId": "tt1", "votes": []map[string]string{{"aspect": "story", "choice": "down"}}}); code != http.StatusAccepted {
		t.Fatalf("POST: %d %v", code, body)
	}
	waitIdle(t, s)
	// The repairer tries the record again, and dead-letters it for good.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitRepaired(ctx); err != nil {
		t.Fatal(err)
	}
	dl := deadLetters(t, s, s.Queues.RepairFailed)
	if len(dl) != 1 || !strings.Contains(dl[0], "still undecodable") {
		t.Fatalf("repair dead letters %q, want the broken record with its reason", dl)
	}
	if got := getTallies(t, s, "tt1"); !got.Equal(projections.Counts{"story": {"down": 1}}) {
		t.Fatalf("the good vote was held up: tallies %v", got)
	}
}
