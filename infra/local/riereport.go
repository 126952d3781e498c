package local

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// report is what a REPORT line says; init is -1 when it names no Init
// Duration.
type report struct{ init, duration float64 }

// parseReport reads the emulator's REPORT line: tab-separated "Name: value
// ms" fields, "Init Duration" on a sandbox's first invocation only.
func parseReport(line string) (report, bool) {
	rep := report{init: -1, duration: -1}
	for field := range strings.SplitSeq(line, "\t") {
		name, value, ok := strings.Cut(field, ": ")
		if !ok {
			continue
		}
		ms, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " ms"), 64)
		switch {
		case err != nil:
		case name == "Init Duration":
			rep.init = ms
		case name == "Duration":
			rep.duration = ms
		}
	}
	return rep, rep.duration >= 0
}

// SandboxReport is what a function's sandboxes did under the rie runtime.
type SandboxReport struct {
	// ColdStarts counts the sandboxes started (each a new emulator and
	// bootstrap process); Peak is the most alive at once.
	ColdStarts, Peak int
	// Timeouts counts the invocations cut off at the function's timeout.
	Timeouts int
	// Init is the emulator's Init Duration of each cold start, and First
	// the Duration of the invocation that started the sandbox: the
	// emulator starts the bootstrap and returns before the runtime is up,
	// so the start's cost shows in First. Warm are the Durations of the
	// other invocations. Durations are the REPORT lines'.
	Init, First, Warm Durations
}

// Durations summarise a set of durations, in milliseconds.
type Durations struct {
	Count         int
	P50, P99, Max float64
}

// sandboxFigures collect a function's REPORT lines.
type sandboxFigures struct {
	coldStarts, peak, timeouts int
	init, first, warm          histogram
}

func (s *sandboxFigures) add(rep report, first bool) {
	if first {
		s.first.add(rep.duration)
		if rep.init >= 0 {
			s.init.add(rep.init)
		}
		return
	}
	s.warm.add(rep.duration)
}

func (f *rieFunction) report() SandboxReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &f.figures
	return SandboxReport{ColdStarts: s.coldStarts, Peak: s.peak, Timeouts: s.timeouts,
		Init: s.init.durations(), First: s.first.durations(), Warm: s.warm.durations()}
}

// histogram counts milliseconds in buckets 2% wide, so that a stack up for
// days keeps a few kilobytes per function, not every duration.
type histogram struct {
	counts map[int]int
	n      int
	max    float64
}

const bucketBase = 1.02

func (h *histogram) add(ms float64) {
	if h.counts == nil {
		h.counts = map[int]int{}
	}
	b := 0
	if ms > 0.01 {
		b = int(math.Ceil(math.Log(ms/0.01) / math.Log(bucketBase)))
	}
	h.counts[b]++
	h.n++
	h.max = max(h.max, ms)
}

// durations are the histogram's count, percentiles (each the upper bound
// of its bucket, at most the largest seen) and largest.
func (h *histogram) durations() Durations {
	if h.n == 0 {
		return Durations{}
	}
	buckets := make([]int, 0, len(h.counts))
	for b := range h.counts {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	at := func(q float64) float64 {
		rank := int(math.Ceil(q * float64(h.n)))
		seen := 0
		for _, b := range buckets {
			if seen += h.counts[b]; seen >= rank {
				return min(0.01*math.Pow(bucketBase, float64(b)), h.max)
			}
		}
		return h.max
	}
	return Durations{Count: h.n, P50: at(0.50), P99: at(0.99), Max: h.max}
}
