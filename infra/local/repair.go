package local

import (
	"context"

	"votes/infra/queue"
)

// Repairs are the stack's queues of stream failures.
func (s *Stack) Repairs() *queue.Repairs {
	return queue.NewRepairs(s.Admin.SQS, s.QueueURLs[s.Queues.ProjectorFailed], s.QueueURLs[s.Queues.RepairFailed])
}

// WaitRepaired returns once the failure queue is empty: every failure the
// projector reported was repaired, or moved to the repair dead-letter queue
// after the queue's maxReceiveCount.
func (s *Stack) WaitRepaired(ctx context.Context) error {
	for {
		n, err := queue.Depth(ctx, s.Admin.SQS, s.QueueURLs[s.Queues.ProjectorFailed])
		if err != nil || n == 0 {
			return err
		}
		if err := waitTick(ctx); err != nil {
			return err
		}
	}
}
