package main

import (
	"net"
	"runtime"
	"strings"
	"testing"
)

// TestUsage: what a user reads when a command line is wrong or asks for
// help, and the exit status scripts rely on.
func TestUsage(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no votes dev running
	t.Setenv("VOTES_API", "")

	if code, out, errOut := votes(t); code != 2 || out != "" || !strings.Contains(errOut, "Usage:\n  votes dev") {
		t.Errorf("bare votes: exit %d, want 2 with the usage on stderr\nstdout %q\nstderr %q", code, out, errOut)
	}
	if code, out, _ := votes(t, "help"); code != 0 || !strings.Contains(out, "Usage:\n  votes dev") {
		t.Errorf("votes help: exit %d\n%s", code, out)
	}
	// -h names the positional arguments, then the flags.
	for cmd, line := range map[string]string{
		"tallies": "usage: votes tallies [flags] TITLE\n",
		"promote": "usage: votes promote [flags] VERSION\n",
		"verify":  "usage: votes verify [flags] [VERSION]\n",
		"dlq":     "usage: votes dlq [flags] [redrive]\n",
		"load":    "usage: votes load [flags]\n",
	} {
		code, out, errOut := votes(t, cmd, "-h")
		if code != 0 || !strings.HasPrefix(out, line) || !strings.Contains(out, "\n  -api") && !strings.Contains(out, "\n  -endpoint") || errOut != "" {
			t.Errorf("votes %s -h: exit %d, want %q and the flags\nstdout %s\nstderr %s", cmd, code, line, out, errOut)
		}
	}
	// A flag error is said once, with the usage line.
	code, out, errOut := votes(t, "tallies", "--bogus", "tt1")
	if code != 2 || out != "" || strings.Count(errOut, "flag provided but not defined: -bogus") != 1 || !strings.Contains(errOut, "usage: votes tallies [flags] TITLE") {
		t.Errorf("a flag error: exit %d, want 2 and the error once\nstderr %s", code, errOut)
	}
	if code, _, errOut := votes(t, "rebuild", "--segments", "many"); code != 2 || strings.Count(errOut, `invalid value "many" for flag -segments`) != 1 {
		t.Errorf("a bad flag value: exit %d, want 2 and the error once\nstderr %s", code, errOut)
	}
	// Extra arguments are refused, naming them.
	for _, args := range [][]string{
		{"tallies", "tt1", "tt2"},
		{"versions", "tt2"},
		{"rebuild", "--segments", "2", "tt2"},
		{"load", "tt2"},
		{"dev", "tt2"},
		{"seed", "tt2"},
		{"promote", "2", "tt2"},
		{"stacks", "tt2"},
	} {
		if code, out, errOut := votes(t, args...); code != 2 || !strings.Contains(errOut, `unexpected argument "tt2"`) {
			t.Errorf("votes %v: exit %d, want 2 naming the extra argument\n%s%s", args, code, out, errOut)
		}
	}
	if code, _, errOut := votes(t, "versions", "a", "b"); code != 2 || !strings.Contains(errOut, `unexpected arguments ["a" "b"]`) {
		t.Errorf("two extra arguments: exit %d, %q", code, errOut)
	}

	// version, and --version, name the build.
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := votes(t, args...)
		if code != 0 || !strings.HasPrefix(out, "votes ") || !strings.Contains(out, ", revision ") || !strings.HasSuffix(out, ", "+runtime.Version()+"\n") {
			t.Errorf("votes %v: exit %d\n%s", args, code, out)
		}
	}
}

// TestNoStack: with no votes dev running, commands say so, and what to do,
// instead of a dial error.
func TestNoStack(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("VOTES_API", "")
	for _, args := range [][]string{{"tallies", "tt1"}, {"load", "--count", "5"}} {
		code, out, errOut := votes(t, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "no votes dev is running here: start one with: votes dev; or give --api URL") {
			t.Errorf("votes %v with no stack: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if code, _, errOut := votes(t, "versions"); code != 2 || !strings.Contains(errOut, "no votes dev is running here: start one with: votes dev; or give --endpoint URL") {
		t.Errorf("versions with no stack: exit %d\n%s", code, errOut)
	}
	if code, out, _ := votes(t, "stacks"); code != 0 || out != "no votes dev is running here; start one with: votes dev\n" {
		t.Errorf("stacks with none: exit %d\n%s", code, out)
	}

	// An --api where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	code, _, errOut := votes(t, "tallies", "tt1", "--api", dead)
	if code != 1 || !strings.Contains(errOut, "nothing answers at "+dead+" (connection refused)") || strings.Contains(errOut, "dial tcp") {
		t.Errorf("tallies of a dead --api: exit %d\n%s", code, errOut)
	}
	// A load that reached nothing fails.
	code, out, errOut := votes(t, "load", "--api", dead, "--count", "1", "--concurrency", "1")
	if code != 1 || !strings.Contains(out, "accepted 0, rejected 0, connection failures 10;") || !strings.Contains(errOut, "no submission was accepted by "+dead) {
		t.Errorf("load of a dead --api: exit %d\n%s%s", code, out, errOut)
	}
}
