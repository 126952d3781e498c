package kumotest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInjected is the error of every injected fault.
var ErrInjected = errors.New("injected fault")

// Faults is an http.RoundTripper that sits under the real SDK and fails
// calls on purpose: before they reach the emulator (nothing applied), or
// after the emulator applied them with the response lost on the way back,
// the case that makes retries dangerous. Outages make every call fail for a
// while, as when a Lambda dies mid-batch. Rules are safe to change while
// calls are in flight.
type Faults struct {
	next http.RoundTripper

	mu          sync.Mutex
	rng         *rand.Rand
	before      float64 // chance a call fails before it is sent
	after       float64 // chance a call fails after it was applied
	match       func(target, body string) bool
	outageUntil time.Time

	Calls        atomic.Int64
	FailedBefore atomic.Int64
	FailedAfter  atomic.Int64
}

// NewFaults injects nothing until told to; seed makes the choices repeatable.
func NewFaults(seed uint64) *Faults {
	return &Faults{next: http.DefaultTransport, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Client is an HTTP client that sends through f.
func (f *Faults) Client() *http.Client { return &http.Client{Transport: f} }

// Set makes calls fail before sending with probability before and after the
// emulator applied them with probability after. match, when not nil,
// limits faults to calls whose X-Amz-Target (the API action) and body it
// accepts.
func (f *Faults) Set(before, after float64, match func(target, body string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before, f.after, f.match = before, after, match
}

// Outage makes every call fail before it is sent, for d.
func (f *Faults) Outage(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outageUntil = time.Now().Add(d)
}

// Off stops injecting faults.
func (f *Faults) Off() { f.Set(0, 0, nil); f.Outage(0) }

// RoundTrip implements http.RoundTripper.
func (f *Faults) RoundTrip(req *http.Request) (*http.Response, error) {
	f.Calls.Add(1)
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		body = b
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	target := req.Header.Get("X-Amz-Target")
	if target == "" { // the SQS query protocol names the action in the body
		target = string(body)
	}
	f.mu.Lock()
	outage := time.Now().Before(f.outageUntil)
	eligible := f.match == nil || f.match(target, string(body))
	failBefore := outage || (eligible && f.rng.Float64() < f.before)
	failAfter := !failBefore && eligible && f.rng.Float64() < f.after
	f.mu.Unlock()
	if failBefore {
		f.FailedBefore.Add(1)
		return nil, ErrInjected
	}
	resp, err := f.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if failAfter {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		f.FailedAfter.Add(1)
		return nil, ErrInjected
	}
	return resp, nil
}

// Action reports whether an X-Amz-Target names one of actions, for match.
func Action(target string, actions ...string) bool {
	for _, a := range actions {
		if strings.HasSuffix(target, "."+a) {
			return true
		}
	}
	return false
}
