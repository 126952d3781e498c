package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// devChild is a `votes dev` run by this test binary in a child process,
// as a developer runs it in a terminal: kumo's state is process-global, so
// each stack needs its own process, as on a developer's machine.
type devChild struct {
	cmd    *exec.Cmd
	url    string
	banner string
	rest   io.Reader
	// errOut is what it wrote to stderr; read it once cmd.Wait returned.
	errOut *strings.Builder
}

// startDev starts `votes dev ARGS` with its discovery entries under cache,
// and waits until it listens.
func startDev(t *testing.T, cache string, args ...string) *devChild {
	t.Helper()
	return startDevAs(t, "TestStacksSideBySide", "VOTES_TEST_DEV_CHILD=stacks", "VOTES_TEST_DEV_ARGS="+strings.Join(args, " "), "XDG_CACHE_HOME="+cache)
}

// startDevAs runs this test binary again as the child branch of test, with
// env added to its environment (the branch runs `votes dev`), and waits
// until the stack listens.
func startDevAs(t *testing.T, test string, env ...string) *devChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	if os.Getenv("GORACE") == "" {
		// Under -race, the child writes its race reports here instead of
		// exiting 66, so that one inside the emulator alone (see
		// checkRaces) does not fail the test, and any other still does.
		races := t.TempDir()
		cmd.Env = append(cmd.Env, "GORACE=exitcode=0 log_path="+filepath.Join(races, "race"))
		t.Cleanup(func() { checkRaces(t, races) })
	}
	errOut := &strings.Builder{}
	cmd.Stderr = errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	var printed []string
	for lines.Scan() {
		printed = append(printed, lines.Text())
		if u, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			return &devChild{cmd: cmd, url: u, banner: strings.Join(printed, "\n"), rest: stdout, errOut: errOut}
		}
	}
	t.Fatalf("votes dev (%s) never listened:\n%s\n%s", strings.Join(env, " "), strings.Join(printed, "\n"), errOut.String())
	return nil
}

// checkRaces fails the test for every race report in dir (a child's, under
// -race) unless both racing accesses are inside the emulator: kumo v0.33.1
// writes a table's ItemCount in DescribeTable under a read lock
// (internal/service/dynamodb/storage.go:412), which races with its own
// snapshots (--data) and is none of this project's doing.
func checkRaces(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "race*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("read race report: %v", err)
			continue
		}
		for _, report := range strings.Split(string(b), "==================") {
			if !strings.Contains(report, "WARNING: DATA RACE") {
				continue
			}
			if emulatorOnly(report) {
				t.Logf("a data race inside the emulator (kumo), not ours:\n%s", report)
				continue
			}
			t.Errorf("votes dev had a data race:\n%s", report)
		}
	}
}

// emulatorOnly reports whether both accesses of a race report are made in
// kumo's code, with none of this project's frames on their stacks.
func emulatorOnly(report string) bool {
	var accesses []string
	for _, section := range strings.Split(report, "\n\n") {
		lines := strings.Split(section, "\n")
		for i, line := range lines {
			if strings.HasPrefix(line, "Read at") || strings.HasPrefix(line, "Write at") || strings.HasPrefix(line, "Previous ") {
				accesses = append(accesses, strings.Join(lines[i:], "\n"))
				break
			}
		}
	}
	if len(accesses) < 2 {
		return false
	}
	for _, a := range accesses {
		if !strings.Contains(a, "github.com/sivchari/kumo/") || strings.Contains(a, "\n  votes/") {
			return false
		}
	}
	return true
}

// stop is Ctrl-C, and waits for the stack to stop; it returns what the
// stack printed after it listened.
func (d *devChild) stop(t *testing.T) []byte {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(d.rest)
	if err := d.cmd.Wait(); err != nil || !strings.Contains(string(rest), "stopped") {
		t.Fatalf("votes dev did not stop cleanly: %v\n%s", err, rest)
	}
	return rest
}

// TestStacksSideBySide: two `votes dev` on one machine register under their
// own names; each command reaches the one --stack names, and refuses to
// guess while both run, listing them; a second stack of the same name or
// on the same port is refused; stopping one removes only its own entry,
// and then commands find the other on their own; a dead stack's entry is
// ignored and cleaned.
func TestStacksSideBySide(t *testing.T) {
	if os.Getenv("VOTES_TEST_DEV_CHILD") == "stacks" {
		runChild(strings.Fields(os.Getenv("VOTES_TEST_DEV_ARGS"))...)
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("VOTES_API", "")
	a := startDev(t, cache, "dev", "--addr", "127.0.0.1:0", "--name", "alpha")
	b := startDev(t, cache, "dev", "--addr", "127.0.0.1:0") // named after its port
	u, _ := url.Parse(b.url)
	bName := u.Port()
	if !strings.Contains(a.banner, "stack alpha: other votes commands reach it with --stack alpha") ||
		!strings.Contains(b.banner, "stack "+bName+": other votes commands reach it with --stack "+bName) {
		t.Errorf("votes dev does not say its name:\n%s\n%s", a.banner, b.banner)
	}

	code, out, errOut := votes(t, "stacks")
	if code != 0 || !hasRow(out, "alpha", a.url) || !hasRow(out, bName, b.url) {
		t.Errorf("stacks: exit %d, want both listed\n%s%s", code, out, errOut)
	}
	// Two run and none is chosen: commands refuse and list both.
	for _, args := range [][]string{{"tallies", "tt1"}, {"versions"}, {"load", "--count", "1"}} {
		code, out, errOut := votes(t, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "2 votes dev stacks are running; choose one with --stack NAME") ||
			!hasRow(errOut, "alpha", a.url) || !hasRow(errOut, bName, b.url) {
			t.Errorf("%v with two stacks and no --stack: exit %d, want 2 and both listed\n%s%s", args, code, out, errOut)
		}
	}
	if code, _, errOut := votes(t, "tallies", "tt1", "--stack", "gamma"); code != 2 || !strings.Contains(errOut, `no stack named "gamma" is running`) || !hasRow(errOut, "alpha", a.url) {
		t.Errorf("--stack gamma: exit %d\n%s", code, errOut)
	}

	// A second stack of a running one's name, or on its port, is refused
	// before it starts.
	if code, _, errOut := votes(t, "dev", "--addr", "127.0.0.1:0", "--name", "alpha"); code != 2 || !strings.Contains(errOut, `a stack named "alpha" is already running (`+a.url) || !strings.Contains(errOut, "another --name") {
		t.Errorf("a second alpha: exit %d, %q", code, errOut)
	}
	aAddr := strings.TrimPrefix(a.url, "http://")
	if code, _, errOut := votes(t, "dev", "--addr", aAddr, "--name", "delta"); code != 2 || !strings.Contains(errOut, aAddr+` is in use by the votes dev stack "alpha"`) || !strings.Contains(errOut, "--addr 127.0.0.1:0") {
		t.Errorf("votes dev on alpha's port: exit %d, %q", code, errOut)
	}

	// A vote to alpha only: alpha's tallies show it, the other's do not.
	resp, err := http.Post(a.url+"/votes", "application/json", strings.NewReader(`{"voterId":"u-1","titleId":"tt1","votes":[{"aspect":"story","choice":"up"}]}`))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST to alpha: %v %v", resp, err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, errOut = votes(t, "tallies", "tt1", "--stack", "alpha")
		if code == 0 && hasRow(out, "tt1", "story", "up", "1") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !hasRow(out, "tt1", "story", "up", "1") {
		t.Errorf("tallies --stack alpha: exit %d, want the vote\n%s%s", code, out, errOut)
	}
	if code, out, errOut := votes(t, "tallies", "tt1", "--stack", bName); code != 0 || out != "tt1: no votes yet\n" {
		t.Errorf("tallies --stack %s: exit %d, want no votes\n%s%s", bName, code, out, errOut)
	}
	if code, out, errOut := votes(t, "verify", "--stack", "alpha"); code != 0 || !strings.Contains(out, "version 1: 1 titles, 1 events, 0 differences") {
		t.Errorf("verify --stack alpha: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := votes(t, "verify", "--stack", bName); code != 0 || !strings.Contains(out, "version 1: 0 titles, 0 events, 0 differences") {
		t.Errorf("verify --stack %s: exit %d\n%s%s", bName, code, out, errOut)
	}
	if code, out, errOut := votes(t, "versions", "--stack", bName); code != 0 || !hasRow(out, "1", "*", "active") {
		t.Errorf("versions --stack %s: exit %d\n%s%s", bName, code, out, errOut)
	}

	// Alpha stops: its entry goes, the other's stays, and commands find
	// the one left on their own.
	a.stop(t)
	entries, _ := filepath.Glob(filepath.Join(stacksDir(), "*.json"))
	if len(entries) != 1 || filepath.Base(entries[0]) != bName+".json" {
		t.Errorf("after alpha stopped, entries %v, want only %s.json", entries, bName)
	}
	if code, out, errOut := votes(t, "tallies", "tt1"); code != 0 || out != "tt1: no votes yet\n" {
		t.Errorf("tallies with one stack left: exit %d, want the other's (no votes)\n%s%s", code, out, errOut)
	}

	// A stack killed without its stop leaves an entry: it is ignored, and
	// removed by the next command that looks.
	ghost, _ := json.Marshal(devState{Name: "ghost", API: a.url, Endpoint: "http://127.0.0.1:1", Stage: "local", PID: a.cmd.Process.Pid, Started: time.Now()})
	if err := os.WriteFile(stackPath("ghost"), ghost, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := votes(t, "stacks"); code != 0 || strings.Contains(out, "ghost") || !hasRow(out, bName, b.url) {
		t.Errorf("stacks with a dead entry: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(stackPath("ghost")); !os.IsNotExist(err) {
		t.Errorf("the dead stack's entry is still there: %v", err)
	}
	b.stop(t)
	if code, out, _ := votes(t, "stacks"); code != 0 || !strings.Contains(out, "no votes dev is running here") {
		t.Errorf("stacks after both stopped: exit %d\n%s", code, out)
	}
}

func TestEmulatorOnlyRaces(t *testing.T) {
	kumoOnly := `WARNING: DATA RACE
Write at 0x00c0001 by goroutine 7:
  github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).DescribeTable()
      /go/pkg/mod/github.com/sivchari/kumo@v0.33.1/internal/service/dynamodb/storage.go:412 +0x1

Previous read at 0x00c0001 by goroutine 9:
  encoding/json.intEncoder()
      /usr/local/go/src/encoding/json/encode.go:1 +0x1
  github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).MarshalJSON()
      /go/pkg/mod/github.com/sivchari/kumo@v0.33.1/internal/service/dynamodb/persistence.go:1 +0x1

Goroutine 7 (running) created at:
  net/http.(*Server).Serve()
`
	ours := strings.Replace(kumoOnly, "  encoding/json.intEncoder()", "  votes/infra/local.(*Stack).persist()", 1)
	if !emulatorOnly(kumoOnly) {
		t.Error("a race between two of kumo's own accesses was taken for ours")
	}
	if emulatorOnly(ours) {
		t.Error("a race with one of our frames on an access's stack was put down to kumo")
	}
}
