package kumotest

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"pgregory.net/rapid"
)

// Fault is what a Schedule does to one SDK call.
type Fault uint8

// The faults a schedule can give a call. Pass is the zero value, so a
// schedule shrinks towards no faults.
const (
	Pass       Fault = iota
	FailBefore       // fails before it is sent: nothing applied
	FailAfter        // the emulator applies it and the answer is lost
	Delay            // held a moment before it is sent, to vary interleavings
)

// Schedule is an http.RoundTripper under the real SDK that treats the i-th
// call made through it as Script[i] says; calls past the end pass. Property
// tests draw the script from the framework (DrawScript), so a failing case
// shrinks to fewer and simpler faults and replays. Under concurrency which
// call gets which entry depends on timing, so a replay is close, not exact.
type Schedule struct {
	next   http.RoundTripper
	script []Fault
	i      atomic.Int64

	FailedBefore atomic.Int64
	FailedAfter  atomic.Int64
}

// NewSchedule fails calls as script says.
func NewSchedule(script []Fault) *Schedule {
	return &Schedule{next: http.DefaultTransport, script: script}
}

// DrawScript draws a script of up to n faults, most calls passing.
func DrawScript(t *rapid.T, n int) []Fault {
	// Weighted so that a run makes progress: 0-6 pass; shrinking lowers
	// values, so it heads for a script of passes.
	kinds := [10]Fault{Pass, Pass, Pass, Pass, Pass, Pass, Pass, FailBefore, FailAfter, Delay}
	raw := rapid.SliceOfN(rapid.IntRange(0, 9), 0, n).Draw(t, "faults")
	out := make([]Fault, len(raw))
	for i, k := range raw {
		out[i] = kinds[k]
	}
	return out
}

// Client is an HTTP client that sends through s.
func (s *Schedule) Client() *http.Client { return &http.Client{Transport: s} }

// Stop lets every later call pass.
func (s *Schedule) Stop() { s.i.Store(int64(len(s.script))) }

// RoundTrip implements http.RoundTripper.
func (s *Schedule) RoundTrip(req *http.Request) (*http.Response, error) {
	fault := Pass
	if i := s.i.Add(1) - 1; i < int64(len(s.script)) {
		fault = s.script[i]
	}
	switch fault {
	case FailBefore:
		if req.Body != nil {
			req.Body.Close()
		}
		s.FailedBefore.Add(1)
		return nil, ErrInjected
	case Delay:
		time.Sleep(time.Millisecond)
	}
	if req.Body != nil && req.GetBody == nil {
		// The SDK retries with GetBody; keep the body readable for it.
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := s.next.RoundTrip(req)
	if err != nil || fault != FailAfter {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.FailedAfter.Add(1)
	return nil, ErrInjected
}
