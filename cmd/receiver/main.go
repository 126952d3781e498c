// Command receiver is the receiver Lambda function.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"votes/cmd/internal/lambdaenv"
	"votes/infra/functions"
)

func main() {
	c, aws, log := lambdaenv.Must(context.Background(), functions.ReceiverName)
	// Behind a function URL with auth=jwt, the receiver fetches the
	// issuer's keys itself: within a few seconds, or the request is a 503
	// to retry, well inside the function's 10 s.
	tokens, err := functions.ReceiverTokens(c, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "configuration:", err)
		os.Exit(1)
	}
	lambda.Start(functions.Receiver(c, aws.SQS(), tokens, log).Handle)
}
