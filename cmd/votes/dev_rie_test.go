package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"votes/infra/local"
)

// TestDevRuntimeRIE: `votes dev --runtime rie` builds the bootstraps, takes
// a vote through the receiver's and tallies it through the processor's,
// projector's and query's, each in processes of their own, and at Ctrl-C
// says per function how many sandboxes it started cold and how long their
// invocations took. Skipped without aws-lambda-rie, except in CI.
func TestDevRuntimeRIE(t *testing.T) {
	if os.Getenv("VOTES_TEST_DEV_CHILD") == "rie" {
		runChild("dev", "--addr", "127.0.0.1:0", "--runtime", "rie")
	}
	if _, err := local.FindRIE(); errors.Is(err, local.ErrNoRIE) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v: .ci/run installs it with make rie", err)
		}
		t.Skipf("%v; make rie installs it", err)
	}
	// The bootstraps go to the test's own cache directory; the go build
	// cache stays the developer's, so that only the link is redone.
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	dev := startDevAs(t, "TestDevRuntimeRIE", "VOTES_TEST_DEV_CHILD=rie", "XDG_CACHE_HOME="+t.TempDir(), "GOCACHE="+strings.TrimSpace(string(gocache)))
	if !strings.Contains(dev.banner, "runtime rie: building the functions' bootstraps as make build does, for linux/") {
		t.Errorf("votes dev does not say it runs the bootstraps:\n%s", dev.banner)
	}
	resp, err := http.Post(dev.url+"/votes", "application/json", strings.NewReader(`{"voterId":"u-1","titleId":"tt1","votes":[{"aspect":"story","choice":"up"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /votes: %s", resp.Status)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var body struct {
			Aspects map[string]map[string]int `json:"aspects"`
		}
		resp, err := http.Get(dev.url + "/titles/tt1/tallies")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
		}
		if body.Aspects["story"]["up"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the vote was not tallied: %v %+v", err, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rest := string(dev.stop(t))
	for _, fn := range []string{"receiver", "processor", "projector", "query"} {
		if !regexp.MustCompile(`rie ` + fn + `: +\d+ cold starts \(at most \d+ at once\): Init Duration p50 [\d.]+ ms, first invocation p50 [\d.]+ ms`).MatchString(rest) {
			t.Errorf("votes dev does not report the %s's cold starts:\n%s", fn, rest)
		}
	}
	if !regexp.MustCompile(`rie receiver: +1 cold starts .*; no warm invocation\n`).MatchString(rest) {
		t.Errorf("one vote started %s", rest)
	}
}

func TestDevRefusesWhatTheRIERuntimeCannotDo(t *testing.T) {
	for _, args := range [][]string{
		{"--runtime", "docker"},
		{"--runtime", "rie", "--faults", "0.1"},
		{"--runtime", "rie", "--ingest", "url", "--auth", "jwt", "--jwt-key", "/dev/null"},
	} {
		if code, _, errOut := votes(t, append([]string{"dev"}, args...)...); code != 2 || !strings.Contains(errOut, "--") {
			t.Errorf("votes dev %v: exit %d, %q", args, code, errOut)
		}
	}
}
