package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"testing"
)

// TestDevRunsWithOverlapAndFaults: `votes dev --overlap --faults 0.05
// --parallel 3` says all three are on, takes votes, and on Ctrl-C finishes them, says how many
// calls failed and stops. It runs in a child process: kumo's state is
// process-global, and `votes dev` always uses the stage "local".
func TestDevRunsWithOverlapAndFaults(t *testing.T) {
	if os.Getenv("VOTES_TEST_DEV_CHILD") == "1" {
		runChild("dev", "--addr", "127.0.0.1:0", "--overlap", "--faults", "0.05", "--parallel", "3")
	}
	dev := startDevAs(t, "TestDevRunsWithOverlapAndFaults", "VOTES_TEST_DEV_CHILD=1", "XDG_CACHE_HOME="+t.TempDir())
	url := dev.url
	if out := dev.banner; !strings.Contains(out, "overlap on: every SQS and stream batch goes to two concurrent invocations") ||
		!strings.Contains(out, "faults on: 5% of the functions' SDK calls fail, half before sending, half after the emulator applied them") {
		t.Errorf("votes dev does not say overlap and faults are on:\n%s", out)
	}
	if out := dev.banner; !strings.Contains(out, "stream parallelization 3: up to 3 projector invocations per shard at once") {
		t.Errorf("votes dev does not say the stream parallelization it plays:\n%s", out)
	}
	body := `{"voterId":"u-1","titleId":"tt1","votes":[{"aspect":"story","choice":"up"}]}`
	accepted := false
	for range 20 { // a 503 (the queue call failed) is retried with the same key
		req, err := http.NewRequest(http.MethodPost, url+"/votes", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "dev-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if accepted = resp.StatusCode == http.StatusAccepted; accepted || resp.StatusCode != http.StatusServiceUnavailable {
			break
		}
	}
	if !accepted {
		t.Fatal("votes dev did not accept a vote")
	}
	rest := dev.stop(t)
	if !regexp.MustCompile(`faults injected: \d+ of \d+ SDK calls failed before sending, \d+ after the emulator applied them\n(.|\n)*stopped`).Match(rest) {
		t.Errorf("votes dev did not report the faults and stop:\n%s", rest)
	}
}

func TestDevRefusesAFaultRateOutOfRange(t *testing.T) {
	for _, rate := range []string{"-0.1", "1", "5"} {
		if code, _, errOut := votes(t, "dev", "--faults", rate); code != 2 || !strings.Contains(errOut, "--faults") {
			t.Errorf("--faults %s: exit %d, %q", rate, code, errOut)
		}
	}
}

// TestDevIngestURL: `votes dev --ingest url --auth jwt` has no authorizer in
// front of POST /votes: the receiver itself refuses a request without a
// token, in the API's error shape (API Gateway's authorizer would answer
// {"message":"Unauthorized"} without invoking it), and takes one with a
// token `votes token` signed. In a child process, as
// TestDevRunsWithOverlapAndFaults.
func TestDevIngestURL(t *testing.T) {
	secret, _ := keyFiles(t)
	if os.Getenv("VOTES_TEST_DEV_CHILD") == "url" {
		runChild("dev", "--addr", "127.0.0.1:0", "--ingest", "url", "--auth", "jwt", "--jwt-key", os.Getenv("VOTES_TEST_JWT_KEY"))
	}
	dev := startDevAs(t, "TestDevIngestURL", "VOTES_TEST_DEV_CHILD=url", "VOTES_TEST_JWT_KEY="+secret, "XDG_CACHE_HOME="+t.TempDir())
	url := dev.url
	if out := dev.banner; !strings.Contains(out, "ingest url: POST /votes reaches the receiver as through its function URL") ||
		!strings.Contains(out, "auth jwt: the receiver verifies POST /votes' token itself") {
		t.Errorf("votes dev does not say how votes come in:\n%s", out)
	}
	code, tok, errText := votes(t, "token", "--jwt-key", secret, "--sub", "u-1")
	if code != 0 {
		t.Fatalf("token: exit %d %s", code, errText)
	}
	post := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url+"/votes", strings.NewReader(`{"titleId":"tt1","votes":[{"aspect":"story","choice":"up"}]}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := post(""); status != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) {
		t.Errorf("no token: %d %s, want the receiver's 401", status, body)
	}
	if status, body := post(strings.TrimSpace(tok)); status != http.StatusAccepted {
		t.Errorf("votes token's token: %d %s, want 202", status, body)
	}
	dev.stop(t)
}

func TestDevRefusesAParallelizationOutOfRange(t *testing.T) {
	for _, n := range []string{"0", "11", "-2"} {
		if code, _, errOut := votes(t, "dev", "--parallel", n); code != 2 || !strings.Contains(errOut, "--parallel") {
			t.Errorf("--parallel %s: exit %d, %q", n, code, errOut)
		}
	}
}

// runChild is a test's child process: it runs votes with args until
// Ctrl-C, as the command line does, and exits with its status.
func runChild(args ...string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, args, os.Stdout, os.Stderr))
}
