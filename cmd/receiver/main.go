// Command receiver is the receiver Lambda function.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"votes/cmd/internal/lambdaenv"
	"votes/infra/functions"
)

func main() {
	c, aws, log := lambdaenv.Must(context.Background(), functions.ReceiverName)
	lambda.Start(functions.Receiver(c, aws.SQS(), log).Handle)
}
