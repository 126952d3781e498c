package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"votes/admin"
	"votes/domain/lifecycle"
)

func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rebuild", stderr)
	tgt := targetFlags(fs)
	segments := fs.Int("segments", 8, "parallel scan segments")
	page := fs.Int("page", 5000, "items per scan page")
	concurrency := fs.Int("concurrency", 8, "cells projected at once per segment")
	resume := fs.Bool("resume", false, "carry on with the interrupted rebuild from its checkpoints")
	abandon := fs.Bool("abandon", false, "retire the interrupted rebuild's version (its items deleted), then rebuild a new one")
	compare := fs.Bool("compare-scan", false, "first time a raw parallel scan of the event table, and print the rebuild's rate against it")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	if *segments < 1 || *segments > 1000 || *page < 1 || *concurrency < 1 {
		return usageError{errors.New("--segments 1..1000, --page and --concurrency at least 1")}
	}
	if *resume && *abandon {
		return usageError{errors.New("give --resume (carry on with the building version) or --abandon (retire it and start anew), not both")}
	}
	a, err := tgt.admin(ctx)
	if err != nil {
		return err
	}

	var scanRate float64
	if *compare {
		n, d, err := a.RawScan(ctx, *segments, *page)
		if err != nil {
			return err
		}
		scanRate = float64(n) / d.Seconds()
		fmt.Fprintf(stdout, "raw parallel scan: %d items in %s, %.0f items/s (%d segments, pages of %d)\n", n, d.Round(time.Millisecond), scanRate, *segments, *page)
	}

	prog := newProgress(stderr, a.EventCount(ctx))
	prog.fold = true
	res, err := a.Rebuild(ctx, admin.RebuildOptions{
		Resume: *resume, Abandon: *abandon, Segments: *segments, PageSize: *page, Concurrency: *concurrency,
		Read:     prog.add,
		Progress: prog.addFolded,
		OnAbandon: func(version string, deleted int64) {
			fmt.Fprintf(stdout, "version %s abandoned: retired, %d items deleted\n", version, deleted)
		},
		OnStart: func(version string, done int64) {
			prog.start(fmt.Sprintf("rebuild v%s", version), done)
		},
	})
	prog.finish(err == nil)
	var (
		pending   *admin.PendingError
		abandoned *admin.AbandonError
	)
	switch {
	case errors.As(err, &abandoned) && ctx.Err() != nil:
		fmt.Fprintf(stdout, "abandoning version %s interrupted before its items were all deleted; finish with: votes retire %[1]s, then votes rebuild\n", abandoned.Version)
		return errInterrupted
	case errors.As(err, &pending):
		return fmt.Errorf("%w; carry on with it: votes rebuild --resume, or retire it and start anew: votes rebuild --abandon", err)
	case err != nil && ctx.Err() != nil && res.Version != "" && !errors.Is(err, lifecycle.ErrLeaseLost):
		// The segments' errors all say the same: the one line that matters.
		fmt.Fprintf(stdout, "rebuild of version %s interrupted: %d events folded and kept; carry on with: votes rebuild --resume (or start anew: votes rebuild --abandon)\n", res.Version, res.Events)
		return errInterrupted
	case err != nil:
		return err
	}
	rate := float64(prog.count.Load()) / res.Elapsed.Seconds()
	fmt.Fprintf(stdout, "rebuilt version %s: %d events (%d not valid, left out) in %s, %.0f events/s, %d segments\n",
		res.Version, res.Events, res.Invalid, res.Elapsed.Round(time.Millisecond), rate, res.Segments)
	if scanRate > 0 {
		fmt.Fprintf(stdout, "rebuild rate / raw scan rate: %.2f\n", rate/scanRate)
	}
	if rss := peakRSS(); rss != "" {
		fmt.Fprintf(stdout, "peak RSS: %s\n", rss)
	}
	fmt.Fprintf(stdout, "version %s is ready: the live projector keeps it current; switch queries to it with: votes promote %s\n", res.Version, res.Version)
	return nil
}

// progress shows a bar on a terminal and a log line every few seconds
// elsewhere. For a rebuild (fold set) it counts the events read as the
// scan reads them and, apart, the events folded: the fold is what takes
// the time, so the bar, the rate and the time left follow the folded
// events, and the events read show at once.
type progress struct {
	out   io.Writer
	total int64
	count atomic.Int64 // events read in this run
	// fold: a rebuild, whose folded events are counted apart.
	fold   bool
	what   string
	folded atomic.Int64 // events folded in this run
	bar    *progressbar.ProgressBar
	stop   chan struct{}
	done   sync.WaitGroup
}

func newProgress(out io.Writer, total int64) *progress {
	return &progress{out: out, total: total}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progress) start(what string, done int64) {
	p.what = what
	remaining := int64(-1)
	if p.total > 0 {
		remaining = max(p.total-done, 1)
	}
	if isTerminal(p.out) {
		p.bar = progressbar.NewOptions64(remaining,
			progressbar.OptionSetWriter(p.out),
			progressbar.OptionSetDescription(p.describe()),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionFullWidth(),
		)
		return
	}
	p.stop = make(chan struct{})
	p.done.Add(1)
	began := time.Now()
	go func() {
		defer p.done.Done()
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(5 * time.Second):
			}
			n := p.count.Load()
			if p.fold {
				n = p.folded.Load()
			}
			rate := float64(n) / time.Since(began).Seconds()
			left := "unknown"
			if remaining > 0 && rate > 0 {
				left = (time.Duration(float64(max(remaining-n, 0))/rate) * time.Second).Round(time.Second).String()
			}
			if p.fold {
				fmt.Fprintf(p.out, "%s: %d events read, %d folded, %.0f folded/s, time left %s\n", what, p.count.Load(), n, rate, left)
			} else {
				fmt.Fprintf(p.out, "%s: %d events read, %.0f events/s, time left %s\n", what, n, rate, left)
			}
		}
	}()
}

// describe is the bar's description: with fold, the events read so far.
func (p *progress) describe() string {
	if !p.fold {
		return p.what
	}
	return fmt.Sprintf("%s: %d read, folded", p.what, p.count.Load())
}

// add counts events read.
func (p *progress) add(n int) {
	p.count.Add(int64(n))
	if p.bar == nil {
		return
	}
	if p.fold {
		p.bar.Describe(p.describe())
		return
	}
	_ = p.bar.Add(n)
}

// addFolded counts events folded (with fold).
func (p *progress) addFolded(n int) {
	p.folded.Add(int64(n))
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// finish ends the bar, full when the work is complete, else where it got.
func (p *progress) finish(complete bool) {
	if p.bar != nil {
		if complete {
			_ = p.bar.Finish()
		} else {
			_ = p.bar.Exit()
		}
		fmt.Fprintln(p.out)
	}
	if p.stop != nil {
		close(p.stop)
		p.done.Wait()
	}
}

// peakRSS is the process's peak resident set size (Linux), or "".
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
