// Package faults injects failures into AWS SDK calls: an http.RoundTripper
// under the real SDK that fails calls before they are sent, or after the
// server applied them with the response lost on the way back. Tests use it
// against the emulator, and `votes dev --faults` plays a flaky network with
// it.
package faults

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

// Fault is what happens to one call.
type Fault int

// The faults a call can meet.
const (
	None   Fault = iota // the call goes through
	Before              // the call fails before it is sent: nothing applied
	After               // the server applies the call, and its response is lost
)

// Decider chooses the fault of one call from its API action (X-Amz-Target,
// or the body for the SQS query protocol) and its body. It is called with
// the transport's lock held, one call at a time, so it may keep state (a
// schedule drawn by a property test, say) without locking.
type Decider func(target, body string) Fault

// Transport is an http.RoundTripper that sits under the real SDK and fails
// calls on purpose: before they reach the server (nothing applied), or
// after the server applied them with the response lost on the way back,
// the case that makes retries dangerous. Outages make every call fail for a
// while, as when a Lambda dies mid-batch. Rules are safe to change while
// calls are in flight.
type Transport struct {
	next http.RoundTripper

	mu          sync.Mutex
	rng         *rand.Rand
	before      float64 // chance a call fails before it is sent
	after       float64 // chance a call fails after it was applied
	match       func(target, body string) bool
	decide      Decider
	outageUntil time.Time

	Calls        atomic.Int64
	FailedBefore atomic.Int64
	FailedAfter  atomic.Int64
}

// New injects nothing until told to; seed makes the random choices
// repeatable (for a given order of calls).
func New(seed uint64) *Transport {
	return &Transport{next: http.DefaultTransport, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Client is an HTTP client that sends through f.
func (f *Transport) Client() *http.Client { return &http.Client{Transport: f} }

// Set makes calls fail before sending with probability before and after the
// server applied them with probability after. match, when not nil, limits
// faults to calls whose X-Amz-Target (the API action) and body it accepts.
// It replaces any earlier rule.
func (f *Transport) Set(before, after float64, match func(target, body string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before, f.after, f.match, f.decide = before, after, match, nil
}

// SetRate makes a fraction rate (0 to 1) of all calls fail: half of them
// before they are sent, half after the server applied them.
func (f *Transport) SetRate(rate float64) {
	half := min(max(rate, 0), 1) / 2
	// The after-draw only happens for calls that passed the before-draw.
	f.Set(half, half/(1-half), nil)
}

// SetDecider lets decide choose every call's fault, replacing any earlier
// rule; outages still apply.
func (f *Transport) SetDecider(decide Decider) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before, f.after, f.match, f.decide = 0, 0, nil, decide
}

// Outage makes every call fail before it is sent, for d.
func (f *Transport) Outage(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outageUntil = time.Now().Add(d)
}

// Off stops injecting faults.
func (f *Transport) Off() { f.Set(0, 0, nil); f.Outage(0) }

// RoundTrip implements http.RoundTripper.
func (f *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
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
	fault := f.choose(target, string(body))
	if fault == Before {
		f.FailedBefore.Add(1)
		return nil, ErrInjected
	}
	resp, err := f.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if fault == After {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		f.FailedAfter.Add(1)
		return nil, ErrInjected
	}
	return resp, nil
}

func (f *Transport) choose(target, body string) Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case time.Now().Before(f.outageUntil):
		return Before
	case f.decide != nil:
		return f.decide(target, body)
	case f.match != nil && !f.match(target, body):
		return None
	case f.rng.Float64() < f.before:
		return Before
	case f.rng.Float64() < f.after:
		return After
	}
	return None
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
