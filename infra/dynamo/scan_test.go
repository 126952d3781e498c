package dynamo_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/internal/kumotest"
	"votes/projections"
	"votes/projections/projectiontest"
)

// scanRecorder passes calls on and keeps the bodies of Scan requests.
type scanRecorder struct {
	mu    sync.Mutex
	scans []string
}

func (s *scanRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".Scan") && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(strings.NewReader(string(b)))
		s.mu.Lock()
		s.scans = append(s.scans, string(b))
		s.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestEventScanIsStronglyConsistent: the rebuild's scan must see every
// event written before it started, which an eventually consistent scan
// served by a lagging replica does not promise. The emulator has no
// replicas, so the test checks the request DynamoDB receives, and that the
// emulator reads it.
func TestEventScanIsStronglyConsistent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	for i, voter := range []string{"u1", "u2", "u3"} {
		if _, err := f.events.Append(ctx, []domain.VoteCast{projectiontest.Vote(voter, "t1", "s1", "story", "up", int64(100+i))}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &scanRecorder{}
	db := kumotest.Clients(t, &http.Client{Transport: rec}).DynamoDB
	scanner := dynamo.NewEventScanner(db, f.tables.Events, 2)
	read := 0
	for seg := range 2 {
		var after projections.Cursor
		for {
			events, _, next, err := scanner.Page(ctx, seg, 2, after)
			if err != nil {
				t.Fatal(err)
			}
			read += len(events)
			if after = next; after == "" {
				break
			}
		}
	}
	if read != 3 {
		t.Fatalf("scan read %d events, want 3", read)
	}
	if len(rec.scans) == 0 {
		t.Fatal("no Scan request seen")
	}
	for _, body := range rec.scans {
		if !strings.Contains(body, `"ConsistentRead":true`) {
			t.Errorf("eventually consistent scan: %s", body)
		}
	}
}
