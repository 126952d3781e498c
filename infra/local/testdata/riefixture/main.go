// Command riefixture is a Lambda function for the tests of the local
// stack's RIE runtime: it does what its event asks, so that a test can
// watch the runtime start, reuse, cut off and replace its process.
package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// event asks for one thing; the zero event answers who ran it.
type event struct {
	Sleep string `json:"sleep"` // sleep this long, deaf to the deadline
	Fail  string `json:"fail"`  // return this error
	Exit  int    `json:"exit"`  // end the process with this status
}

type answer struct {
	PID int               `json:"pid"`
	Env map[string]string `json:"env"`
	// Invocations counts this process's invocations, this one included.
	Invocations int `json:"invocations"`
}

var invocations int

func handle(ctx context.Context, e event) (answer, error) {
	invocations++
	switch {
	case e.Sleep != "":
		d, err := time.ParseDuration(e.Sleep)
		if err != nil {
			return answer{}, err
		}
		time.Sleep(d)
	case e.Fail != "":
		return answer{}, errors.New(e.Fail)
	case e.Exit != 0:
		os.Exit(e.Exit)
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return answer{PID: os.Getpid(), Env: env, Invocations: invocations}, nil
}

func main() { lambda.Start(handle) }
