package local

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// StreamMapping is the settings of a DynamoDB Streams event-source mapping.
type StreamMapping struct {
	BatchSize        int
	Window           time.Duration // MaximumBatchingWindow
	MaxRetryAttempts int           // MaximumRetryAttempts
	Bisect           bool          // BisectBatchOnFunctionError
	PollInterval     time.Duration // between empty GetRecords calls
	RetryBackoff     time.Duration
	FailureQueueURL  string // OnFailure destination
	// Parallelization is the ParallelizationFactor: how many batches of
	// one shard are in flight at once, 1 to 10 (0 counts as 1). Records
	// are spread over them by a hash of their partition key, so the
	// records of one key stay in order, in one batch.
	Parallelization int
}

// streamPoller plays Lambda's DynamoDB Streams event-source mapping for one
// stream: it reads each shard in order from TRIM_HORIZON, invokes the
// function with events.DynamoDBEvent batches one at a time per shard, honours
// ReportBatchItemFailures (it retries from the earliest failed record), splits
// a failing batch in two when Bisect is set, and after MaxRetryAttempts sends
// the batch's description to the on-failure queue and moves on, as Lambda does.
// With a parallelization factor N above 1, each round of a shard's records
// is split into up to N batches by a hash of the partition key, invoked at
// once, each retried, bisected and given up on by itself; the shard moves
// on only when every batch of the round is done. With overlap, every batch
// goes to two concurrent invocations.
type streamPoller struct {
	streams   *dynamodbstreams.Client
	sqs       *sqs.Client
	streamARN string
	region    string
	mapping   StreamMapping
	fn        *Function
	overlap   bool
	log       *slog.Logger

	// trim drops a shard's records, through a sequence number, from the
	// emulator's stream log; nil leaves the log alone (an emulator in
	// another process keeps them for its retention). repairsPending says
	// whether a range given up on may still be read back from the stream.
	trim           func(shardID, through string) error
	repairsPending func(ctx context.Context) (bool, error)
	keepMu         sync.Mutex
	keep           map[string]*big.Int // per shard: the first record given up on since no repair was pending

	partitionKey atomic.Value // string: the table's partition key attribute, from DescribeStream
	held         atomic.Bool  // the mapping is disabled: records wait in the stream

	emptyPolls atomic.Int64 // GetRecords calls that found nothing left to do
	delivered  atomic.Int64 // records handed to the function and finished with
	inFlight   atomic.Int64 // invocations running now
	// interrupted counts the batches a stop cut off before they were done.
	interrupted atomic.Int64
	peak        atomic.Int64 // the most invocations ever running at once
}

func (p *streamPoller) run(ctx context.Context) { p.serve(ctx, ctx) }

// serve reads the stream's shards until take ends, and delivers their
// records under ctx: a stop ends take first, so that the rounds in flight
// can finish, and ctx when it will not wait any longer. It returns once
// every shard's reader has.
func (p *streamPoller) serve(take, ctx context.Context) {
	var shards sync.WaitGroup
	defer shards.Wait()
	started := map[string]chan struct{}{}
	for take.Err() == nil {
		desc, err := p.streams.DescribeStream(take, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(p.streamARN)})
		if err != nil {
			if take.Err() == nil {
				p.log.Warn("describe stream", "err", err)
			}
			sleep(take, time.Second)
			continue
		}
		for _, k := range desc.StreamDescription.KeySchema {
			if k.KeyType == types.KeyTypeHash {
				p.partitionKey.Store(aws.ToString(k.AttributeName))
			}
		}
		for _, sh := range desc.StreamDescription.Shards {
			id := aws.ToString(sh.ShardId)
			if _, ok := started[id]; ok {
				continue
			}
			done := make(chan struct{})
			started[id] = done
			parent := started[aws.ToString(sh.ParentShardId)]
			shards.Go(func() {
				defer close(done)
				if parent != nil {
					select { // a child shard waits for its parent, keeping per-key order
					case <-parent:
					case <-take.Done():
						return
					}
				}
				p.readShard(take, ctx, id)
			})
		}
		sleep(take, 10*time.Second)
	}
}

// recordsPerRead is the most records one GetRecords call returns, as
// DynamoDB Streams allows.
const recordsPerRead = 1000

func (p *streamPoller) iterator(ctx context.Context, shardID string) (*string, error) {
	out, err := p.streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(p.streamARN), ShardId: aws.String(shardID), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		return nil, err
	}
	return out.ShardIterator, nil
}

func (p *streamPoller) readShard(take, ctx context.Context, shardID string) {
	var (
		it       *string
		buf      []types.Record
		deadline time.Time
		lastSeq  *big.Int // last record finished with; records up to it are skipped after a new iterator
	)
	for take.Err() == nil {
		if p.held.Load() {
			sleep(take, p.mapping.PollInterval)
			continue
		}
		if it == nil {
			var err error
			if it, err = p.iterator(take, shardID); err != nil {
				if take.Err() == nil {
					p.log.Warn("get shard iterator", "shard", shardID, "err", err)
				}
				sleep(take, time.Second)
				continue
			}
		}
		out, err := p.streams.GetRecords(take, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(recordsPerRead)})
		if err != nil {
			if take.Err() == nil {
				p.log.Warn("get stream records", "shard", shardID, "err", err)
			}
			it, buf = nil, nil // start again from a fresh iterator, skipping what was done
			sleep(take, 250*time.Millisecond)
			continue
		}
		it = out.NextShardIterator
		// A full page says the shard holds more records now: they join
		// the round before it is handed out, as Lambda's poller reads a
		// shard ahead while its batches run, so that batches of a backlog
		// fill without a batching window. Nothing waits for records yet
		// to come.
		more := len(out.Records) == recordsPerRead && it != nil
		for _, r := range out.Records {
			if lastSeq != nil && seqOf(r).Cmp(lastSeq) <= 0 {
				continue
			}
			if len(buf) == 0 {
				deadline = time.Now().Add(p.mapping.Window)
			}
			buf = append(buf, r)
		}
		for {
			n, full := p.round(buf)
			if n == 0 || (!full && (more || time.Now().Before(deadline))) {
				break
			}
			p.deliverRound(ctx, shardID, buf[:n])
			if ctx.Err() != nil {
				return
			}
			lastSeq = seqOf(buf[n-1])
			p.delivered.Add(int64(n))
			p.release(ctx, shardID, lastSeq)
			buf = buf[n:]
			if len(buf) > 0 {
				deadline = time.Now().Add(p.mapping.Window)
			}
		}
		if len(out.Records) == 0 {
			if len(buf) == 0 {
				p.emptyPolls.Add(1)
			}
			if it == nil {
				return // the shard is closed and read to its end
			}
			// Idle, poll again after PollInterval; with records waiting
			// for their window, no later than the window's end.
			wait := p.mapping.PollInterval
			if len(buf) > 0 {
				wait = min(wait, max(time.Until(deadline), time.Millisecond))
			}
			sleep(take, wait)
		}
	}
}

// release trims the stream log of a shard through done, the last record
// the mapping finished with: nothing reads those records again, save the
// repairer, which reads back the ranges given up on. So while the failure
// queue or the repair dead-letter queue holds messages, the records from
// the first range given up on stay (AWS keeps them 24 hours, and so does
// the emulator).
func (p *streamPoller) release(ctx context.Context, shardID string, done *big.Int) {
	if p.trim == nil {
		return
	}
	through := done
	p.keepMu.Lock()
	first := p.keep[shardID]
	p.keepMu.Unlock()
	if first != nil {
		pending, err := p.repairsPending(ctx)
		if err != nil || pending {
			through = new(big.Int).Sub(first, big.NewInt(1))
		} else {
			p.keepMu.Lock()
			delete(p.keep, shardID)
			p.keepMu.Unlock()
		}
	}
	if through.Sign() <= 0 {
		return
	}
	if err := p.trim(shardID, through.String()); err != nil && ctx.Err() == nil {
		p.log.Warn("trim the stream log", "shard", shardID, "err", err)
	}
}

// keepFrom keeps a shard's records from a range given up on, for the
// repairer.
func (p *streamPoller) keepFrom(shardID string, first *big.Int) {
	p.keepMu.Lock()
	defer p.keepMu.Unlock()
	if p.keep == nil {
		p.keep = map[string]*big.Int{}
	}
	if k := p.keep[shardID]; k == nil || first.Cmp(k) < 0 {
		p.keep[shardID] = first
	}
}

// round says how many of buf's records make the next round of batches:
// records are dealt to batches by partition key, in order, and the round ends
// before the first record whose batch is full, or with parallelization ×
// batch size records. full says whether the round can take no more records,
// so that it need not wait for the batching window.
func (p *streamPoller) round(buf []types.Record) (n int, full bool) {
	par := p.parallelization()
	if par == 1 {
		return min(len(buf), p.mapping.BatchSize), len(buf) >= p.mapping.BatchSize
	}
	sizes := make([]int, par)
	for i, r := range buf {
		b := p.batchOf(r, par)
		if sizes[b] == p.mapping.BatchSize {
			return i, true
		}
		sizes[b]++
	}
	return len(buf), false
}

func (p *streamPoller) parallelization() int {
	return min(max(p.mapping.Parallelization, 1), 10)
}

// batchOf is the batch, of par, that a record's partition key goes to.
func (p *streamPoller) batchOf(r types.Record, par int) int {
	key, _ := p.partitionKey.Load().(string)
	h := fnv.New32a()
	switch v := r.Dynamodb.Keys[key].(type) {
	case *types.AttributeValueMemberS:
		h.Write([]byte(v.Value))
	case *types.AttributeValueMemberN:
		h.Write([]byte(v.Value))
	case *types.AttributeValueMemberB:
		h.Write(v.Value)
	}
	return int(h.Sum32() % uint32(par))
}

// deliverRound splits a round's records into batches by partition key and
// delivers them at once, each in the order the shard holds them. It
// returns when every batch is done or given up on, or ctx ends.
func (p *streamPoller) deliverRound(ctx context.Context, shardID string, records []types.Record) {
	par := p.parallelization()
	if par == 1 {
		p.deliver(ctx, shardID, records, p.mapping.MaxRetryAttempts)
		return
	}
	batches := make([][]types.Record, par)
	for _, r := range records {
		b := p.batchOf(r, par)
		batches[b] = append(batches[b], r)
	}
	var wg sync.WaitGroup
	for _, batch := range batches {
		if len(batch) > 0 {
			wg.Go(func() { p.deliver(ctx, shardID, batch, p.mapping.MaxRetryAttempts) })
		}
	}
	wg.Wait()
}

// deliver hands records to the function until each one is done or given up
// on. It returns early only when ctx ends.
func (p *streamPoller) deliver(ctx context.Context, shardID string, records []types.Record, retriesLeft int) {
	for attempt := 0; len(records) > 0; attempt++ {
		if ctx.Err() != nil {
			p.interrupted.Add(1) // counted, not logged: its records stay in the stream
			return
		}
		resp, err := p.invoke(ctx, records)
		if err == nil && len(resp.BatchItemFailures) == 0 {
			return
		}
		if ctx.Err() != nil {
			p.interrupted.Add(1)
			return
		}
		if err == nil {
			// Partial failure: what came before the earliest failed record is done.
			first := len(records)
			for i, r := range records {
				for _, f := range resp.BatchItemFailures {
					if aws.ToString(r.Dynamodb.SequenceNumber) == f.ItemIdentifier && i < first {
						first = i
					}
				}
			}
			if first == len(records) {
				first = 0 // an identifier not in the batch: Lambda retries the whole batch
			}
			records = records[first:]
		} else if p.mapping.Bisect && len(records) > 1 {
			half := len(records) / 2
			p.log.Warn("projector invocation failed; bisecting", "records", len(records), "err", err)
			p.deliver(ctx, shardID, records[:half], retriesLeft-1)
			p.deliver(ctx, shardID, records[half:], retriesLeft-1)
			return
		}
		if attempt >= retriesLeft {
			reason := "retry attempts exhausted"
			if err != nil {
				reason += ": " + err.Error()
			}
			p.sendFailure(ctx, shardID, records, attempt+1, reason)
			return
		}
		sleep(ctx, p.mapping.RetryBackoff)
	}
}

// invoke runs the function on records, or with overlap two invocations at
// once, combined conservatively: a record is done only when neither
// invocation reported it failed, and either failing as a whole fails the
// batch. Retrying from the earliest failure either reported repeats only
// what the projection's idempotence makes harmless.
func (p *streamPoller) invoke(ctx context.Context, records []types.Record) (events.DynamoDBEventResponse, error) {
	ev := p.event(records)
	calls := int64(1)
	if p.overlap {
		calls = 2
	}
	now := p.inFlight.Add(calls)
	defer p.inFlight.Add(-calls)
	for peak := p.peak.Load(); now > peak && !p.peak.CompareAndSwap(peak, now); peak = p.peak.Load() {
	}
	var resp events.DynamoDBEventResponse
	if !p.overlap {
		err := p.fn.Invoke(ctx, ev, &resp)
		return resp, err
	}
	var (
		other    events.DynamoDBEventResponse
		otherErr = make(chan error, 1)
	)
	go func() { otherErr <- p.fn.Invoke(ctx, ev, &other) }()
	err := p.fn.Invoke(ctx, ev, &resp)
	if err = errors.Join(err, <-otherErr); err != nil {
		return events.DynamoDBEventResponse{}, err
	}
	resp.BatchItemFailures = append(resp.BatchItemFailures, other.BatchItemFailures...)
	return resp, nil
}

// sendFailure writes an on-failure record shaped like Lambda's: the batch's
// description, not its records; the records stay in the event table.
func (p *streamPoller) sendFailure(ctx context.Context, shardID string, records []types.Record, invokes int, reason string) {
	p.keepFrom(shardID, seqOf(records[0]))
	first, last := records[0].Dynamodb, records[len(records)-1].Dynamodb
	body, _ := json.Marshal(map[string]any{
		"version":   "1.0",
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"requestContext": map[string]any{
			"condition":              "RetryAttemptsExhausted",
			"approximateInvokeCount": invokes,
			"functionArn":            "arn:aws:lambda:" + p.region + ":000000000000:function:" + p.fn.name,
		},
		"responseContext": map[string]any{"functionError": reason},
		"DDBStreamBatchInfo": map[string]any{
			"shardId":                         shardID,
			"startSequenceNumber":             aws.ToString(first.SequenceNumber),
			"endSequenceNumber":               aws.ToString(last.SequenceNumber),
			"approximateArrivalOfFirstRecord": aws.ToTime(first.ApproximateCreationDateTime).UTC().Format(time.RFC3339),
			"approximateArrivalOfLastRecord":  aws.ToTime(last.ApproximateCreationDateTime).UTC().Format(time.RFC3339),
			"batchSize":                       len(records),
			"streamArn":                       p.streamARN,
		},
	})
	p.log.Error("stream batch given up; sent to the failure queue", "records", len(records), "reason", reason)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := p.sqs.SendMessage(sctx, &sqs.SendMessageInput{QueueUrl: aws.String(p.mapping.FailureQueueURL), MessageBody: aws.String(string(body))}); err != nil {
		p.log.Error("send to the failure queue", "err", err)
	}
}

func (p *streamPoller) event(records []types.Record) events.DynamoDBEvent {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, len(records))}
	for i, r := range records {
		d := r.Dynamodb
		ev.Records[i] = events.DynamoDBEventRecord{
			AWSRegion:      p.region,
			EventID:        aws.ToString(r.EventID),
			EventName:      string(r.EventName),
			EventSource:    "aws:dynamodb",
			EventVersion:   aws.ToString(r.EventVersion),
			EventSourceArn: p.streamARN,
			Change: events.DynamoDBStreamRecord{
				ApproximateCreationDateTime: events.SecondsEpochTime{Time: aws.ToTime(d.ApproximateCreationDateTime)},
				Keys:                        convertImage(d.Keys),
				NewImage:                    convertImage(d.NewImage),
				OldImage:                    convertImage(d.OldImage),
				SequenceNumber:              aws.ToString(d.SequenceNumber),
				SizeBytes:                   aws.ToInt64(d.SizeBytes),
				StreamViewType:              string(d.StreamViewType),
			},
		}
	}
	return ev
}

func seqOf(r types.Record) *big.Int {
	n, ok := new(big.Int).SetString(aws.ToString(r.Dynamodb.SequenceNumber), 10)
	if !ok {
		return new(big.Int)
	}
	return n
}

func convertImage(img map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if img == nil {
		return nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(img))
	for k, v := range img {
		out[k] = convertValue(v)
	}
	return out
}

func convertValue(v types.AttributeValue) events.DynamoDBAttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute()
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value)
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value)
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, x := range v.Value {
			l[i] = convertValue(x)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		m := make(map[string]events.DynamoDBAttributeValue, len(v.Value))
		for k, x := range v.Value {
			m[k] = convertValue(x)
		}
		return events.NewMapAttribute(m)
	}
	return events.NewNullAttribute() // the SDK's union has no other member
}

// HoldStream disables the event stream's mapping, as UpdateEventSourceMapping
// with Enabled false does in AWS: the projector gets no more records, and
// they wait in the stream. A round already handed out is finished first.
// While it is held, WaitIdle does not return.
func (s *Stack) HoldStream() { s.streams.held.Store(true) }

// ReleaseStream enables the mapping again; it goes on from where it stopped.
func (s *Stack) ReleaseStream() { s.streams.held.Store(false) }

// HoldSubmissions disables the submissions queue's mapping, as
// UpdateEventSourceMapping with Enabled false does: the processor gets no
// more messages, and they wait in the queue. A batch already received is
// finished first. While it is held, WaitIdle does not return.
func (s *Stack) HoldSubmissions() { s.submissionsHeld.Store(true) }

// ReleaseSubmissions enables the submissions queue's mapping again.
func (s *Stack) ReleaseSubmissions() { s.submissionsHeld.Store(false) }

// StreamProgress is what the event stream's mapping has done since the stack
// started.
type StreamProgress struct {
	// Records were handed to the projector and finished with: projected, or
	// described on the failure queue.
	Records int64
	// PeakInvocations is the most projector invocations that ran at once.
	PeakInvocations int64
}

// StreamProgress reports what the event stream's mapping has done.
func (s *Stack) StreamProgress() StreamProgress {
	return StreamProgress{Records: s.streams.delivered.Load(), PeakInvocations: s.streams.peak.Load()}
}
