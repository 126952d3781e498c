package local_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/projections"
)

// TestStreamBacklogFillsBatchesWithoutAWindow: with no batching window, the
// records a stream already holds go to the projector in full rounds (up to
// the parallelization factor times the batch size), as Lambda's poller
// reads a shard ahead while its batches run: a backlog of 2,500 records at
// a factor of 2 takes two rounds of two batches, not a round per page of
// 1,000 records read. The tallies are the fold all the same.
func TestStreamBacklogFillsBatchesWithoutAWindow(t *testing.T) {
	settings := local.FastSettings()
	settings.Projector.Window = 0
	settings.Projector.Parallelization = 2
	// The deployed timeout: a batch of 1,000 records cut off at the fast
	// settings' 10 s (under -race, on a busy machine) is bisected and
	// retried, which would count as more batches.
	settings.Timeouts["projector"] = time.Minute
	s := startStack(t, nil, settings, false)
	s.HoldStream()
	store := dynamo.NewEventStore(s.Admin.DynamoDB, s.Tables.Events)
	const records = 2500
	for i := range records {
		e := domain.VoteCast{
			Schema: domain.EventSchema, SubmissionID: fmt.Sprintf("sub-%d", i), VoterID: fmt.Sprintf("voter-%d", i),
			TitleID: fmt.Sprintf("tt-%d", i%7), Aspect: "story", Choice: []string{"up", "down"}[i%2], RecordedAt: time.Now().UnixNano(),
		}
		e.VoteID = domain.VoteID(e.VoterID, e.TitleID, e.SubmissionID, e.Aspect)
		if _, err := store.Append(context.Background(), []domain.VoteCast{e}); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Usage()["projector"].Invocations
	s.ReleaseStream()
	waitIdle(t, s)
	if n := s.Usage()["projector"].Invocations - before; n > 4 {
		t.Errorf("%d records held in the stream went to the projector in %d invocations, want at most 4 (two rounds of two batches of up to 1,000)", records, n)
	}
	fold := projections.Fold(kumotest.StoredEvents(t, s.Tables.Events))
	for i := range 7 {
		title := fmt.Sprintf("tt-%d", i)
		if got := getTallies(t, s, title); !got.Equal(fold[title]) {
			t.Errorf("%s: tallies %v, fold %v", title, got, fold[title])
		}
	}
}
