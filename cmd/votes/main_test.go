package main

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/local"
)

func votes(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCommandLine drives the CLI as an engineer would, against a local
// stack: what it prints and the exit status scripts rely on.
func TestCommandLine(t *testing.T) {
	if code, _, errOut := votes(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	settings := local.FastSettings()
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: "local", Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ep := []string{"--endpoint", s.Endpoint}

	for _, body := range []string{
		`{"voterId":"u-1","titleId":"tt1","votes":[{"aspect":"story","choice":"up"}]}`,
		`{"voterId":"u-2","titleId":"tt1","votes":[{"aspect":"story","choice":"down"}]}`,
	} {
		resp, err := http.Post(s.URL+"/votes", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	time.Sleep(s.ReadBound) // past the read bound: every vote tallied shows
	code, out, _ := votes(t, "tallies", "tt1", "--api", s.URL)
	if code != 0 || !strings.Contains(out, "tt1    story   up      1") || !strings.Contains(out, "tt1    story   down    1") {
		t.Errorf("tallies: exit %d\n%s", code, out)
	}
	if code, out, _ := votes(t, append([]string{"verify"}, ep...)...); code != 0 || !strings.Contains(out, "version 1: 1 titles, 2 events, 0 differences") {
		t.Errorf("verify: exit %d\n%s", code, out)
	}
	if code, out, _ := votes(t, append([]string{"versions"}, ep...)...); code != 0 || !strings.Contains(out, "1 *") || !strings.Contains(out, "active") {
		t.Errorf("versions: exit %d\n%s", code, out)
	}
	if code, _, errOut := votes(t, append([]string{"promote", "7"}, ep...)...); code != 1 || !strings.Contains(errOut, "no such projection version") {
		t.Errorf("promote 7: exit %d, %q", code, errOut)
	}

	// A tally altered behind the projector's back: verify names it and fails.
	cell := domain.CellOf("tt1", "u-1")
	if _, err := s.Admin.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Tables.Tallies),
		Key:                       map[string]types.AttributeValue{dynamo.AttrPK: &types.AttributeValueMemberS{Value: "1#" + cell.String()}},
		UpdateExpression:          aws.String("ADD #n :n"),
		ExpressionAttributeNames:  map[string]string{"#n": "n_story_up"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "5"}},
	}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = votes(t, append([]string{"verify"}, ep...)...)
	if code != 1 || !strings.Contains(out, "tt1 story up: version 1's tallies counts 6, the event table 1") {
		t.Errorf("verify after tampering: exit %d\n%s", code, out)
	}

	code, out, _ = votes(t, append([]string{"rebuild", "--segments", "2", "--page", "10"}, ep...)...)
	if code != 0 || !strings.Contains(out, "rebuilt version 2: 2 events") {
		t.Fatalf("rebuild: exit %d\n%s", code, out)
	}
	if code, out, _ := votes(t, append([]string{"promote", "2"}, ep...)...); code != 0 || !strings.Contains(out, "version 2 is active") {
		t.Errorf("promote 2: exit %d\n%s", code, out)
	}
	if code, out, _ := votes(t, append([]string{"verify"}, ep...)...); code != 0 || !strings.Contains(out, "version 2: 1 titles, 2 events, 0 differences") {
		t.Errorf("verify after the rebuild: exit %d\n%s", code, out)
	}
	if code, out, _ := votes(t, append([]string{"versions"}, ep...)...); code != 0 || !hasRow(out, "1", "superseded", "yes") || !hasRow(out, "2", "*", "active", "yes") {
		t.Errorf("versions after the promotion: exit %d\n%s", code, out)
	}

	// The way back, and forth again.
	if code, out, _ := votes(t, append([]string{"rollback"}, ep...)...); code != 0 || !strings.Contains(out, "version 1 is active again; version 2 is superseded") {
		t.Errorf("rollback: exit %d\n%s", code, out)
	}
	if code, out, _ := votes(t, append([]string{"verify"}, ep...)...); code != 1 || !strings.Contains(out, "version 1: 1 titles, 2 events, 1 differences") {
		t.Errorf("verify after the rollback (version 1 was tampered with): exit %d\n%s", code, out)
	}
	if code, out, _ := votes(t, append([]string{"promote", "2"}, ep...)...); code != 0 || !strings.Contains(out, "version 2 is active; version 1 is superseded") {
		t.Errorf("promote 2 again: exit %d\n%s", code, out)
	}

	// Retired: its items deleted, verify says so instead of comparing.
	if code, out, _ := votes(t, append([]string{"retire", "1"}, ep...)...); code != 0 || !strings.Contains(out, "version 1 retired") {
		t.Errorf("retire 1: exit %d\n%s", code, out)
	}
	code, out, errOut := votes(t, append([]string{"verify", "1"}, ep...)...)
	if code != 1 || !strings.Contains(errOut, "version 1 was retired at ") || !strings.Contains(errOut, "and its items deleted; nothing to verify") || strings.Contains(out, "differences") {
		t.Errorf("verify a retired version: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if code, out, _ := votes(t, append([]string{"versions"}, ep...)...); code != 0 || !hasRow(out, "1", "retired", "no", "-", "-", "-", "0", "0") {
		t.Errorf("versions after retiring 1: exit %d\n%s", code, out)
	}
	if code, _, errOut := votes(t, append([]string{"rollback"}, ep...)...); code != 1 || !strings.Contains(errOut, "no superseded version") {
		t.Errorf("rollback with nothing superseded: exit %d, %q", code, errOut)
	}
}

// hasRow reports whether a line of out starts with the fields given.
func hasRow(out string, fields ...string) bool {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}
