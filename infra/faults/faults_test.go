package faults_test

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"votes/infra/faults"
)

// TestSetRateFailsThatFractionHalfAfterApplying: of the calls made under
// SetRate(r), about r fail, and about half of those reached the server
// (applied, response lost).
func TestSetRateFailsThatFractionHalfAfterApplying(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()
	tr := faults.New(7)
	tr.SetRate(0.2)
	client := tr.Client()
	const n = 4000
	failed := 0
	for range n {
		resp, err := client.Post(srv.URL, "application/x-amz-json-1.0", strings.NewReader("{}"))
		if err != nil {
			if !errors.Is(err, faults.ErrInjected) {
				t.Fatal(err)
			}
			failed++
			continue
		}
		resp.Body.Close()
	}
	before, after := tr.FailedBefore.Load(), tr.FailedAfter.Load()
	if int(before+after) != failed || tr.Calls.Load() != n {
		t.Fatalf("counters: %d calls, %d before, %d after; %d calls failed", tr.Calls.Load(), before, after, failed)
	}
	if rate := float64(failed) / n; math.Abs(rate-0.2) > 0.03 {
		t.Errorf("%.3f of calls failed, want about 0.2", rate)
	}
	if math.Abs(float64(before-after)) > 0.25*float64(failed) {
		t.Errorf("%d failed before sending, %d after: want about half each", before, after)
	}
	if got := served.Load(); got != n-before {
		t.Errorf("server saw %d calls, want every call not failed before sending: %d", got, n-before)
	}
	tr.Off()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("after Off: %v", err)
	}
	resp.Body.Close()
}

// TestDeciderChoosesEachCallsFault: a Decider sees each call's action and
// its choice is what the call meets.
func TestDeciderChoosesEachCallsFault(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()
	tr := faults.New(1)
	plan := []faults.Fault{faults.None, faults.Before, faults.After}
	var targets []string
	tr.SetDecider(func(target, body string) faults.Fault {
		targets = append(targets, target)
		return plan[len(targets)-1]
	})
	var errs []error
	for range plan {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.PutItem")
		resp, err := tr.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errs = append(errs, err)
	}
	if errs[0] != nil || !errors.Is(errs[1], faults.ErrInjected) || !errors.Is(errs[2], faults.ErrInjected) {
		t.Fatalf("errors %v, want none, injected, injected", errs)
	}
	if served.Load() != 2 || !faults.Action(targets[0], "PutItem") {
		t.Fatalf("server saw %d calls (want 2: the one failing after was applied); targets %v", served.Load(), targets)
	}
}
