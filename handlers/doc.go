// Package handlers holds the Lambda handlers: aws-lambda-go events in, domain
// calls, responses and batch-item failures out. The same handlers run in AWS
// and in the local stack.
package handlers
