package local

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Function is a handler run the way the Lambda runtime runs it: the event
// is marshalled to JSON and handed to aws-lambda-go's own handler wrapper,
// with a Lambda context carrying a request ID.
type Function struct {
	name    string
	handler lambda.Handler
	seq     atomic.Uint64
	busy    atomic.Int64 // nanoseconds spent in invocations
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

// NewFunction wraps a handler function of any signature lambda.Start takes.
func NewFunction(name string, handlerFunc any) *Function {
	return &Function{name: name, handler: lambda.NewHandler(handlerFunc)}
}

// Invoke calls the function with event and decodes its response into out.
// An error is the function's own error, as Lambda reports a failed invoke.
func (f *Function) Invoke(ctx context.Context, event, out any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("invoke %s: encode event: %w", f.name, err)
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       fmt.Sprintf("local-%s-%d", f.name, f.seq.Add(1)),
		InvokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:" + f.name,
	})
	began := time.Now()
	resp, err := f.handler.Invoke(ctx, payload)
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
