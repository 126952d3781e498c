// Command processor is the processor Lambda function.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"votes/cmd/internal/lambdaenv"
	"votes/infra/functions"
)

func main() {
	c, aws, log := lambdaenv.Must(context.Background(), functions.ProcessorName)
	lambda.Start(functions.Processor(c, aws.DynamoDB(), aws.SQS(), log).Handle)
}
