package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/admin"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/kumotest"
)

// TestRestoreFromAnInterruptedSwap: a stack started on a data directory
// whose last run was killed in the middle of giving the event table its
// stream back (the events in the holding table, marked complete; the event
// table gone) finishes the swap: every event is back, the holding table
// is gone. After a run that did not stop cleanly every event goes through
// the projector again and the tallies end as the fold of the events
// (verify finds no difference); after a clean stop none does, the tallies
// being taken as already projected. kumo here keeps no snapshot, so Close
// reports that it could not write the final state.
func TestRestoreFromAnInterruptedSwap(t *testing.T) {
	for _, clean := range []bool{false, true} {
		name := "killed"
		if clean {
			name = "clean"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			stage := kumotest.Stage(t)
			opts := kumotest.Options(nil)
			c, err := awscfg.New(ctx, awscfg.Options{Endpoint: opts.Endpoint})
			if err != nil {
				t.Fatal(err)
			}
			tables := dynamo.TablesFor(stage)
			holding := tables.Events + "-restoring"
			const events = 300
			leaveInterruptedSwap(t, c.DynamoDB, tables, holding, events)
			dir := t.TempDir()
			if clean {
				if err := os.WriteFile(filepath.Join(dir, "votes-clean-stop"), []byte("stop-1\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			s, err := local.Start(ctx, local.Config{Stage: stage, Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: local.FastSettings(), DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					s.Close(context.Background())
				}
			})
			if want := (local.Restored{Events: events, Replayed: !clean}); s.Restored != want {
				t.Errorf("restored %+v, want %+v", s.Restored, want)
			}
			if _, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(holding)}); !isNotFound(err) {
				t.Errorf("the holding table is still there: %v", err)
			}
			if n := countItems(t, c.DynamoDB, tables.Events); n != events {
				t.Errorf("the event table has %d items after the restore, want %d", n, events)
			}
			if _, err := os.Stat(filepath.Join(dir, "votes-clean-stop")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the clean-stop mark outlived the start (a kill now would be taken for a clean stop): %v", err)
			}
			waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := s.WaitIdle(waitCtx); err != nil {
				t.Fatal(err)
			}
			projected := s.StreamProgress().Records
			res, err := admin.New(dynamo.NewStage(c.DynamoDB, tables).Deployment()).Verify(ctx, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case !clean && (projected != events || len(res.Differences) != 0):
				t.Errorf("after a kill: %d records projected and %d titles differ from the fold, want %d and none", projected, len(res.Differences), events)
			case clean && projected != 0:
				t.Errorf("after a clean stop: %d records projected again, want none", projected)
			}
			closed = true
			if err := s.Close(ctx); err == nil {
				t.Error("Close says the final state was written, but kumo keeps no snapshot here")
			}
		})
	}
}

// leaveInterruptedSwap leaves the stage's tables as a run killed in the
// middle of a swap does: n seeded events in the holding table, marked
// complete, and no event table.
func leaveInterruptedSwap(t *testing.T, db *dynamodb.Client, tables dynamo.Tables, holding string, n int) {
	t.Helper()
	ctx := context.Background()
	for _, spec := range tables.Specs() {
		if _, err := db.CreateTable(ctx, spec.CreateInput()); err != nil {
			t.Fatal(err)
		}
		if spec.Name == tables.Events {
			spec.Name, spec.StreamView = holding, ""
			if _, err := db.CreateTable(ctx, spec.CreateInput()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := admin.New(dynamo.NewStage(db, tables).Deployment()).Seed(ctx, admin.SeedOptions{Events: n, Titles: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	var start map[string]types.AttributeValue
	for {
		page, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(tables.Events), ExclusiveStartKey: start})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(holding), Item: it}); err != nil {
				t.Fatal(err)
			}
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}
	mark := map[string]types.AttributeValue{
		dynamo.AttrCell: &types.AttributeValueMemberS{Value: "~restoring"}, dynamo.AttrVoteID: &types.AttributeValueMemberS{Value: "~complete"},
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(holding), Item: mark}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tables.Events)}); err != nil {
		t.Fatal(err)
	}
}

func countItems(t *testing.T, db *dynamodb.Client, table string) int {
	t.Helper()
	n := 0
	var start map[string]types.AttributeValue
	for {
		page, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ExclusiveStartKey: start})
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Items)
		if start = page.LastEvaluatedKey; len(start) == 0 {
			return n
		}
	}
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
