package handlers_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"votes/domain"
	"votes/handlers"
	"votes/infra/faults"
	"votes/infra/functions"
	"votes/internal/kumotest"
)

type acceptedBody struct {
	SubmissionID string   `json:"submissionId"`
	VoteIDs      []string `json:"voteIds"`
}

// queued is the one message on the submissions queue, decoded as the
// processor decodes it.
func queued(t *testing.T, f fixture) domain.Accepted {
	t.Helper()
	msgs := drain(t, f, f.cfg.SubmissionsURL)
	if len(msgs) != 1 {
		t.Fatalf("%d messages on the submissions queue, want 1", len(msgs))
	}
	a, err := domain.DecodeAccepted([]byte(*msgs[0].Body))
	if err != nil {
		t.Fatalf("queued message does not decode: %v\n%s", err, *msgs[0].Body)
	}
	return a
}

// submissionOf is the queued submission ID of votes sent under key: the
// key joined to the digest of the votes.
func submissionOf(key string, votes ...domain.Choice) string {
	return key + "." + domain.Submission{Votes: votes}.Digest()
}

func TestReceiverQueuesSubmission(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Receiver(f.cfg, f.clients.SQS, nil, discard())
	req := apiRequest(t, "apigw-v2-request-no-authorizer.json")

	before := time.Now()
	resp, err := h.Handle(context.Background(), req)
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, resp.Body)
	}
	var body acceptedBody
	decodeBody(t, resp, &body)
	if body.SubmissionID == "" {
		t.Fatal("no submissionId")
	}

	a := queued(t, f)
	id := submissionOf(body.SubmissionID, domain.Choice{Aspect: "overall", Choice: "up"}, domain.Choice{Aspect: "story", Choice: "down"})
	if a.SubmissionID != id {
		t.Errorf("queued submission %q, want the answered %q and the votes' digest: %q", a.SubmissionID, body.SubmissionID, id)
	}
	if !reflect.DeepEqual(a.VoteIDs(), body.VoteIDs) {
		t.Errorf("queued vote IDs %v, answered %v", a.VoteIDs(), body.VoteIDs)
	}
	// The voter is trimmed and aspect and choice folded to lower case.
	want := []domain.VoteCast{
		{Schema: domain.EventSchema, VoteID: domain.VoteID("alice", "tt0111161", id, "overall"), SubmissionID: id, VoterID: "alice", TitleID: "tt0111161", Aspect: "overall", Choice: "up", RecordedAt: a.ReceivedAt},
		{Schema: domain.EventSchema, VoteID: domain.VoteID("alice", "tt0111161", id, "story"), SubmissionID: id, VoterID: "alice", TitleID: "tt0111161", Aspect: "story", Choice: "down", RecordedAt: a.ReceivedAt},
	}
	if got := a.Events(); !reflect.DeepEqual(got, want) {
		t.Errorf("queued events %+v\nwant %+v", got, want)
	}
	if a.ReceivedAt < before.UnixNano() || a.ReceivedAt > after.UnixNano() {
		t.Errorf("receivedAt %d is not the time of the request", a.ReceivedAt)
	}
}

func TestReceiverIdempotencyKeyIsSubmissionID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Receiver(f.cfg, f.clients.SQS, nil, discard())
	req := apiRequest(t, "apigw-v2-request-no-authorizer.json")
	req.Headers["idempotency-key"] = "retry-7f3a_1"

	var answers []acceptedBody
	for range 2 { // the client retries after a lost response
		resp, err := h.Handle(context.Background(), req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, %v: %s", resp.StatusCode, err, resp.Body)
		}
		var body acceptedBody
		decodeBody(t, resp, &body)
		answers = append(answers, body)
	}
	id := submissionOf("retry-7f3a_1", domain.Choice{Aspect: "overall", Choice: "up"}, domain.Choice{Aspect: "story", Choice: "down"})
	want := acceptedBody{SubmissionID: "retry-7f3a_1", VoteIDs: []string{
		domain.VoteID("alice", "tt0111161", id, "overall"),
		domain.VoteID("alice", "tt0111161", id, "story"),
	}}
	for i, got := range answers {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("answer %d: %+v, want %+v", i, got, want)
		}
	}
	// Each try is queued; the processor stores the votes once by their IDs.
	msgs := drain(t, f, f.cfg.SubmissionsURL)
	if len(msgs) != 2 {
		t.Fatalf("%d messages queued, want 2", len(msgs))
	}
	for _, m := range msgs {
		a, err := domain.DecodeAccepted([]byte(*m.Body))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.VoteIDs(), want.VoteIDs) {
			t.Errorf("queued vote IDs %v, want %v", a.VoteIDs(), want.VoteIDs)
		}
	}
}

func TestReceiverWithoutIdempotencyKeyGivesFreshSubmissions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Receiver(f.cfg, f.clients.SQS, nil, discard())
	req := apiRequest(t, "apigw-v2-request-no-authorizer.json")
	ids := map[string]bool{}
	for range 3 {
		resp, err := h.Handle(context.Background(), req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, %v: %s", resp.StatusCode, err, resp.Body)
		}
		var body acceptedBody
		decodeBody(t, resp, &body)
		if !domain.ValidIdempotencyKey(body.SubmissionID) {
			t.Errorf("generated submission ID %q could not be sent back as an Idempotency-Key", body.SubmissionID)
		}
		ids[body.SubmissionID] = true
	}
	if len(ids) != 3 {
		t.Errorf("3 submissions without a key got %d distinct IDs", len(ids))
	}
}

func TestReceiverTakesVoterFromJWT(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Receiver(f.cfg, f.clients.SQS, nil, discard())
	req := apiRequest(t, "apigw-v2-request-jwt-authorizer.json")
	const sub = "auth0|5f7c8ec7c33c6c004bbafe82"

	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, resp.Body)
	}
	var body acceptedBody
	decodeBody(t, resp, &body)
	// The subject is no voter ID ("|"): the voter is a hash of it.
	const voter = "h:igveq6eh4pcfygnsisfs6a3fklyawldy4i4unu4qu7uen5vnldqq"
	a := queued(t, f)
	if a.VoterID != voter {
		t.Errorf("voter %q, want %q for the JWT subject %q", a.VoterID, voter, sub)
	}
	if want := []string{domain.VoteID(voter, "tt0068646", submissionOf(body.SubmissionID, domain.Choice{Aspect: "acting", Choice: "up"}), "acting")}; !reflect.DeepEqual(body.VoteIDs, want) {
		t.Errorf("vote IDs %v, want %v", body.VoteIDs, want)
	}
	if a.OccurredAt != "2020-03-12T19:03:58Z" {
		t.Errorf("occurredAt %q, want the client's time in UTC", a.OccurredAt)
	}

	// The same voter named in the body as well is fine.
	req.Body = `{"voterId":"` + sub + `","titleId":"tt0068646","votes":[{"aspect":"acting","choice":"down"}]}`
	resp, err = h.Handle(context.Background(), req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("voterId equal to the subject: status %d, %v: %s", resp.StatusCode, err, resp.Body)
	}
	if a := queued(t, f); a.VoterID != voter {
		t.Errorf("voter %q, want %q", a.VoterID, voter)
	}
}

func TestReceiverBase64Body(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Receiver(f.cfg, f.clients.SQS, nil, discard())
	req := apiRequest(t, "apigw-v2-request-no-authorizer.json")
	req.Body = base64.StdEncoding.EncodeToString([]byte(req.Body))
	req.IsBase64Encoded = true

	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, resp.Body)
	}
	if a := queued(t, f); a.VoterID != "alice" || len(a.Votes) != 2 {
		t.Errorf("queued %+v", a)
	}
}

func TestReceiverRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Receiver(f.cfg, f.clients.SQS, nil, discard())
	body := func(s string) func(*events.APIGatewayV2HTTPRequest) {
		return func(r *events.APIGatewayV2HTTPRequest) { r.Body = s }
	}
	header := func(name, value string) func(*events.APIGatewayV2HTTPRequest) {
		return func(r *events.APIGatewayV2HTTPRequest) { r.Headers[name] = value }
	}
	method := func(m string) func(*events.APIGatewayV2HTTPRequest) {
		return func(r *events.APIGatewayV2HTTPRequest) { r.RequestContext.HTTP.Method = m }
	}
	votes := `"votes":[{"aspect":"overall","choice":"up"}]`
	tests := []struct {
		name   string
		sample string // default: the request without authorizer
		change func(*events.APIGatewayV2HTTPRequest)
		status int
		code   string
		field  string
	}{
		{name: "GET", change: method("GET"), status: 405, code: handlers.CodeMethodNotAllowed},
		{name: "PUT", change: method("PUT"), status: 405, code: handlers.CodeMethodNotAllowed},
		{name: "text/plain", change: header("content-type", "text/plain"),
			status: 415, code: handlers.CodeUnsupportedMediaType, field: "Content-Type"},
		{name: "form", change: header("content-type", "application/x-www-form-urlencoded"),
			status: 415, code: handlers.CodeUnsupportedMediaType, field: "Content-Type"},
		{name: "no content type", change: func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, "content-type") },
			status: 415, code: handlers.CodeUnsupportedMediaType, field: "Content-Type"},
		{name: "17 KiB body", change: body(`{"voterId":"v","titleId":"t",` + votes + `,"pad":"` + strings.Repeat("x", 17<<10) + `"}`),
			status: 413, code: domain.CodeBodyTooLarge},
		{name: "17 KiB body, base64", change: func(r *events.APIGatewayV2HTTPRequest) {
			r.Body = base64.StdEncoding.EncodeToString([]byte(`{"voterId":"v","titleId":"t",` + votes + `}` + strings.Repeat(" ", 17<<10)))
			r.IsBase64Encoded = true
		}, status: 413, code: domain.CodeBodyTooLarge},
		{name: "bad base64", change: func(r *events.APIGatewayV2HTTPRequest) { r.IsBase64Encoded = true; r.Body = "{not base64" },
			status: 400, code: domain.CodeInvalidJSON},
		{name: "malformed JSON", change: body(`{"voterId":"v",`), status: 400, code: domain.CodeInvalidJSON},
		{name: "empty body", change: body(``), status: 400, code: domain.CodeInvalidJSON},
		{name: "unknown field", change: body(`{"voterId":"v","titleId":"t",` + votes + `,"weight":10}`),
			status: 400, code: domain.CodeUnknownField, field: "weight"},
		{name: "missing voterId", change: body(`{"titleId":"t",` + votes + `}`),
			status: 400, code: domain.CodeMissingField, field: "voterId"},
		{name: "invalid titleId", change: body(`{"voterId":"v","titleId":"a/b",` + votes + `}`),
			status: 400, code: domain.CodeInvalidField, field: "titleId"},
		{name: "missing votes", change: body(`{"voterId":"v","titleId":"t"}`),
			status: 400, code: domain.CodeMissingField, field: "votes"},
		{name: "empty votes", change: body(`{"voterId":"v","titleId":"t","votes":[]}`),
			status: 400, code: domain.CodeInvalidField, field: "votes"},
		{name: "six votes", change: body(`{"voterId":"v","titleId":"t","votes":[` + strings.Repeat(`{"aspect":"overall","choice":"up"},`, 5) + `{"aspect":"story","choice":"up"}]}`),
			status: 400, code: domain.CodeInvalidField, field: "votes"},
		{name: "unknown aspect", change: body(`{"voterId":"v","titleId":"t","votes":[{"aspect":"popcorn","choice":"up"}]}`),
			status: 400, code: domain.CodeInvalidField, field: "votes[0].aspect"},
		{name: "unknown choice", change: body(`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"meh"}]}`),
			status: 400, code: domain.CodeInvalidField, field: "votes[0].choice"},
		{name: "duplicate aspect", change: body(`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"},{"aspect":"Overall","choice":"down"}]}`),
			status: 400, code: domain.CodeDuplicateAspect, field: "votes[1].aspect"},
		{name: "invalid occurredAt", change: body(`{"voterId":"v","titleId":"t",` + votes + `,"occurredAt":"12/03/2020"}`),
			status: 400, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "Idempotency-Key with a space", change: header("idempotency-key", "my key"),
			status: 400, code: domain.CodeInvalidField, field: "Idempotency-Key"},
		{name: "Idempotency-Key with a dot", change: header("idempotency-key", "a.b"),
			status: 400, code: domain.CodeInvalidField, field: "Idempotency-Key"},
		{name: "Idempotency-Key empty", change: header("idempotency-key", ""),
			status: 400, code: domain.CodeInvalidField, field: "Idempotency-Key"},
		{name: "Idempotency-Key blank", change: header("Idempotency-Key", "  "),
			status: 400, code: domain.CodeInvalidField, field: "Idempotency-Key"},
		{name: "duplicate voterId", change: body(`{"voterId":"v","titleId":"t",` + votes + `,"voterId":"w"}`),
			status: 400, code: domain.CodeDuplicateField, field: "voterId"},
		{name: "duplicate choice", change: body(`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up","choice":"down"}]}`),
			status: 400, code: domain.CodeDuplicateField, field: "votes[0].choice"},
		{name: "Kelvin sign in an aspect", change: body(`{"voterId":"v","titleId":"t","votes":[{"aspect":"stor\u212a","choice":"up"}]}`),
			status: 400, code: domain.CodeInvalidField, field: "votes[0].aspect"},
		{name: "occurredAt with a comma fraction", change: body(`{"voterId":"v","titleId":"t",` + votes + `,"occurredAt":"2024-03-01T08:00:00,5Z"}`),
			status: 400, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "Idempotency-Key 65 long", change: header("Idempotency-Key", strings.Repeat("k", 65)),
			status: 400, code: domain.CodeInvalidField, field: "Idempotency-Key"},
		{name: "JWT subject differs from voterId", sample: "apigw-v2-request-jwt-authorizer.json",
			change: body(`{"voterId":"someone-else","titleId":"tt0068646",` + votes + `}`),
			status: 403, code: domain.CodeVoterMismatch, field: "voterId"},
		{name: "JWT sample with a bad title", sample: "apigw-v2-request-jwt-authorizer.json",
			change: body(`{"titleId":"tt 1",` + votes + `}`),
			status: 400, code: domain.CodeInvalidField, field: "titleId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sample := tt.sample
			if sample == "" {
				sample = "apigw-v2-request-no-authorizer.json"
			}
			req := apiRequest(t, sample)
			tt.change(&req)
			resp, err := h.Handle(context.Background(), req)
			if err != nil {
				t.Fatalf("Handle returned an error: %v", err)
			}
			eb := errorOf(t, resp, tt.status)
			if eb.Error.Code != tt.code || eb.Error.Field != tt.field {
				t.Errorf("error code %q field %q, want %q %q", eb.Error.Code, eb.Error.Field, tt.code, tt.field)
			}
			if tt.status == 405 && resp.Headers["allow"] != "POST" {
				t.Errorf("405 without allow: POST (headers %v)", resp.Headers)
			}
			if msgs := drain(t, f, f.cfg.SubmissionsURL); len(msgs) != 0 {
				t.Errorf("a refused request queued %d messages: %s", len(msgs), *msgs[0].Body)
			}
		})
	}
}

func TestReceiverUnavailableQueue(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.cfg
	cfg.SubmissionsURL = f.missingQueueURL(t)
	h := functions.Receiver(cfg, f.clients.SQS, nil, discard())
	req := apiRequest(t, "apigw-v2-request-no-authorizer.json")
	req.Headers["idempotency-key"] = "k1"

	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	eb := errorOf(t, resp, http.StatusServiceUnavailable)
	if eb.Error.Code != handlers.CodeUnavailable {
		t.Errorf("code %q, want %q", eb.Error.Code, handlers.CodeUnavailable)
	}
	// The client is told to retry, and nothing of the SDK's error leaks.
	if !strings.Contains(eb.Error.Message, "Idempotency-Key") {
		t.Errorf("message %q does not say how to retry", eb.Error.Message)
	}
	for _, leak := range []string{"sqs", "queue does not exist", "NonExistentQueue", cfg.SubmissionsURL} {
		if strings.Contains(strings.ToLower(resp.Body), strings.ToLower(leak)) {
			t.Errorf("response %s leaks %q", resp.Body, leak)
		}
	}
}

// TestReceiverRetryAfter503IsTheSameSubmission: a send SQS applied whose
// answer was lost gets the client a 503, yet the submission may be on the
// queue, more than once. The client's retry with the same Idempotency-Key
// is then the same submission: every queued copy carries the submission
// ID and vote IDs the retry's 202 gives, so the processor stores its
// votes once.
func TestReceiverRetryAfter503IsTheSameSubmission(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	flaky := faults.New(1)
	h := functions.Receiver(f.cfg, kumotest.Clients(t, flaky.Client()).SQS, nil, discard())
	req := apiRequest(t, "apigw-v2-request-no-authorizer.json")
	req.Headers["idempotency-key"] = "k1"

	flaky.Set(0, 1, func(target, _ string) bool { return faults.Action(target, "SendMessage") })
	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || flaky.FailedAfter.Load() == 0 {
		t.Fatalf("sends applied with their answers lost: status %d (%d lost), want 503: %s", resp.StatusCode, flaky.FailedAfter.Load(), resp.Body)
	}
	flaky.Off()
	resp, err = h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry: status %d, want 202: %s", resp.StatusCode, resp.Body)
	}
	var got acceptedBody
	decodeBody(t, resp, &got)

	msgs := drain(t, f, f.cfg.SubmissionsURL)
	if want := flaky.FailedAfter.Load() + 1; int64(len(msgs)) != want {
		t.Fatalf("%d messages queued, want %d: one per applied send", len(msgs), want)
	}
	var first domain.Accepted
	for i, m := range msgs {
		a, err := domain.DecodeAccepted([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = a
		}
		if a.SubmissionID != first.SubmissionID || !strings.HasPrefix(a.SubmissionID, got.SubmissionID+".") || !slices.Equal(a.VoteIDs(), got.VoteIDs) {
			t.Fatalf("queued copies are submissions %s and %s with votes %v; the retry's 202 is %s with %v",
				first.SubmissionID, a.SubmissionID, a.VoteIDs(), got.SubmissionID, got.VoteIDs)
		}
	}
}

// Behind a JWT authorizer the token alone names the voter: a token without
// a usable subject is a 401, never leave to take the body's voterId, and a
// subject that is no voter ID is hashed rather than refused or stored as
// given.
func TestReceiverJWTFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Receiver(f.cfg, f.clients.SQS, nil, discard())
	withSub := func(sub string) func(*events.APIGatewayV2HTTPRequest) {
		return func(r *events.APIGatewayV2HTTPRequest) { r.RequestContext.Authorizer.JWT.Claims["sub"] = sub }
	}
	const body = `{"voterId":"alice","titleId":"tt0068646","votes":[{"aspect":"acting","choice":"up"}]}`
	tests := []struct {
		name   string
		sample string
		change func(*events.APIGatewayV2HTTPRequest)
		status int
		code   string
		voter  string // the queued voter, on a 202
	}{
		{name: "no sub claim, voterId in the body", sample: "apigw-v2-request-jwt-no-sub.json",
			change: func(*events.APIGatewayV2HTTPRequest) {}, status: 401, code: domain.CodeUnauthorized},
		{name: "no sub claim, not even JSON", sample: "apigw-v2-request-jwt-no-sub.json",
			change: func(r *events.APIGatewayV2HTTPRequest) { r.Headers["Content-Type"] = "text/plain"; r.Body = "x" },
			status: 401, code: domain.CodeUnauthorized},
		{name: "no claims at all", change: func(r *events.APIGatewayV2HTTPRequest) {
			r.RequestContext.Authorizer.JWT.Claims = nil
			r.Body = body
		}, status: 401, code: domain.CodeUnauthorized},
		{name: "empty sub", change: withSub(""), status: 401, code: domain.CodeUnauthorized},
		{name: "blank sub", change: withSub("  "), status: 401, code: domain.CodeUnauthorized},
		{name: "sub with a NUL", change: withSub("alice\x00"), status: 401, code: domain.CodeUnauthorized},
		{name: "sub with a line break", change: withSub("alice\nadmin"), status: 401, code: domain.CodeUnauthorized},
		{name: "sub of 1025 bytes", change: withSub(strings.Repeat("s", 1025)), status: 401, code: domain.CodeUnauthorized},

		{name: "sub a voter ID", change: withSub("248289761001"), status: 202, voter: "248289761001"},
		{name: "sub with a pipe", change: withSub("auth0|5f7c8ec7c33c6c004bbafe82"), status: 202,
			voter: "h:igveq6eh4pcfygnsisfs6a3fklyawldy4i4unu4qu7uen5vnldqq"},
		{name: "sub an e-mail address", change: withSub("alice@example.com"), status: 202,
			voter: "h:76gzqgp4byjl6djerexelgd6esncrxhig2ufzlla4khkvkgg3f3a"},
		{name: "sub with spaces, slash and hash", change: withSub("a b/c#d"), status: 202},
		{name: "sub of 1024 bytes", change: withSub(strings.Repeat("s", 1024)), status: 202},
		{name: "body voterId equal to the raw sub", change: func(r *events.APIGatewayV2HTTPRequest) {
			withSub("alice@example.com")(r)
			r.Body = `{"voterId":"alice@example.com","titleId":"tt0068646","votes":[{"aspect":"acting","choice":"up"}]}`
		}, status: 202, voter: "h:76gzqgp4byjl6djerexelgd6esncrxhig2ufzlla4khkvkgg3f3a"},
		{name: "body voterId other than the sub", change: func(r *events.APIGatewayV2HTTPRequest) {
			withSub("alice@example.com")(r)
			r.Body = body
		}, status: 403, code: domain.CodeVoterMismatch},
		{name: "body voterId the hashed voter, not the sub", change: func(r *events.APIGatewayV2HTTPRequest) {
			withSub("alice@example.com")(r)
			r.Body = `{"voterId":"h:76gzqgp4byjl6djerexelgd6esncrxhig2ufzlla4khkvkgg3f3a","titleId":"tt0068646","votes":[{"aspect":"acting","choice":"up"}]}`
		}, status: 403, code: domain.CodeVoterMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sample := tt.sample
			if sample == "" {
				sample = "apigw-v2-request-jwt-authorizer.json"
			}
			req := apiRequest(t, sample)
			tt.change(&req)
			resp, err := h.Handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
			if tt.status == 202 {
				a := queued(t, f)
				if tt.voter != "" && a.VoterID != tt.voter {
					t.Errorf("voter %q, want %q", a.VoterID, tt.voter)
				}
				if len(a.VoterID) > 64 || strings.ContainsAny(a.VoterID, " /#|@") {
					t.Errorf("voter %q is not a voter ID", a.VoterID)
				}
				return
			}
			eb := errorOf(t, resp, tt.status)
			if eb.Error.Code != tt.code {
				t.Errorf("code %q, want %q", eb.Error.Code, tt.code)
			}
			if tt.status == 401 && resp.Headers["www-authenticate"] == "" {
				t.Errorf("401 without www-authenticate: %v", resp.Headers)
			}
			if strings.Contains(resp.Body, "alice") {
				t.Errorf("response %s echoes the subject or voter", resp.Body)
			}
			if msgs := drain(t, f, f.cfg.SubmissionsURL); len(msgs) != 0 {
				t.Errorf("a refused request queued %d messages: %s", len(msgs), *msgs[0].Body)
			}
		})
	}
}
