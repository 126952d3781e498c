package local

import (
	"context"
	"debug/elf"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"votes/infra/functions"
)

// needRIE is the aws-lambda-rie executable. Without it the test is
// skipped, except in CI, where .ci/run installs it (make rie).
func needRIE(t *testing.T) string {
	t.Helper()
	bin, err := FindRIE()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v: .ci/run installs it with make rie", err)
		}
		t.Skipf("%v; make rie installs it (go install %s@%s)", err, RIEModule, RIEVersion)
	}
	if runtime.GOOS != "linux" {
		t.Skip("the rie runtime needs Linux")
	}
	return bin
}

var fixture struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// fixtureBootstrap builds testdata/riefixture as a Lambda bootstrap, once
// per test binary.
func fixtureBootstrap(t *testing.T) string {
	t.Helper()
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "riefixture")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.dir = dir
		fixture.path = filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", append(append([]string{"build"}, GoLambdaFlags...), "-o", fixture.path, "./testdata/riefixture")...)
		cmd.Env = append(os.Environ(), GoLambdaEnv(runtime.GOARCH)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fixture.err = errors.New(string(out))
		}
	})
	if fixture.err != nil {
		t.Fatalf("build the fixture: %v", fixture.err)
	}
	return fixture.path
}

// fixtureFunction runs the fixture under the RIE, as function "fixture"
// with timeout and the environment env, up to concurrency sandboxes.
func fixtureFunction(t *testing.T, timeout time.Duration, concurrency int, env ...string) (*Function, *rieFunction) {
	t.Helper()
	rt := &rieRuntime{binary: needRIE(t), log: slog.New(slog.DiscardHandler), fns: map[string]*rieFunction{}}
	f := &rieFunction{rt: rt, name: "fixture", bootstrap: fixtureBootstrap(t), timeout: timeout, slots: make(chan struct{}, concurrency),
		env: append([]string{"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strings.TrimSuffix(timeout.String(), "s"), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256"}, env...),
		log: rt.log}
	rt.fns["fixture"] = f
	t.Cleanup(rt.close)
	return rt.function("fixture"), f
}

type fixtureAnswer struct {
	PID         int               `json:"pid"`
	Env         map[string]string `json:"env"`
	Invocations int               `json:"invocations"`
}

func whoRuns(t *testing.T, fn *Function) fixtureAnswer {
	t.Helper()
	var a fixtureAnswer
	if err := fn.Invoke(context.Background(), map[string]string{}, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// figures waits for the REPORT lines of n invocations, which the emulator
// prints as it answers, and returns the function's figures.
func figures(t *testing.T, f *rieFunction, n int) SandboxReport {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := f.report()
		if r.First.Count+r.Warm.Count >= n || time.Now().After(deadline) {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRIESandboxesStartColdAndStayWarm: the first invocation starts a
// sandbox (a cold start, with the emulator's Init Duration); the next ones
// reuse it, in the same process, which keeps what it had in memory;
// invocations at once each get a sandbox of their own.
func TestRIESandboxesStartColdAndStayWarm(t *testing.T) {
	fn, f := fixtureFunction(t, 10*time.Second, 4)
	first := whoRuns(t, fn)
	for i := 2; i <= 3; i++ {
		a := whoRuns(t, fn)
		if a.PID != first.PID || a.Invocations != i {
			t.Errorf("invocation %d ran in process %d as its %d. invocation; want the warm sandbox %d", i, a.PID, a.Invocations, first.PID)
		}
	}
	r := figures(t, f, 3)
	if r.ColdStarts != 1 || r.First.Count != 1 || r.Init.Count != 1 || r.Warm.Count != 2 {
		t.Errorf("three invocations in a row: %+v, want one cold start and two warm invocations", r)
	}
	if r.First.Max <= 0 || r.Warm.P50 <= 0 || r.Warm.P50 > r.Warm.Max {
		t.Errorf("durations %+v", r)
	}
	t.Logf("cold start: Init Duration %.2f ms, first invocation %.2f ms; warm invocations p50 %.2f ms", r.Init.Max, r.First.Max, r.Warm.P50)

	// Three at once: the idle sandbox takes one, two more start cold.
	pids := map[int]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			var a fixtureAnswer
			if err := fn.Invoke(context.Background(), map[string]string{"sleep": "300ms"}, &a); err != nil {
				t.Error(err)
			}
			mu.Lock()
			pids[a.PID] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(pids) != 3 || !pids[first.PID] {
		t.Errorf("three invocations at once ran in processes %v, want three, one of them the warm %d", pids, first.PID)
	}
	if r := figures(t, f, 6); r.ColdStarts != 3 || r.Peak != 3 {
		t.Errorf("after three at once: %d cold starts, %d sandboxes at most; want 3 and 3", r.ColdStarts, r.Peak)
	}
}

// TestRIEIsolatesTheFunction: the function runs in its own process, with
// the environment it was given and what Lambda adds, none of this
// process's; a function that crashes takes only its sandbox down, and the
// next invocation starts a new one.
func TestRIEIsolatesTheFunction(t *testing.T) {
	t.Setenv("VOTES_HOST_ONLY", "secret")
	fn, f := fixtureFunction(t, 10*time.Second, 2, "VOTES_EVENTS_TABLE=votes-test-events")
	a := whoRuns(t, fn)
	if a.PID == os.Getpid() || a.PID == 0 {
		t.Errorf("the function ran in process %d, the test is %d", a.PID, os.Getpid())
	}
	if _, ok := a.Env["VOTES_HOST_ONLY"]; ok {
		t.Error("the function sees the test process's environment")
	}
	if a.Env["VOTES_EVENTS_TABLE"] != "votes-test-events" || a.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "256" || a.Env["AWS_LAMBDA_RUNTIME_API"] == "" {
		t.Errorf("the function's environment lacks what it was given or what Lambda sets: %v", a.Env)
	}

	err := fn.Invoke(context.Background(), map[string]int{"exit": 3}, nil)
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "Runtime.ExitError" {
		t.Fatalf("a bootstrap that exits: %v, want Lambda's Runtime.ExitError", err)
	}
	if b := whoRuns(t, fn); b.PID == a.PID || b.Invocations != 1 {
		t.Errorf("after the crash the function ran in process %d (its %d. invocation), want a new one after %d", b.PID, b.Invocations, a.PID)
	}
	if r := f.report(); r.ColdStarts != 2 {
		t.Errorf("%d cold starts, want 2: the crashed sandbox replaced", r.ColdStarts)
	}

	// A function's own error is an answer: the sandbox stays warm.
	warm := whoRuns(t, fn)
	err = fn.Invoke(context.Background(), map[string]string{"fail": "no such title"}, nil)
	if !errors.As(err, &fe) || fe.Message != "no such title" || fe.Type != "errorString" {
		t.Fatalf("a function's error came back as %v", err)
	}
	if b := whoRuns(t, fn); b.PID != warm.PID {
		t.Errorf("a function's error ended its sandbox: %d, then %d", warm.PID, b.PID)
	}
}

// TestRIECutsOffAnInvocationAtItsTimeout: an invocation that runs past the
// function's timeout is answered with Lambda's "Task timed out" at the
// timeout, its process is killed, and the next invocation starts cold.
func TestRIECutsOffAnInvocationAtItsTimeout(t *testing.T) {
	fn, f := fixtureFunction(t, time.Second, 2)
	before := whoRuns(t, fn)
	began := time.Now()
	err := fn.Invoke(context.Background(), map[string]string{"sleep": "10s"}, nil)
	took := time.Since(began)
	if !errors.Is(err, ErrTimedOut) || !strings.Contains(err.Error(), "Task timed out after 1.00 seconds") {
		t.Fatalf("an invocation past its 1 s timeout: %v", err)
	}
	if took < time.Second || took > 2500*time.Millisecond {
		t.Errorf("cut off after %s, want at the 1 s timeout", took)
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(before.PID, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the timed-out process %d still runs", before.PID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := whoRuns(t, fn)
	if after.PID == before.PID || after.Invocations != 1 {
		t.Errorf("after the timeout: process %d (its %d. invocation), want a new one", after.PID, after.Invocations)
	}
	if r := figures(t, f, 3); r.Timeouts != 1 || r.ColdStarts != 2 {
		t.Errorf("%d timeouts and %d cold starts, want 1 and 2", r.Timeouts, r.ColdStarts)
	}
}

// TestRIECutOffAtStop: an invocation cut off by its context (the stack
// stopping) returns at once, and its process is ended.
func TestRIECutOffAtStop(t *testing.T) {
	fn, f := fixtureFunction(t, 10*time.Second, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := fn.Invoke(ctx, map[string]string{"sleep": "5s"}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cut off: %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("cut off after %s", took)
	}
	f.close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.all) != 0 || len(f.idle) != 0 {
		t.Errorf("sandboxes left after close: %d", len(f.all))
	}
}

// TestBootstrapsBuildAsTheZips: the bootstraps the rie runtime runs are
// built with the Makefile's flags for the zips, only for this machine's
// architecture, and are static; the Makefile installs the emulator version
// the code names.
func TestBootstrapsBuildAsTheZips(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^GO_LAMBDA := (.*)$`).FindSubmatch(mk)
	want := strings.Join(GoLambdaEnv("arm64"), " ") + " go build " + strings.Join(GoLambdaFlags[:3], " ") + " -ldflags='" + strings.TrimPrefix(GoLambdaFlags[3], "-ldflags=") + "'"
	if line == nil || string(line[1]) != want {
		t.Errorf("the Makefile builds the zips with\n%s\nthe rie runtime its bootstraps with\n%s", line, want)
	}
	if v := regexp.MustCompile(`(?m)^RIE_VERSION := (.*)$`).FindSubmatch(mk); v == nil || string(v[1]) != RIEVersion {
		t.Errorf("the Makefile installs aws-lambda-rie %s, the code names %s", v, RIEVersion)
	}
	if !strings.Contains(string(mk), "\tgo install "+RIEModule+"@$(RIE_VERSION)\n") {
		t.Errorf("the Makefile's rie target does not install %s@$(RIE_VERSION)", RIEModule)
	}
	if testing.Short() {
		t.Skip("building every bootstrap takes a while")
	}
	dir := t.TempDir()
	paths, err := BuildBootstraps(context.Background(), "../..", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range functions.Names() {
		f, err := elf.Open(paths[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer f.Close()
		if f.Machine != map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH] {
			t.Errorf("%s: built for %s on %s", name, f.Machine, runtime.GOARCH)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked", name)
			}
		}
		if f.Section(".symtab") != nil {
			t.Errorf("%s is not stripped", name)
		}
	}
}

func TestParseReport(t *testing.T) {
	for _, tc := range []struct {
		line string
		want report
	}{
		{"REPORT RequestId: a\tInit Duration: 0.09 ms\tDuration: 20.94 ms\tBilled Duration: 21 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t", report{0.09, 20.94}},
		{"REPORT RequestId: b\tDuration: 1000.00 ms\tBilled Duration: 1000 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t", report{-1, 1000}},
	} {
		if got, ok := parseReport(tc.line); !ok || got != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.line, got, tc.want)
		}
	}
	if _, ok := parseReport("REPORT RequestId: c"); ok {
		t.Error("a REPORT line without a Duration was taken")
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 100; i++ {
		h.add(float64(i))
	}
	d := h.durations()
	if d.Count != 100 || d.Max != 100 || d.P50 < 50 || d.P50 > 51 || d.P99 < 99 || d.P99 > 100 {
		t.Errorf("1..100 ms: %+v, want p50 50, p99 99 within 2%%", d)
	}
}
