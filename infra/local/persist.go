package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"votes/infra/dynamo"
)

// What kumo v0.33.1 keeps in its data directory (KUMO_DATA_DIR, read once
// when the process starts), and what the stack adds:
//
//   - DynamoDB: every table and item, in dynamodb.json, marshalled whole
//     under one lock, so the tables of one snapshot are of one instant.
//   - SQS: every queue and its visible messages, in sqs.json; a message
//     in flight (received, not yet deleted) is not written.
//   - Both are written by a background loop at most once a second
//     (KUMO_PERSIST_FLUSH_INTERVAL_MS) after a change, and read only when
//     the process starts. kumo.Server.Close writes nothing.
//   - DynamoDB Streams: nothing. The stream lives in memory; after a
//     restart the event table still names its old stream, which kumo no
//     longer knows (DescribeStream: ResourceNotFoundException) and to which
//     it emits nothing, and only CreateTable registers a stream.
//
// So the stack, at start, gives a reloaded event table a stream again: it
// copies the events to a holding table, recreates the event table (a new
// stream) and copies them back; and at Close it waits until both files hold
// the final state. The stream's position is settled by how the last run
// ended. After a clean stop every record had been projected (Close waited
// for the pipeline to be idle): the events go back with BatchWriteItem,
// which kumo does not stream, and nothing is projected again. After a hard
// kill (or a stop that did not drain, or with batches waiting for the
// repairer, whose stream ranges name the old stream) the events go back
// with PutItem, each one a stream record: the projector folds every event
// once more, which its idempotence makes exact, and the tallies end as the
// fold of the snapshot's events.

// cleanStopFile, in the data directory, says that the last run stopped
// with the pipeline idle and its final state written.
const cleanStopFile = "votes-clean-stop"

// restoringComplete is the item a holding table gets once every event is
// in it.
var restoringComplete = map[string]dtypes.AttributeValue{
	dynamo.AttrCell:   &dtypes.AttributeValueMemberS{Value: "~restoring"},
	dynamo.AttrVoteID: &dtypes.AttributeValueMemberS{Value: "~complete"},
}

// Restored says what a stack found in its data directory.
type Restored struct {
	// Events is how many events the event table had.
	Events int
	// Replayed says the events went through the projector again: the
	// last run did not stop cleanly.
	Replayed bool
}

// reattachStream gives the event table a stream kumo knows, after a
// restart from a data directory, and returns its ARN.
func (s *Stack) reattachStream(ctx context.Context, dir, streamARN string) (string, error) {
	db := s.Admin.DynamoDB
	events := s.Tables.Events
	holding := events + "-restoring"
	cleanPath := filepath.Join(dir, cleanStopFile)
	_, statErr := os.Stat(cleanPath)
	clean := statErr == nil
	if clean {
		// Batches given up on wait for the repairer, which reads them back
		// from the old stream: fold everything again instead.
		if n, err := s.QueueDepth(ctx, s.Queues.ProjectorFailed); err != nil {
			return "", err
		} else if n > 0 {
			clean = false
		}
	}

	holdingState, err := tableState(ctx, db, holding)
	if err != nil {
		return "", err
	}
	attached := true
	if _, err := s.Admin.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(streamARN)}); err != nil {
		var nf *streamtypes.ResourceNotFoundException
		if !errors.As(err, &nf) {
			return "", fmt.Errorf("dynamodb streams: describe stream %s: %w", streamARN, err)
		}
		attached = false
	}
	if attached && holdingState != holdingComplete {
		if holdingState == holdingPartial {
			if err := deleteTable(ctx, db, holding); err != nil {
				return "", err
			}
		}
		// A new data directory, or one this process already attached.
		if err := os.Remove(cleanPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		return streamARN, nil
	}

	spec := s.eventsSpec()
	if holdingState != holdingComplete {
		// The event table came from the snapshot without its stream.
		if holdingState == holdingPartial {
			if err := deleteTable(ctx, db, holding); err != nil {
				return "", err
			}
		}
		hs := spec
		hs.Name, hs.StreamView = holding, ""
		if _, err := db.CreateTable(ctx, hs.CreateInput()); err != nil {
			return "", fmt.Errorf("dynamodb: create table %s: %w", holding, err)
		}
		if _, err := copyItems(ctx, db, events, holding, false); err != nil {
			return "", err
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(holding), Item: restoringComplete}); err != nil {
			return "", fmt.Errorf("dynamodb: mark %s complete: %w", holding, err)
		}
	}
	// From here the holding table has every event: a run killed below
	// starts again here.
	if err := deleteTable(ctx, db, events); err != nil {
		return "", err
	}
	if _, err := db.CreateTable(ctx, spec.CreateInput()); err != nil {
		return "", fmt.Errorf("dynamodb: create table %s: %w", events, err)
	}
	n, err := copyItems(ctx, db, holding, events, !clean)
	if err != nil {
		return "", err
	}
	if err := deleteTable(ctx, db, holding); err != nil {
		return "", err
	}
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(events)})
	if err != nil {
		return "", fmt.Errorf("dynamodb: describe table %s: %w", events, err)
	}
	s.Restored = Restored{Events: n, Replayed: !clean}
	if err := os.Remove(cleanPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	return aws.ToString(desc.Table.LatestStreamArn), nil
}

func (s *Stack) eventsSpec() dynamo.TableSpec {
	for _, spec := range s.Tables.Specs() {
		if spec.Name == s.Tables.Events {
			return spec
		}
	}
	panic("local: no event table among the specs")
}

type holdingTable int

const (
	holdingAbsent holdingTable = iota
	holdingPartial
	holdingComplete
)

func tableState(ctx context.Context, db *dynamodb.Client, name string) (holdingTable, error) {
	if _, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
		var nf *dtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return holdingAbsent, nil
		}
		return 0, fmt.Errorf("dynamodb: describe table %s: %w", name, err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: restoringComplete, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("dynamodb: read %s's mark: %w", name, err)
	}
	if out.Item == nil {
		return holdingPartial, nil
	}
	return holdingComplete, nil
}

func deleteTable(ctx context.Context, db *dynamodb.Client, name string) error {
	if _, err := db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
		var nf *dtypes.ResourceNotFoundException
		if !errors.As(err, &nf) {
			return fmt.Errorf("dynamodb: delete table %s: %w", name, err)
		}
	}
	return nil
}

// copyItems copies every item of from into to, but the holding table's
// mark, and returns how many it copied. With stream, each is its own
// PutItem, so that kumo emits a stream record for it; else they go in
// batches, which kumo does not stream.
func copyItems(ctx context.Context, db *dynamodb.Client, from, to string, stream bool) (int, error) {
	var (
		start map[string]dtypes.AttributeValue
		n     int
	)
	for {
		page, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(from), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true), Limit: aws.Int32(5000)})
		if err != nil {
			return n, fmt.Errorf("dynamodb: scan %s: %w", from, err)
		}
		items := make([]map[string]dtypes.AttributeValue, 0, len(page.Items))
		for _, it := range page.Items {
			if isMark(it) {
				continue
			}
			items = append(items, it)
		}
		if err := writeAll(ctx, db, to, items, stream); err != nil {
			return n, err
		}
		n += len(items)
		if len(page.LastEvaluatedKey) == 0 {
			return n, nil
		}
		start = page.LastEvaluatedKey
	}
}

// writeAll writes items into table, a few requests at once.
func writeAll(ctx context.Context, db *dynamodb.Client, table string, items []map[string]dtypes.AttributeValue, stream bool) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	size := 25 // BatchWriteItem's limit
	if stream {
		size = 100
	}
	for i := 0; i < len(items); i += size {
		part := items[i:min(i+size, len(items))]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var err error
			if stream {
				err = putEach(ctx, db, table, part)
			} else {
				err = batchPut(ctx, db, table, part)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func isMark(item map[string]dtypes.AttributeValue) bool {
	c, _ := item[dynamo.AttrCell].(*dtypes.AttributeValueMemberS)
	v, _ := item[dynamo.AttrVoteID].(*dtypes.AttributeValueMemberS)
	return c != nil && v != nil && c.Value == "~restoring" && v.Value == "~complete"
}

func putEach(ctx context.Context, db *dynamodb.Client, table string, items []map[string]dtypes.AttributeValue) error {
	for _, it := range items {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			return fmt.Errorf("dynamodb: put into %s: %w", table, err)
		}
	}
	return nil
}

func batchPut(ctx context.Context, db *dynamodb.Client, table string, items []map[string]dtypes.AttributeValue) error {
	reqs := make([]dtypes.WriteRequest, len(items))
	for i, it := range items {
		reqs[i] = dtypes.WriteRequest{PutRequest: &dtypes.PutRequest{Item: it}}
	}
	for len(reqs) > 0 {
		out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]dtypes.WriteRequest{table: reqs}})
		if err != nil {
			return fmt.Errorf("dynamodb: batch write into %s: %w", table, err)
		}
		reqs = out.UnprocessedItems[table]
	}
	return nil
}

// persist waits until the data directory holds the stack's state as it is
// now, then, if the pipeline was drained, says that the run stopped
// cleanly. kumo writes its snapshots on a timer: the stack tags the event
// table and the submissions queue with a token, and waits until
// dynamodb.json and sqs.json both contain it.
func (s *Stack) persist(ctx context.Context, dir string, drained bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	token := "stop-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	desc, err := s.Admin.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.Tables.Events)})
	if err != nil {
		return fmt.Errorf("dynamodb: describe table %s: %w", s.Tables.Events, err)
	}
	if _, err := s.Admin.DynamoDB.TagResource(ctx, &dynamodb.TagResourceInput{
		ResourceArn: desc.Table.TableArn, Tags: []dtypes.Tag{{Key: aws.String("votes-local-stop"), Value: aws.String(token)}},
	}); err != nil {
		return fmt.Errorf("dynamodb: tag table %s: %w", s.Tables.Events, err)
	}
	if _, err := s.Admin.SQS.TagQueue(ctx, &sqs.TagQueueInput{
		QueueUrl: aws.String(s.QueueURLs[s.Queues.Submissions]), Tags: map[string]string{"votes-local-stop": token},
	}); err != nil {
		return fmt.Errorf("sqs: tag queue %s: %w", s.Queues.Submissions, err)
	}
	for _, name := range []string{"dynamodb.json", "sqs.json"} {
		path := filepath.Join(dir, name)
		// kumo writes a snapshot within its flush interval of a change:
		// none at all means that it does not write to dir.
		for wait := 0; ; wait++ {
			if _, err := os.Stat(path); err == nil {
				break
			} else if wait == 60 {
				return fmt.Errorf("local: kumo keeps no snapshot in %s: KUMO_DATA_DIR must name it when the process starts", dir)
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
		var seen time.Time
		for {
			// Read again only once the file was replaced: it may be large.
			if fi, err := os.Stat(path); err == nil && !fi.ModTime().Equal(seen) {
				seen = fi.ModTime()
				if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(token)) {
					break
				}
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return fmt.Errorf("local: %s did not get the final state: %w", path, err)
			}
		}
	}
	if !drained {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, cleanStopFile), []byte(token+"\n"), 0o600)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
