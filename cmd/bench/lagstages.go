package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/metering"
)

// The stages a probe's vote goes through, in order, after its 202: the
// processor stores its event, the projector commits its cell, then the
// title's index summary, and a GET of its tallies shows it.
const (
	stageStored = iota
	stageTallied
	stageIndexed
	stageShown
	stageCount
)

var stageNames = [stageCount]string{"event stored", "cell tallied", "title indexed", "GET shows it"}

// followEvery is one probe in how many whose vote is followed stage by
// stage, and followPoll how often a followed probe's next stage is read:
// the reads are the bench's own (unmetered), few enough not to slow the
// pipeline they time.
const (
	followEvery = 10
	followPoll  = 20 * time.Millisecond
)

// probeRun is what a latency run's probes did: their GETs, those refused
// over the read budget, those that failed otherwise (a timeout, a 502),
// and the stages of the probes followed.
type probeRun struct {
	gets, refused, failed atomic.Int64

	mu     sync.Mutex
	stages [][stageCount]time.Duration
}

func (r *probeRun) addStages(s [stageCount]time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stages = append(r.stages, s)
}

// stageReader reads, straight from the tables, whether a probe's vote has
// reached each stage before the GET.
type stageReader struct {
	db      *dynamodb.Client
	tables  dynamo.Tables
	cells   *dynamo.CellStore
	titles  *dynamo.TitleStore
	version string
}

func newStageReader(ctx context.Context, stack *local.Stack) (*stageReader, error) {
	db := stack.Admin.DynamoDB
	version, err := dynamo.NewRegistries(db, stack.Tables.Tallies).Active(ctx)
	if err != nil {
		return nil, err
	}
	return &stageReader{db: db, tables: stack.Tables, version: version,
		cells:  dynamo.NewCellStore(db, stack.Tables.Tallies, version),
		titles: dynamo.NewTitleStore(db, stack.Tables.Titles, version)}, nil
}

// reached reports whether the probe vote voteID of voter on title has
// reached stage (stageStored to stageIndexed). Each is one GetItem: the
// emulator answers a Query by reading every item of the table, which
// would slow the pipeline being timed more as its tables grow.
func (s *stageReader) reached(ctx context.Context, stage int, title, voter, voteID string) (bool, error) {
	cell := domain.CellOf(title, voter)
	switch stage {
	case stageStored:
		// A submission of one vote is stored under its vote ID.
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(s.tables.Events), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{
				dynamo.AttrCell:   &types.AttributeValueMemberS{Value: cell.String()},
				dynamo.AttrVoteID: &types.AttributeValueMemberS{Value: voteID},
			},
		})
		return err == nil && out.Item != nil, err
	case stageTallied:
		st, err := s.cells.Read(ctx, cell)
		return err == nil && st.Version > 0, err
	case stageIndexed:
		_, found, err := s.titles.Get(ctx, title)
		return found, err
	}
	return false, fmt.Errorf("no stage %d", stage)
}

// follow reads the stages of the probe vote voteID of voter on title,
// accepted at accepted, until it is indexed or ctx ends, then waits for
// shown to say when the GET showed it. It returns when each stage was
// first seen, as time since accepted, and whether every stage was.
func (s *stageReader) follow(ctx context.Context, title, voter, voteID string, accepted time.Time, shown <-chan time.Duration) ([stageCount]time.Duration, bool) {
	var at [stageCount]time.Duration
	for stage := stageStored; stage < stageShown; {
		ok, err := s.reached(ctx, stage, title, voter, voteID)
		if err != nil && ctx.Err() != nil {
			return at, false
		}
		if ok {
			at[stage] = time.Since(accepted)
			stage++
			continue
		}
		select {
		case <-ctx.Done():
			return at, false
		case <-time.After(followPoll):
		}
	}
	select {
	case <-ctx.Done():
		return at, false
	case d, ok := <-shown:
		at[stageShown] = d
		// A stage seen late (the poll's granularity, a read that took
		// long) is never put after the one that followed it.
		for i := stageShown - 1; i >= 0; i-- {
			at[i] = min(at[i], at[i+1])
		}
		return at, ok
	}
}

// printLagStages prints, for the probes followed, the p50 and p99 of the
// time from the 202 to each stage, and what the probes' GETs and the
// functions did during the run.
func printLagStages(out io.Writer, r *probeRun, took time.Duration, query metering.Counts, usage map[string]local.Usage) {
	gets := r.gets.Load()
	fmt.Fprintf(out, "  probe GETs: %d (%.0f a second); the query function summed cells %d times, %.2f read units per GET\n",
		gets, float64(gets)/took.Seconds(), query.Requests["DynamoDB BatchGetItem"], query.RCU/float64(max(gets, 1)))
	r.mu.Lock()
	stages := slices.Clone(r.stages)
	r.mu.Unlock()
	if len(stages) > 0 {
		var parts []string
		for i := range stageCount {
			d := make([]time.Duration, len(stages))
			for j, s := range stages {
				d[j] = s[i]
			}
			slices.Sort(d)
			p := func(q float64) float64 { return ms(d[min(len(d)-1, int(q*float64(len(d))))]) }
			parts = append(parts, fmt.Sprintf("%s %.0f / %.0f", stageNames[i], p(0.5), p(0.99)))
		}
		fmt.Fprintf(out, "  lag_stages_ms (p50 / p99 from the 202, %d probes followed): %s\n", len(stages), strings.Join(parts, ", "))
	}
	for _, name := range []string{"processor", "projector", "query"} {
		u := usage[name]
		if u.Invocations == 0 {
			continue
		}
		fmt.Fprintf(out, "  %s: %d invocations, busy %.1f s in %.1f s (%.0f ms each)\n",
			name, u.Invocations, u.Duration.Seconds(), took.Seconds(), ms(u.Duration/time.Duration(u.Invocations)))
	}
}
