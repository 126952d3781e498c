// Command query is the query Lambda function.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"votes/cmd/internal/lambdaenv"
	"votes/infra/functions"
)

func main() {
	c, clients, log := lambdaenv.Must(context.Background())
	lambda.Start(functions.Query(c, clients, log).Handle)
}
