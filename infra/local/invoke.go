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
// is marshalled to JSON and handed to aws-lambda-go's own handler wrapper,
// with a Lambda context carrying a request ID and the deadline of the
// function's timeout.
type Function struct {
	name    string
	timeout time.Duration
	// sandboxes hold aws-lambda-go handler wrappers, one per invocation in
	// flight. A wrapper is made for one invocation at a time, as in a
	// Lambda sandbox: the bytes its Invoke returns live in a buffer it
	// reuses for its next call. The handler they wrap is shared.
	sandboxes sync.Pool
	seq       atomic.Uint64
	busy      atomic.Int64 // nanoseconds spent in invocations
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
// run under timeout (none when 0).
func NewFunction(name string, timeout time.Duration, handlerFunc any) *Function {
	f := &Function{name: name, timeout: timeout}
	f.sandboxes.New = func() any { return lambda.NewHandler(handlerFunc) }
	return f
}

// Invoke calls the function with event and decodes its response into out.
// An error is the function's own error, as Lambda reports a failed invoke.
//
// The handler's context ends at the function's timeout, and at that moment
// Invoke returns ErrTimedOut whether or not the handler has returned, as
// Lambda does. The handler goes on until it notices, and calls it had in
// flight may still land: Lambda freezes a timed-out sandbox rather than
// undoing what it sent, so the pipeline must tolerate both.
func (f *Function) Invoke(ctx context.Context, event, out any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("invoke %s: encode event: %w", f.name, err)
	}
	began := time.Now()
	cancel := context.CancelFunc(func() {})
	var expired <-chan time.Time
	if f.timeout > 0 {
		ctx, cancel = context.WithDeadline(ctx, began.Add(f.timeout))
		timer := time.NewTimer(f.timeout)
		defer timer.Stop()
		expired = timer.C
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       fmt.Sprintf("local-%s-%d", f.name, f.seq.Add(1)),
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:" + f.name,
	})
	type result struct {
		resp []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer cancel()
		h := f.sandboxes.Get().(lambda.Handler)
		resp, err := h.Invoke(ctx, payload)
		resp = bytes.Clone(resp) // before the wrapper's buffer is reused
		f.sandboxes.Put(h)
		done <- result{resp, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-expired:
		r.err = timedOut(f.timeout)
	}
	f.busy.Add(int64(time.Since(began)))
	if r.err != nil {
		return fmt.Errorf("invoke %s: %w", f.name, r.err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.resp, out); err != nil {
		return fmt.Errorf("invoke %s: decode response: %w", f.name, err)
	}
	return nil
}
