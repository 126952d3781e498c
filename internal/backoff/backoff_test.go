package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"votes/internal/backoff"
)

func TestDelayDoublesUpToTheCap(t *testing.T) {
	p := backoff.Policy{Base: 10 * time.Millisecond, Max: 70 * time.Millisecond}
	want := []time.Duration{10, 20, 40, 70, 70}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := (backoff.Policy{Base: time.Second}).Delay(1000); got != time.Second {
		t.Errorf("no Max: Delay = %v, want Base", got)
	}
}

func TestWaitStaysWithinTheDelay(t *testing.T) {
	p := backoff.Policy{Base: 20 * time.Millisecond, Max: 20 * time.Millisecond}
	for range 5 {
		began := time.Now()
		if err := p.Wait(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(began); d < 10*time.Millisecond {
			t.Fatalf("waited %v, less than half the delay", d)
		}
	}
}

func TestWaitBoundsTheAttempts(t *testing.T) {
	p := backoff.Policy{Base: time.Millisecond, Attempts: 3}
	for n := 1; n < 3; n++ {
		if err := p.Wait(context.Background(), n); err != nil {
			t.Fatalf("after %d of 3 attempts: %v", n, err)
		}
	}
	if err := p.Wait(context.Background(), 3); !errors.Is(err, backoff.ErrExhausted) {
		t.Fatalf("after 3 of 3 attempts: %v, want ErrExhausted", err)
	}
}

// TestWaitEndsWithTheContext: Ctrl-C during a long wait is not kept
// waiting.
func TestWaitEndsWithTheContext(t *testing.T) {
	p := backoff.Policy{Base: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	began := time.Now()
	if err := p.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with its context cancelled: %v", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("the wait went on %v after its context ended", d)
	}
	if err := p.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait on an ended context: %v", err)
	}
}

func TestSleep(t *testing.T) {
	began := time.Now()
	if err := backoff.Sleep(context.Background(), 20*time.Millisecond); err != nil || time.Since(began) < 20*time.Millisecond {
		t.Fatalf("sleep of 20ms: %v after %v", err, time.Since(began))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	began = time.Now()
	if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(began) > 5*time.Second {
		t.Fatalf("sleep on an ended context: %v after %v", err, time.Since(began))
	}
}
