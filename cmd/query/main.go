// Command query is the query Lambda function.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"votes/cmd/internal/lambdaenv"
	"votes/infra/functions"
)

func main() {
	c, aws, log := lambdaenv.Must(context.Background(), functions.QueryName)
	lambda.Start(functions.Query(c, aws.DynamoDB(), log).Handle)
}
