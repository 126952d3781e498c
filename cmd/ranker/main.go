// Command ranker is the ranker Lambda function: every minute, on
// EventBridge's schedule, it refreshes the precomputed rankings of every
// projection version written from their title indexes.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"votes/cmd/internal/lambdaenv"
	"votes/infra/functions"
)

func main() {
	c, aws, log := lambdaenv.Must(context.Background(), functions.RankerName)
	lambda.Start(functions.Ranker(c, aws.DynamoDB(), log).Handle)
}
