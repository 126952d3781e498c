package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"votes/internal/backoff"
	"votes/internal/loadgen"
)

// idleLag prints how long a vote takes to show in the tallies on a quiet
// stack: one probe every 500 ms and nothing else, each a vote on a title
// of its own, read through the API until it shows. On the way are the
// submissions mapping's batching window, the stream poller's idle poll
// interval, the stream mapping's batching window and the query's summary
// age (README, "Cheap reads").
func (b *bench) idleLag(ctx context.Context) error {
	if err := b.stack.WaitIdle(ctx); err != nil {
		return err
	}
	run := &probeRun{}
	stop := startProbes(ctx, 500*time.Millisecond, func(ctx context.Context, i int) (time.Duration, bool) {
		return probe(ctx, b.client, b.stack.URL, fmt.Sprintf("idle-probe-%d", i), run, nil)
	})
	_ = backoff.Sleep(ctx, b.o.idleFor)
	lags := stop()
	if len(lags) == 0 {
		return fmt.Errorf("idle lag: no probe became visible")
	}
	slices.Sort(lags)
	p := func(q float64) float64 { return ms(lags[min(len(lags)-1, int(q*float64(len(lags))))]) }
	s := b.settings
	fmt.Fprintf(b.out, "idle_tally_lag_p99_ms: %.1f\n", p(0.99))
	fmt.Fprintf(b.out, "  (p50 %.1f ms, max %.1f ms; %d probes, one every 500 ms on a quiet stack; submissions window %s, stream poll %s and window %s, summaries up to %s old)\n",
		p(0.5), ms(lags[len(lags)-1]), len(lags), s.Processor.Window, s.Projector.PollInterval, s.Projector.Window, s.Reads.MaxAge)
	return nil
}

// devRSS prints how much CPU an idle `votes dev` process uses, and how
// much it grows per 100,000 accepted votes: it builds the votes command,
// starts `votes dev` on free ports, reads its CPU time over idleFor
// (Linux's /proc), then its resident set size before and after a load of
// single-aspect submissions (checked exact through the API), and again
// after it sat idle.
func (b *bench) devRSS(ctx context.Context) error {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		fmt.Fprintln(b.out, "dev_rss_mb_per_100k_votes: n/a (no /proc to read a process's resident set from)")
		return nil
	}
	dir, err := os.MkdirTemp("", "votes-bench-dev")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bin", "votes")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/votes").CombinedOutput(); err != nil {
		return fmt.Errorf("build votes: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "dev", "--addr", "127.0.0.1:0", "--name", "bench-rss")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	var url string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "listening on "); ok {
			url = u
			break
		}
	}
	if url == "" {
		return fmt.Errorf("votes dev never listened")
	}
	go func() { // keep reading, so that it never blocks on a full pipe
		for lines.Scan() {
		}
	}()
	_ = backoff.Sleep(ctx, 2*time.Second)
	// Idle, its pollers are all it runs: their receives, long polls and
	// GetRecords calls.
	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	idleFrom := time.Now()
	_ = backoff.Sleep(ctx, b.o.idleFor)
	cpu1, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	idleCPU := (cpu1 - cpu0).Seconds() / time.Since(idleFrom).Seconds() * 100
	before, err := rssMB(cmd.Process.Pid)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL: url, Client: client, Count: b.o.devVotes, Concurrency: b.o.concurrency, Voters: b.o.devVotes * 10, Titles: b.o.titles,
		Skew: "zipf", Aspects: 1, ChangeShare: 0.1, RetryShare: 0.02, Seed: 5, Run: "rss",
	})
	if err != nil {
		return err
	}
	bad, err := loadgen.Check(ctx, client, url, res, 5*time.Minute)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("votes dev: %d titles tally differently from what was accepted, e.g. %s", len(bad), bad[0].TitleID)
	}
	after, err := rssMB(cmd.Process.Pid)
	if err != nil {
		return err
	}
	_ = backoff.Sleep(ctx, b.o.idleFor)
	idle, err := rssMB(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "dev_idle_cpu_pct: %.2f\n", idleCPU)
	fmt.Fprintf(b.out, "  (of one core, votes dev's user and system time over %s idle after its start)\n", b.o.idleFor)
	fmt.Fprintf(b.out, "dev_rss_mb_per_100k_votes: %.0f\n", (after-before)/float64(res.Votes)*100000)
	fmt.Fprintf(b.out, "  (votes dev: %.0f MB idle, %.0f MB after %d accepted votes, %.0f MB %s later)\n", before, after, res.Votes, idle, b.o.idleFor)
	return nil
}

// cpuTime is the CPU time a process has used, user and system, from
// Linux's /proc/PID/stat (in clock ticks of 1/100 s, USER_HZ on Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: the fields that
	// follow it start with the state, field 3; utime and stime are 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	fields := strings.Fields(string(b[i+1:]))
	if i < 0 || len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: no utime and stime in %q", pid, b)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// rssMB is a process's resident set size, in megabytes.
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
