package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"votes/domain"
	"votes/infra/local"
	"votes/internal/kumotest"
)

// TestBallot: votes ballot shows a voter's current choices on a title and
// every vote event behind them, the superseded ones marked, and nobody
// else's (not even a voter's whose votes share the partition); as a table
// and as JSON.
func TestBallot(t *testing.T) {
	opts := kumotest.Options(nil)
	stage := kumotest.Stage(t)
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: stage, Endpoint: opts.Endpoint, Settings: local.FastSettings()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background(), 0) })
	// A neighbour: another voter whose votes on tt1 share u-1's cell, the
	// event table's partition the lookup reads.
	neighbour := ""
	for i := 2; neighbour == ""; i++ {
		if v := fmt.Sprintf("u-%d", i); domain.CellOf("tt1", v) == domain.CellOf("tt1", "u-1") {
			neighbour = v
		}
	}
	for i, body := range []string{
		`{"voterId":"u-1","titleId":"tt1","votes":[{"aspect":"story","choice":"up"},{"aspect":"acting","choice":"down"}]}`,
		`{"voterId":"` + neighbour + `","titleId":"tt1","votes":[{"aspect":"story","choice":"up"}]}`,
		`{"voterId":"u-1","titleId":"tt2","votes":[{"aspect":"story","choice":"up"}]}`,
		`{"voterId":"u-1","titleId":"tt1","votes":[{"aspect":"story","choice":"down"}]}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/votes", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "k"+string(rune('0'+i)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %v %v", body, resp, err)
		}
		resp.Body.Close()
		time.Sleep(2 * time.Millisecond) // received in this order
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	at := []string{"--endpoint", s.Endpoint, "--stage", stage}

	code, out, errOut := votes(t, append([]string{"ballot", "u-1", "tt1"}, at...)...)
	if code != 0 {
		t.Fatalf("ballot: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("\n%s", out)
	if !strings.HasPrefix(out, "u-1 on tt1, version 1:\n") || !hasRow(out, "acting", "down") || !hasRow(out, "story", "down") || hasRow(out, "story", "up", "20") {
		t.Errorf("ballot does not show u-1's current choices on tt1 (story down, acting down):\n%s", out)
	}
	event := func(key, aspect, choice, counts string) bool {
		return regexp.MustCompile(`(?m)UTC\s+` + key + `\.\S+\s+` + aspect + `\s+` + choice + `\s+` + counts + `\s`).MatchString(out)
	}
	if !strings.Contains(out, "the 3 vote events behind it") || !event("k0", "story", "up", "superseded") ||
		!event("k0", "acting", "down", "yes") || !event("k3", "story", "down", "yes") || strings.Contains(out, "k1.") || strings.Contains(out, "k2.") {
		t.Errorf("ballot does not list u-1's three events on tt1 alone:\n%s", out)
	}
	if strings.Contains(out, "not caught up") {
		t.Errorf("ballot of an idle pipeline says the projector is behind:\n%s", out)
	}

	code, out, errOut = votes(t, append([]string{"ballot", "--json", "u-1", "tt1"}, at...)...)
	var v ballotView
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("ballot --json: exit %d\n%s%s", code, out, errOut)
	}
	if v.Current["story"].Choice != "down" || v.Current["acting"].Choice != "down" || len(v.Current) != 2 || len(v.Events) != 3 || !v.Matches ||
		v.Events[0].Counts && v.Events[0].Aspect == "story" {
		t.Errorf("ballot --json: %+v", v)
	}

	if code, _, errOut := votes(t, append([]string{"ballot", "u-9", "tt1"}, at...)...); code != 1 || !strings.Contains(errOut, "no votes by u-9 on tt1") {
		t.Errorf("ballot of a voter who never voted: exit %d %s", code, errOut)
	}
	if code, _, errOut := votes(t, "ballot", "u-1"); code != 2 || !strings.Contains(errOut, "want a VOTER and a TITLE") {
		t.Errorf("ballot without a title: exit %d %s", code, errOut)
	}
	if code, out, _ := votes(t, "ballot", "-h"); code != 0 || !strings.Contains(out, "usage: votes ballot [flags] VOTER TITLE") {
		t.Errorf("ballot -h: exit %d %s", code, out)
	}
}
