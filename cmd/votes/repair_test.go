package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/infra/local"
	"votes/internal/kumotest"
)

// failTallyWrites fails, while on is set, every tally cell write of title.
func failTallyWrites(title string, on *atomic.Bool) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("failTallyWrites", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if u, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok && on.Load() {
				if pk, ok := u.Key[dynamo.AttrPK].(*types.AttributeValueMemberS); ok && strings.Contains(pk.Value, "#"+title+"#") {
					return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("tally write refused")
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	}
}

func postVote(t *testing.T, url, voter, title, choice string) {
	t.Helper()
	body := `{"voterId":"` + voter + `","titleId":"` + title + `","votes":[{"aspect":"story","choice":"` + choice + `"}]}`
	resp, err := http.Post(url+"/votes", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestFailureCommands drives votes dlq, votes dlq redrive and votes repair
// against a local stack where votes and their projections really failed.
func TestFailureCommands(t *testing.T) {
	flaky := faults.New(8)
	settings := local.FastSettings()
	settings.Retry.Failing = time.Millisecond // the processor gives up, with its reason, at the next failure
	// Long enough that a busy machine never hands the doomed submission to
	// a second invocation while the first is still failing it: the counts
	// of dead letters below are exact.
	settings.VisibilityTimeout = 30 * time.Second
	settings.Projector.MaxRetryAttempts = 1
	settings.RepairMaxReceiveCount = 2
	stage := kumotest.Stage(t) // the emulator's state is shared by the tests of this binary
	var lost atomic.Bool       // tally writes of tt-lost fail, for the projector and the repairer alike
	s, err := local.Start(context.Background(), local.Config{
		Addr: "127.0.0.1:0", Stage: stage, Settings: settings, Faults: flaky,
		FunctionAPIOptions: func(string) []func(*middleware.Stack) error {
			return []func(*middleware.Stack) error{failTallyWrites("tt-lost", &lost)}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ep := []string{"--endpoint", s.Endpoint, "--stage", stage}
	q := s.Queues
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	idle := func() {
		t.Helper()
		if err := s.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitRepaired(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tallies := func(title, want string) {
		t.Helper()
		time.Sleep(s.ReadBound) // past the read bound: every vote tallied shows
		if code, out, _ := votes(t, "tallies", title, "--api", s.URL); code != 0 || !strings.Contains(out, want) {
			t.Errorf("tallies %s: exit %d, want %q\n%s", title, code, want, out)
		}
	}

	// Dead letters: one submission whose every append failed (a reason),
	// one put there as SQS's redrive would (no reason).
	flaky.Set(1, 0, func(target, body string) bool {
		return faults.Action(target, "PutItem") && strings.Contains(body, "u-doomed")
	})
	postVote(t, s.URL, "u-doomed", "tt1", "up")
	postVote(t, s.URL, "u-1", "tt1", "up")
	idle()
	flaky.Off()
	if _, err := s.Admin.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURLs[s.Queues.DeadLetters]), MessageBody: aws.String(`{"v":1}`)}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := votes(t, append([]string{"dlq"}, ep...)...)
	t.Logf("votes dlq:\n%s", out)
	if code != 0 || !strings.Contains(out, q.DeadLetters+": 2 messages") || !strings.Contains(out, "gave up after failing for over") ||
		!strings.Contains(out, "moved by SQS redrive, no reason recorded") || !strings.Contains(out, q.RepairFailed+": 0 messages") {
		t.Errorf("dlq: exit %d\n%s", code, out)
	}
	if code, again, _ := votes(t, append([]string{"dlq"}, ep...)...); code != 0 || !strings.Contains(again, q.DeadLetters+": 2 messages") {
		t.Errorf("a second look found otherwise: listing took messages away\n%s", again)
	}
	tallies("tt1", "tt1    story   up      1")

	// Dead-lettering is at least once (a delete lost after the send
	// dead-letters the submission again when it comes back), so the
	// redrive is held to what the queue holds when it starts, and the
	// checks after it to each vote counted once.
	held, err := s.QueueDepth(ctx, q.DeadLetters)
	if err != nil || held < 2 {
		t.Fatalf("dead letters before the redrive: %d, %v; want at least the 2 listed", held, err)
	}
	code, out, _ = votes(t, append([]string{"dlq", "redrive"}, ep...)...)
	t.Logf("votes dlq redrive:\n%s", out)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("sent %d submissions back to %s", held, q.Submissions)) {
		t.Errorf("dlq redrive of %d dead letters: exit %d\n%s", held, code, out)
	}
	idle()
	tallies("tt1", "tt1    story   up      2") // u-doomed's vote, appended once
	if code, out, _ := votes(t, append([]string{"dlq"}, ep...)...); code != 0 || !strings.Contains(out, q.DeadLetters+": 1 messages") ||
		!strings.Contains(out, "poison") {
		t.Errorf("after redrive, want only the message that is not a submission, back with its reason: exit %d\n%s", code, out)
	}

	// A projection that failed, and whose repair failed too: it waits in
	// the repair dead-letter queue with the reason, until votes repair.
	lost.Store(true)
	postVote(t, s.URL, "u-2", "tt-lost", "down")
	idle()
	code, out, _ = votes(t, append([]string{"dlq", "--repair"}, ep...)...)
	t.Logf("votes dlq --repair:\n%s", out)
	if code != 0 || !strings.Contains(out, q.RepairFailed+": 1 messages") || !strings.Contains(out, "cells failed") {
		t.Errorf("dlq --repair: exit %d\n%s", code, out)
	}
	lost.Store(false)
	code, out, _ = votes(t, append([]string{"repair"}, ep...)...)
	t.Logf("votes repair:\n%s", out)
	if code != 0 || !strings.Contains(out, "repaired: stream range") || !strings.Contains(out, q.RepairFailed+": 1 repaired, 0 not repaired") {
		t.Errorf("repair: exit %d\n%s", code, out)
	}
	tallies("tt-lost", "tt-lost  story   down    1")

	// The same, repaired from the event table by time range, as for a range
	// past the stream's retention; the dead letter it covers is cleared.
	lost.Store(true)
	postVote(t, s.URL, "u-3", "tt-lost", "down")
	idle()
	lost.Store(false)
	from, to := time.Now().Add(-25*time.Hour).UTC().Format(time.RFC3339), time.Now().Add(10*time.Minute).UTC().Format(time.RFC3339)
	code, out, _ = votes(t, append([]string{"repair", "--from", from, "--to", to}, ep...)...)
	t.Logf("votes repair --from %s --to %s:\n%s", from, to, out)
	if code != 0 || !strings.Contains(out, "repaired 4 events received from") || !strings.Contains(out, "cleared: stream range") {
		t.Errorf("repair --from --to: exit %d\n%s", code, out)
	}
	tallies("tt-lost", "tt-lost  story   down    2")
	if n, err := s.Repairs().Unrepaired(ctx); err != nil || n != 0 {
		t.Errorf("unrepaired %d, %v", n, err)
	}
	if code, out, _ := votes(t, append([]string{"verify"}, ep...)...); code != 0 {
		t.Errorf("verify: exit %d\n%s", code, out)
	}
	// What the repair cannot repair stays, and the command says so.
	if _, err := s.Admin.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURLs[s.Queues.RepairFailed]), MessageBody: aws.String(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := votes(t, append([]string{"repair"}, ep...)...); code != 1 || !strings.Contains(out, "not repaired") || !strings.Contains(errOut, "1 failures not repaired") {
		t.Errorf("repair of a message it cannot repair: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if n, err := s.Repairs().Unrepaired(ctx); err != nil || n != 1 {
		t.Errorf("unrepaired %d, %v; want the message that is still there", n, err)
	}
	if code, _, errOut := votes(t, append([]string{"repair", "--from", from}, ep...)...); code != 2 || !strings.Contains(errOut, "both --from and --to") {
		t.Errorf("repair --from alone: exit %d %q", code, errOut)
	}
}
