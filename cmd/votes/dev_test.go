package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDevRunsWithOverlapAndFaults: `votes dev --overlap --faults 0.05`
// says both are on, takes votes, and stops cleanly on cancellation.
func TestDevRunsWithOverlapAndFaults(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // its state file, not a running dev's
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	exit := make(chan int, 1)
	var errOut strings.Builder
	go func() {
		exit <- run(ctx, []string{"dev", "--addr", "127.0.0.1:0", "--overlap", "--faults", "0.05"}, pw, &errOut)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var printed []string
	url := ""
	for url == "" && lines.Scan() {
		printed = append(printed, lines.Text())
		if u, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			url = u
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	out := strings.Join(printed, "\n")
	if url == "" {
		t.Fatalf("votes dev never listened:\n%s\n%s", out, errOut.String())
	}
	if !strings.Contains(out, "overlap on: every SQS and stream batch goes to two concurrent invocations") ||
		!strings.Contains(out, "faults on: 5% of the functions' SDK calls fail") {
		t.Errorf("votes dev does not say overlap and faults are on:\n%s", out)
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
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("votes dev exited %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("votes dev did not stop")
	}
}

func TestDevRefusesAFaultRateOutOfRange(t *testing.T) {
	for _, rate := range []string{"-0.1", "1", "5"} {
		if code, _, errOut := votes(t, "dev", "--faults", rate); code != 2 || !strings.Contains(errOut, "--faults") {
			t.Errorf("--faults %s: exit %d, %q", rate, code, errOut)
		}
	}
}
