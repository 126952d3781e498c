// Package backoff waits between attempts at a call that may succeed when
// tried again (a throttled or contended write, unprocessed batch items, a
// busy cell): waits that double from a base up to a cap, with jitter so
// that writers who collided do not collide again in step, a bound on the
// attempts, and an end as soon as the context ends.
package backoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// ErrExhausted is returned by Wait when the policy allows no more attempts.
var ErrExhausted = errors.New("backoff: attempts exhausted")

// Policy is how long to wait between attempts and how many to make.
type Policy struct {
	Base time.Duration // the longest wait after the first attempt
	Max  time.Duration // the cap on every wait; Base when smaller
	// Attempts bounds the attempts in all, the first included; 0 leaves
	// them unbounded, to end with the context.
	Attempts int
}

// Delay is the longest wait after n attempts (n >= 1): Base doubled n-1
// times, at most Max.
func (p Policy) Delay(n int) time.Duration {
	d, ceiling := p.Base, max(p.Max, p.Base)
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// Wait waits before the next attempt, n attempts having been made: a
// random time between half of Delay(n) and all of it. It returns
// ErrExhausted at once when the n attempts are all the policy allows, and
// ctx's error as soon as ctx ends.
func (p Policy) Wait(ctx context.Context, n int) error {
	if p.Attempts > 0 && n >= p.Attempts {
		return ErrExhausted
	}
	d := p.Delay(n)
	if d <= 0 {
		return ctx.Err()
	}
	return Sleep(ctx, d/2+rand.N(d/2+1))
}

// Sleep waits for d or until ctx ends, whichever comes first, and returns
// ctx's error if it ended.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
