package loadgen_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"votes/internal/loadgen"
	"votes/projections"
)

// TestCheckRetriesUnavailableReads: a tallies read answered 503 (a query
// invocation that failed) is read again, not taken for the run's failure;
// a 404 is not retried.
func TestCheckRetriesUnavailableReads(t *testing.T) {
	var calls, status atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(int(status.Load()))
			return
		}
		_, _ = w.Write([]byte(`{"titleId":"tt1","aspects":{"story":{"up":1,"down":0}}}`))
	}))
	defer srv.Close()
	res := loadgen.Result{Titles: []string{"tt1"}, Expected: map[string]projections.Counts{"tt1": {"story": {"up": 1}}}}
	bad, err := loadgen.Check(context.Background(), nil, srv.URL, res, 5*time.Second)
	if err != nil || len(bad) != 0 || calls.Load() != 3 {
		t.Fatalf("check after two 503s: %v, %v, %d reads", bad, err, calls.Load())
	}

	calls.Store(0)
	status.Store(http.StatusNotFound)
	if _, err := loadgen.Check(context.Background(), nil, srv.URL, res, 5*time.Second); err == nil || calls.Load() != 1 {
		t.Fatalf("check after a 404: %v, %d reads; want the error at once", err, calls.Load())
	}
}
