package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// crowd posts submissions to a votes dev from several connections at
// once, each under its own Idempotency-Key, until stopped.
type crowd struct {
	accepted atomic.Int64 // 202s
	unknown  atomic.Int64 // no answer: the submission may or may not be queued
	other    atomic.Int64 // any other status
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startCrowd(url string, workers int) *crowd {
	c := &crowd{stop: make(chan struct{})}
	for w := range workers {
		c.wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-c.stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"voterId":"u-%d-%d","titleId":"tt%d","votes":[{"aspect":"story","choice":"up"},{"aspect":"acting","choice":"down"}]}`, w, i, i%7)
				req, _ := http.NewRequest(http.MethodPost, url+"/votes", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("stop-%d-%d", w, i))
				resp, err := client.Do(req)
				if err != nil {
					c.unknown.Add(1)
					time.Sleep(10 * time.Millisecond) // the stack has stopped listening
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					c.accepted.Add(1)
				} else {
					c.other.Add(1)
				}
			}
		})
	}
	return c
}

func (c *crowd) halt() { close(c.stop); c.wg.Wait() }

// noRaceExitSleep spares a child built with -race the race detector's
// second of sleep at exit (atexit_sleep_ms), which is not votes dev's: the
// stop tests time the exit.
const noRaceExitSleep = "GORACE=atexit_sleep_ms=0"

// stoppedLine is the stop's last line, with what was processed and left
// queued.
var stoppedLine = regexp.MustCompile(`stopped in ([0-9.]+m?s): (\d+) submissions processed since the start, (?:(\d+) still queued|none left queued)`)

// TestDevStopsUnderLoad: Ctrl-C while votes pour in stops votes dev within
// 3 s, prints a line per kind of thing left undone and no warning, and
// loses no accepted submission on the way: each one the gateway answered
// 202 was processed or is still on the queue when the stack stops (where
// a restart on kept data would find it; a memory-only stack says that it
// loses them).
func TestDevStopsUnderLoad(t *testing.T) {
	if os.Getenv("VOTES_TEST_DEV_CHILD") == "stop" {
		runChild("dev", "--addr", "127.0.0.1:0")
	}
	dev := startDevAs(t, "TestDevStopsUnderLoad", "VOTES_TEST_DEV_CHILD=stop", "XDG_CACHE_HOME="+t.TempDir(), noRaceExitSleep)
	load := startCrowd(dev.url, 16)
	time.Sleep(3 * time.Second)
	if load.accepted.Load() == 0 {
		t.Fatalf("the stack accepted nothing in 3 s (%d without an answer, %d other)", load.unknown.Load(), load.other.Load())
	}

	began := time.Now()
	if err := dev.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(dev.rest)
	err := dev.cmd.Wait()
	took := time.Since(began)
	load.halt()
	t.Logf("stopped in %s under load: %d accepted, %d without an answer\n%s", took.Round(time.Millisecond), load.accepted.Load(), load.unknown.Load(), rest)
	if err != nil {
		t.Fatalf("votes dev exited with %v\n%s%s", err, rest, dev.errOut)
	}
	if took > 3*time.Second*raceSlowdown {
		t.Errorf("votes dev took %s to stop under load, want at most 3 s (times %d under the race detector)", took.Round(time.Millisecond), raceSlowdown)
	}
	if dev.errOut.Len() > 0 {
		t.Errorf("votes dev wrote to stderr:\n%s", dev.errOut)
	}
	lines := strings.Split(strings.TrimSpace(string(rest)), "\n")
	if len(lines) > 3 || !strings.HasPrefix(lines[0], "stopping: no new votes taken") {
		t.Errorf("the stop printed %d lines, want the stopping line, at most one interrupted line and the stopped line:\n%s", len(lines), rest)
	}
	m := stoppedLine.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("no stopped line with what was processed and left queued:\n%s", rest)
	}
	processed, _ := strconv.ParseInt(m[2], 10, 64)
	queued, _ := strconv.ParseInt(m[3], 10, 64)
	accepted, unknown := load.accepted.Load(), load.unknown.Load()
	if processed+queued < accepted || processed+queued > accepted+unknown {
		t.Errorf("%d processed and %d still queued, want every one of the %d accepted (and at most the %d unanswered besides)", processed, queued, accepted, unknown)
	}
	if queued > 0 && !strings.Contains(lines[len(lines)-1], "memory only, so they are gone (votes dev --data DIR keeps them") {
		t.Errorf("submissions were left queued, and the stop does not say that a memory-only stack loses them:\n%s", rest)
	}
}

// TestDevStopsAtOnceOnASecondCtrlC: a second Ctrl-C does not wait for
// what the stop waits for (here the pollers' receives, long polls of up
// to a second on the drained queue): votes dev stops at once and says so.
func TestDevStopsAtOnceOnASecondCtrlC(t *testing.T) {
	if os.Getenv("VOTES_TEST_DEV_CHILD") == "stop2" {
		runChild("dev", "--addr", "127.0.0.1:0")
	}
	dev := startDevAs(t, "TestDevStopsAtOnceOnASecondCtrlC", "VOTES_TEST_DEV_CHILD=stop2", "XDG_CACHE_HOME="+t.TempDir(), noRaceExitSleep)
	load := startCrowd(dev.url, 8)
	time.Sleep(time.Second)
	load.halt()
	time.Sleep(500 * time.Millisecond)
	if err := dev.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest := bufio.NewReader(dev.rest)
	first, err := rest.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "stopping: ") {
		t.Fatalf("votes dev did not start stopping: %q %v", first, err)
	}
	began := time.Now()
	if err := dev.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(rest)
	err = dev.cmd.Wait()
	took := time.Since(began)
	t.Logf("stopped %s after the second Ctrl-C\n%s%s", took.Round(time.Millisecond), first, tail)
	if err != nil {
		t.Fatalf("votes dev exited with %v\n%s%s", err, tail, dev.errOut)
	}
	if !strings.Contains(string(tail), "stopped at once after") {
		t.Errorf("the second Ctrl-C did not stop votes dev at once:\n%s", tail)
	}
	if took > time.Second*raceSlowdown {
		t.Errorf("votes dev took %s to stop after the second Ctrl-C, want at most 1 s (times %d under the race detector)", took.Round(time.Millisecond), raceSlowdown)
	}
	if dev.errOut.Len() > 0 {
		t.Errorf("votes dev wrote to stderr:\n%s", dev.errOut)
	}
}
