package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/kumotest"
	"votes/projections"
)

// lockedBuffer collects the stack's log lines from every goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		if strings.Contains(line, substr) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

var errCellWrite = errors.New("tally write refused")

// failCellWrites fails, while on is set, every tally cell write of title
// made through the clients it is added to. It counts what it failed.
func failCellWrites(title string, on *atomic.Bool, failed *atomic.Int64) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("failCellWrites", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if u, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok && on.Load() {
				if pk, ok := u.Key[dynamo.AttrPK].(*types.AttributeValueMemberS); ok && strings.Contains(pk.Value, "#"+title+"#") {
					failed.Add(1)
					return middleware.InitializeOutput{}, middleware.Metadata{}, errCellWrite
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	}
}

// TestStreamFailureIsRepairedAutomatically forces the live projector to
// give up on a title's stream records (every write of its tally cells by
// the projector fails, past the mapping's retry attempts), and checks that
// the batch's description reaches the failure queue, that the repairer
// reads the range back and projects it by itself, that the tallies then
// equal the fold of the event table, and that nothing is left unrepaired.
func TestStreamFailureIsRepairedAutomatically(t *testing.T) {
	const doomed, fine = "tt-doomed", "tt-fine"
	settings := local.FastSettings()
	settings.Projector.MaxRetryAttempts = 2
	var on atomic.Bool
	var failed atomic.Int64
	on.Store(true)
	logs := &lockedBuffer{}
	opts := kumotest.Options(nil)
	s, err := local.Start(context.Background(), local.Config{
		Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: settings,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		// Only the projector's writes fail: the repairer writes the same cells.
		FunctionAPIOptions: func(fn string) []func(*middleware.Stack) error {
			if fn == "projector" {
				return []func(*middleware.Stack) error{failCellWrites(doomed, &on, &failed)}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	}()

	for i := range 12 {
		title := []string{doomed, fine}[i%2]
		choice := []string{"up", "down", "up"}[i%3]
		if code, body := post(t, s.URL, "", map[string]any{"voterId": fmt.Sprint("u-", i), "titleId": title,
			"votes": []map[string]string{{"aspect": "story", "choice": choice}, {"aspect": "acting", "choice": "up"}}}); code != http.StatusAccepted {
			t.Fatalf("POST: %d %v", code, body)
		}
	}
	waitIdle(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitRepaired(ctx); err != nil {
		t.Fatalf("failure queue not drained: %v", err)
	}

	givenUp := logs.lines("stream batch given up")
	repaired := logs.lines(`msg=repaired`)
	t.Logf("the projector's cell writes of %s failed %d times; batches given up after %d retry attempts:", doomed, failed.Load(), settings.Projector.MaxRetryAttempts)
	for _, l := range givenUp {
		t.Log("  " + l)
	}
	t.Logf("repairer: %d invocations", s.Functions.Repairer.Usage().Invocations)
	for _, l := range repaired {
		t.Log("  " + l)
	}
	if len(givenUp) == 0 || failed.Load() == 0 {
		t.Fatal("the projector never gave up on a batch: the test proves nothing")
	}
	if len(repaired) < len(givenUp) || !strings.Contains(repaired[0], "stream range") {
		t.Errorf("%d batches given up, %d repaired", len(givenUp), len(repaired))
	}

	// The projector's writes of the doomed title failed to the end: each of
	// its counts was written by the repairer.
	events := kumotest.StoredEvents(t, s.Tables.Events)
	fold := projections.Fold(events)
	for _, title := range []string{doomed, fine} {
		got := getTallies(t, s, title)
		t.Logf("%s: tallies %v, fold of the event table %v", title, got, fold[title])
		if !got.Equal(fold[title]) {
			t.Errorf("%s: tallies %v, fold of the event table %v; diff %v", title, got, fold[title], got.Diff(fold[title]))
		}
	}
	n, err := s.Repairs().Unrepaired(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unrepaired: %d", n)
	if n != 0 {
		t.Errorf("%d failures left unrepaired", n)
	}
}
