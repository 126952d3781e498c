package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// ErrTimedOut is the error of an invocation cut off at the function's
// timeout (errors.Is); its text is Lambda's, "Task timed out after 30.00
// seconds".
var ErrTimedOut = errors.New("task timed out")

type timedOut time.Duration

func (d timedOut) Error() string {
	return fmt.Sprintf("Task timed out after %.2f seconds", time.Duration(d).Seconds())
}

func (timedOut) Is(target error) bool { return target == ErrTimedOut }

// Function is a handler run the way the Lambda runtime runs it: the event
// is marshalled to JSON and handed to the function's runtime, with a
// request ID and the function's timeout. The runtime is aws-lambda-go's
// own handler wrapper in this process (NewFunction), or the function's
// bootstrap under the Lambda Runtime Interface Emulator (rie.go).
type Function struct {
	name    string
	timeout time.Duration
	run     invoker
	seq     atomic.Uint64
	busy    atomic.Int64 // nanoseconds spent in invocations
}

// An invoker runs invocations of one function, as Lambda's invoke API
// does. payload is the event's JSON and the answer the response's JSON,
// which the caller owns. The error is the function's own error, as Lambda
// reports a failed invoke, or one that wraps ErrTimedOut when the
// invocation ran into the function's timeout: the invoker returns it at
// the timeout whether or not the handler has returned. When ctx ends
// first, the invocation is cut off and the invoker returns soon with an
// error. Calls from several goroutines at once each run in their own
// sandbox, as Lambda runs concurrent invocations; a sandbox runs one
// invocation at a time, and what one leaves in memory the next may see.
type invoker interface {
	invoke(ctx context.Context, lc *lambdacontext.LambdaContext, payload []byte) ([]byte, error)
}

// Usage is how often a function ran and for how long in all.
type Usage struct {
	Invocations int64
	Duration    time.Duration
}

// Usage reports the function's invocations and their total duration.
func (f *Function) Usage() Usage {
	return Usage{Invocations: int64(f.seq.Load()), Duration: time.Duration(f.busy.Load())}
}

// ResetUsage starts counting afresh.
func (f *Function) ResetUsage() {
	f.seq.Store(0)
	f.busy.Store(0)
}

// NewFunction wraps a handler function of any signature lambda.Start takes,
// run in this process under timeout (none when 0).
func NewFunction(name string, timeout time.Duration, handlerFunc any) *Function {
	p := &inProcess{timeout: timeout}
	p.sandboxes.New = func() any { return lambda.NewHandler(handlerFunc) }
	return &Function{name: name, timeout: timeout, run: p}
}

// Invoke calls the function with event and decodes its response into out.
// An error is the function's own error, as Lambda reports a failed invoke.
//
// The invocation ends at the function's timeout, and at that moment
// Invoke returns ErrTimedOut whether or not the handler has returned, as
// Lambda does. Calls the handler had in flight may still land: Lambda
// freezes a timed-out sandbox rather than undoing what it sent, so the
// pipeline must tolerate both.
func (f *Function) Invoke(ctx context.Context, event, out any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("invoke %s: encode event: %w", f.name, err)
	}
	began := time.Now()
	lc := &lambdacontext.LambdaContext{
		AwsRequestID:       fmt.Sprintf("local-%s-%d", f.name, f.seq.Add(1)),
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:" + f.name,
	}
	resp, err := f.run.invoke(ctx, lc, payload)
	f.busy.Add(int64(time.Since(began)))
	if err != nil {
		return fmt.Errorf("invoke %s: %w", f.name, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("invoke %s: decode response: %w", f.name, err)
	}
	return nil
}

// inProcess runs a function's handler in this process, through
// aws-lambda-go's handler wrapper. The handler's context ends at the
// function's timeout; the handler goes on until it notices.
type inProcess struct {
	timeout time.Duration
	// sandboxes hold aws-lambda-go handler wrappers, one per invocation in
	// flight. A wrapper is made for one invocation at a time, as in a
	// Lambda sandbox: the bytes its Invoke returns live in a buffer it
	// reuses for its next call. The handler they wrap is shared.
	sandboxes sync.Pool
}

var _ invoker = (*inProcess)(nil)

func (p *inProcess) invoke(ctx context.Context, lc *lambdacontext.LambdaContext, payload []byte) ([]byte, error) {
	cancel := context.CancelFunc(func() {})
	var expired <-chan time.Time
	if p.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		timer := time.NewTimer(p.timeout)
		defer timer.Stop()
		expired = timer.C
	}
	ctx = lambdacontext.NewContext(ctx, lc)
	type result struct {
		resp []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer cancel()
		h := p.sandboxes.Get().(lambda.Handler)
		resp, err := h.Invoke(ctx, payload)
		resp = bytes.Clone(resp) // before the wrapper's buffer is reused
		p.sandboxes.Put(h)
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-expired:
		return nil, timedOut(p.timeout)
	}
}
