package kumotest

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"votes/infra/faults"
	"votes/projections/projectiontest"
)

// Schedule is an http.RoundTripper under the real SDK that treats the i-th
// call made through it as Script[i] says; calls past the end pass. Property
// tests draw the script from the framework (projectiontest.DrawScript), so a failing case
// shrinks to fewer and simpler faults and replays. Under concurrency which
// call gets which entry depends on timing, so a replay is close, not exact.
type Schedule struct {
	next   http.RoundTripper
	script []projectiontest.Fault
	i      atomic.Int64

	FailedBefore atomic.Int64
	FailedAfter  atomic.Int64
}

// NewSchedule fails calls as script says.
func NewSchedule(script []projectiontest.Fault) *Schedule {
	return &Schedule{next: http.DefaultTransport, script: script}
}

// Client is an HTTP client that sends through s.
func (s *Schedule) Client() *http.Client { return &http.Client{Transport: s} }

// Stop lets every later call pass.
func (s *Schedule) Stop() { s.i.Store(int64(len(s.script))) }

// RoundTrip implements http.RoundTripper.
func (s *Schedule) RoundTrip(req *http.Request) (*http.Response, error) {
	fault := projectiontest.Pass
	if i := s.i.Add(1) - 1; i < int64(len(s.script)) {
		fault = s.script[i]
	}
	switch fault {
	case projectiontest.FailBefore:
		if req.Body != nil {
			req.Body.Close()
		}
		s.FailedBefore.Add(1)
		return nil, faults.ErrInjected
	case projectiontest.Delay:
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
	// Retried is FailAfter here: the SDK itself sends the call again.
	if err != nil || (fault != projectiontest.FailAfter && fault != projectiontest.Retried) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.FailedAfter.Add(1)
	return nil, faults.ErrInjected
}
