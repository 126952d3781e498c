// Package registry blank-imports the kumo services this copy keeps, so that
// importing it registers them via each service's init(). (The server itself
// imports lambda, s3 and sns for its SNS/SQS and S3/Lambda wiring, which
// registers them too.)
package registry

import (
	_ "github.com/sivchari/kumo/internal/service/dynamodb"
	_ "github.com/sivchari/kumo/internal/service/dynamodbstreams"
	_ "github.com/sivchari/kumo/internal/service/sqs"
)
