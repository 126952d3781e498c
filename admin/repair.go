package admin

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"votes/infra/queue"
)

// Unrepaired counts a deployment's unrepaired stream failures (see
// queue.Repairs.Unrepaired), finding its queues by name on each call. A
// rebuild must not mark its version ready while the count is above zero.
func Unrepaired(client *sqs.Client, names queue.Names) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		urls, err := queue.URLs(ctx, client, names)
		if err != nil {
			return 0, err
		}
		return queue.NewRepairs(client, urls[names.ProjectorFailed], urls[names.RepairFailed]).Unrepaired(ctx)
	}
}
