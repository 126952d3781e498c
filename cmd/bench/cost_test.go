package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"

	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/internal/loadgen"
	"votes/internal/metering"
)

var updateCostBaseline = flag.Bool("update-cost-baseline", false, "write the cost line's figures to "+costBaselineFile)

const (
	costBaselineFile = "testdata/cost-baseline.json"
	// costTolerance is how far above the baseline a figure may go.
	costTolerance = 0.05
)

// costLine is what the fixed workload costs per vote: write units by table
// and in all, read units, and requests by service.
type costLine struct {
	Workload string             `json:"workload"`
	Votes    int64              `json:"votes"`
	WCU      map[string]float64 `json:"wcu_per_vote"`
	RCU      float64            `json:"rcu_per_vote"`
	Requests map[string]float64 `json:"requests_per_vote"`
}

// costWorkload is the fixed workload: one worker, so that the same
// submissions go out in the same order on every run.
func costWorkload() loadgen.Config {
	return loadgen.Config{
		Count: 160, Concurrency: 1, Voters: 60, Titles: 12, Skew: "zipf", Aspects: 1, AspectsMax: 3,
		ChangeShare: 0.2, RetryShare: 0.05, Seed: 42, Run: "cost",
	}
}

// TestCostLine meters the fixed workload on the local stack and fails when
// a vote costs more than the committed baseline allows: write units per
// vote (per table or in all), read units per vote, or requests per vote of
// a service, more than 5% above it.
//
// The workload is delivered as one processor batch and one projector batch
// (both mappings held while it goes in, then released), so that no batch
// boundary falls where the clock puts it and the figures repeat exactly. Left out: the event-source
// mappings' polls (SQS ReceiveMessage, every DynamoDB Streams call), which
// follow the clock, not the code; Streams reads by a Lambda trigger are
// free in AWS.
func TestCostLine(t *testing.T) {
	got := meterCostWorkload(t)
	t.Logf("per vote: write units %v, read units %.4f, requests %v", got.WCU, got.RCU, got.Requests)
	if *updateCostBaseline {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(costBaselineFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s:\n%s", costBaselineFile, b)
		return
	}
	b, err := os.ReadFile(costBaselineFile)
	if err != nil {
		t.Fatalf("%v; record it with: go test ./cmd/bench -run TestCostLine -update-cost-baseline", err)
	}
	var base costLine
	if err := json.Unmarshal(b, &base); err != nil {
		t.Fatalf("%s: %v", costBaselineFile, err)
	}
	for _, p := range compareCost(base, got) {
		t.Error(p)
	}
	if t.Failed() {
		t.Log("A change that costs more per vote updates the baseline in a commit of its own, saying why:\n" +
			"\tgo test ./cmd/bench -run TestCostLine -update-cost-baseline")
	}
}

// compareCost lists what rose more than costTolerance above base, and a
// workload other than base's.
func compareCost(base, got costLine) []string {
	var out []string
	if base.Workload != got.Workload || base.Votes != got.Votes {
		return []string{fmt.Sprintf("the workload changed (%q, %d votes; the baseline has %q, %d votes): record the baseline again",
			got.Workload, got.Votes, base.Workload, base.Votes)}
	}
	check := func(what string, b, g float64) {
		if g > b*(1+costTolerance) {
			out = append(out, fmt.Sprintf("%s per vote rose from %.4f to %.4f (+%.1f%%, more than %.0f%%)", what, b, g, (g/b-1)*100, costTolerance*100))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.WCU)) {
		check("write units ("+k+")", base.WCU[k], got.WCU[k])
	}
	check("read units", base.RCU, got.RCU)
	for _, k := range slices.Sorted(maps.Keys(got.Requests)) {
		check("requests ("+k+")", base.Requests[k], got.Requests[k])
	}
	return out
}

// meterCostWorkload runs the fixed workload on a local stack of its own and
// returns its cost line.
func meterCostWorkload(t *testing.T) costLine {
	t.Helper()
	ctx := context.Background()
	load := costWorkload()
	messages, records, events := dryRun(t, load)

	// Both mappings are held while the load goes in, then released one
	// after the other: every message is waiting when the processor's
	// mapping starts, and every event record when the projector's does, so
	// each takes the whole workload in one batch however long the load took
	// and whatever a busy machine did to its timing.
	settings := local.DefaultSettings()
	// A batch is exactly the workload, so each mapping invokes as soon as
	// it holds all of it; the long window only bounds a wait that a loaded
	// machine stretches (a 1 s window once cut the messages in two).
	settings.Processor = local.SQSMapping{BatchSize: messages, Window: 30 * time.Second, MaxConcurrency: 1, Pollers: 1}
	settings.Projector.BatchSize, settings.Projector.Window = records, 30*time.Second
	// One invocation: a parallelization factor above 1 deals a round's
	// cells to several (the same writes, more Lambda requests).
	settings.Projector.Parallelization = 1
	settings.Reads = local.FastSettings().Reads // the check reads exact tallies soon after
	stage := kumotest.Stage(t)
	tables := dynamo.TablesFor(stage)
	meter := metering.New(map[string]string{tables.Events: dynamo.AttrCell, tables.Ballots: dynamo.AttrPK, tables.Tallies: dynamo.AttrPK})
	opts := kumotest.Options(nil)
	stack, err := local.Start(ctx, local.Config{
		Addr: "127.0.0.1:0", Stage: stage, Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: settings,
		APIOptions: []func(*middleware.Stack) error{meter.APIOption},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Close(ctx)
	if err := stack.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	meter.Reset()
	stack.ResetUsage()
	stack.HoldSubmissions()
	stack.HoldStream()
	client := &http.Client{Timeout: 30 * time.Second}
	load.URL, load.Client = stack.URL, client
	start := time.Now()
	res, err := loadgen.Run(ctx, load)
	if err != nil {
		t.Fatal(err)
	}
	stack.ReleaseSubmissions()
	for deadline := time.Now().Add(time.Minute); len(kumotest.StoredEvents(t, tables.Events)) < int(res.Votes); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the processor stored %d of %d votes in a minute", len(kumotest.StoredEvents(t, tables.Events)), res.Votes)
		}
	}
	stack.ReleaseStream()
	if err := stack.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	m := measuredOf(res, time.Since(start), meter.Snapshot(), stack.Usage())
	if bad, err := loadgen.Check(ctx, client, stack.URL, res, 30*time.Second); err != nil || len(bad) > 0 {
		t.Fatalf("tallies differ from what was accepted: %v %v", bad, err)
	}
	if m.votes != int64(events) || int(res.Accepted) != records || m.lambdas["processor"].Invocations != 1 || m.lambdas["projector"].Invocations != 1 {
		t.Fatalf("%d votes (%d submissions) in %d processor and %d projector invocations; the workload is %d votes in %d submissions, meant for one batch each",
			m.votes, res.Accepted, m.lambdas["processor"].Invocations, m.lambdas["projector"].Invocations, events, records)
	}
	return costLineOf(load, m, tables)
}

// dryRun sends the workload to an API that takes everything, and returns
// how many messages the receiver will queue (resent submissions included),
// how many event items (stream records) they make, one per submission, and
// how many votes they hold.
func dryRun(t *testing.T, load loadgen.Config) (messages, records, events int) {
	t.Helper()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer api.Close()
	load.URL = api.URL
	res, err := loadgen.Run(context.Background(), load)
	if err != nil {
		t.Fatal(err)
	}
	return int(res.Accepted + res.Retries), int(res.Accepted), int(res.Votes)
}

// costLineOf is a measured run's cost line.
func costLineOf(load loadgen.Config, m measured, tables dynamo.Tables) costLine {
	per := func(x float64) float64 { return x / float64(m.votes) }
	c := costLine{
		Workload: fmt.Sprintf("%d submissions of %d-%d aspects on %d titles (%s), %d voters, changes %.2f, resent %.2f, seed %d",
			load.Count, load.Aspects, load.AspectsMax, load.Titles, load.Skew, load.Voters, load.ChangeShare, load.RetryShare, load.Seed),
		Votes: m.votes,
		WCU: map[string]float64{
			"events": per(m.counts.TableWCU[tables.Events]), "ballots": per(m.counts.TableWCU[tables.Ballots]),
			"tallies": per(m.counts.TableWCU[tables.Tallies]), "titles": per(m.counts.TableWCU[tables.Titles]), "total": per(m.counts.WCU),
		},
		RCU:      per(m.counts.RCU),
		Requests: map[string]float64{"API Gateway": per(float64(m.httpRequests))},
	}
	for action, n := range m.counts.Requests {
		if action == "SQS ReceiveMessage" || strings.HasPrefix(action, "DynamoDB Streams ") {
			continue
		}
		service := action[:strings.LastIndexByte(action, ' ')]
		c.Requests[service] += per(float64(n))
	}
	for _, l := range m.lambdas {
		c.Requests["Lambda"] += per(float64(l.Invocations))
	}
	return c
}

// TestCompareCost: a figure up to 5% above the baseline passes, one
// further above fails with its name, a cheaper one passes, and a changed
// workload is not compared figure by figure.
func TestCompareCost(t *testing.T) {
	base := costLine{Workload: "w", Votes: 100, WCU: map[string]float64{"tallies": 1, "total": 3}, RCU: 0.5, Requests: map[string]float64{"SQS": 2}}
	same := func(f func(*costLine)) costLine {
		c := base
		c.WCU, c.Requests = maps.Clone(base.WCU), maps.Clone(base.Requests)
		f(&c)
		return c
	}
	for _, c := range []struct {
		name string
		got  costLine
		want string // in the one problem reported; "" for none
	}{
		{"equal", base, ""},
		{"5% more tally writes", same(func(c *costLine) { c.WCU["tallies"] = 1.05 }), ""},
		{"6% more tally writes", same(func(c *costLine) { c.WCU["tallies"] = 1.06 }), "write units (tallies)"},
		{"cheaper", same(func(c *costLine) { c.WCU["total"], c.RCU, c.Requests["SQS"] = 1, 0.1, 1 }), ""},
		{"more reads", same(func(c *costLine) { c.RCU = 0.6 }), "read units"},
		{"more SQS requests", same(func(c *costLine) { c.Requests["SQS"] = 2.2 }), "requests (SQS)"},
		{"a service not in the baseline", same(func(c *costLine) { c.Requests["SNS"] = 0.1 }), "requests (SNS)"},
		{"another workload", same(func(c *costLine) { c.Votes = 99 }), "the workload changed"},
	} {
		problems := compareCost(base, c.got)
		switch {
		case c.want == "" && len(problems) > 0:
			t.Errorf("%s: %v, want none", c.name, problems)
		case c.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], c.want)):
			t.Errorf("%s: %v, want one naming %q", c.name, problems, c.want)
		}
	}
}
