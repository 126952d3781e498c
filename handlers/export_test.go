package handlers

import "github.com/aws/aws-lambda-go/events"

// ClientResponse is the response a client gets for err.
func ClientResponse(err error) events.APIGatewayV2HTTPResponse {
	return errorResponse(clientError(err))
}
