// Command processor is the processor Lambda function.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"votes/cmd/internal/lambdaenv"
	"votes/infra/functions"
)

func main() {
	c, clients, log := lambdaenv.Must(context.Background())
	lambda.Start(functions.Processor(c, clients, log).Handle)
}
