// Command repairer is the repairer Lambda function: it repairs what the
// projector gave up on, from the projector's failure queue.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"votes/cmd/internal/lambdaenv"
	"votes/infra/functions"
)

func main() {
	c, aws, log := lambdaenv.Must(context.Background(), functions.RepairerName)
	lambda.Start(functions.Repairer(c, aws.DynamoDB(), aws.Streams(), aws.SQS(), log).Handle)
}
