// Package streams provides a shared event store for DynamoDB Streams.
// Both the dynamodb service (producer) and the dynamodbstreams service
// (consumer) reference this package to avoid circular imports.
package streams

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Retention is how long a stream keeps a record, as DynamoDB Streams does:
// older records are dropped.
const Retention = 24 * time.Hour

// ErrTrimmed is a read of records that were dropped from their shard,
// DynamoDB Streams' TrimmedDataAccessException.
var ErrTrimmed = errors.New("the requested records were trimmed from the shard")

// OperationType represents the type of DynamoDB stream event.
type OperationType string

// Operation type constants.
const (
	OperationTypeInsert OperationType = "INSERT"
	OperationTypeModify OperationType = "MODIFY"
	OperationTypeRemove OperationType = "REMOVE"
)

// AttributeValue mirrors DynamoDB's AttributeValue for stream records.
// We use a simplified representation to avoid importing the dynamodb package.
//
//nolint:tagliatelle // AWS DynamoDB uses PascalCase attribute type fields.
type AttributeValue struct {
	S    *string                    `json:"S,omitempty"`
	N    *string                    `json:"N,omitempty"`
	B    []byte                     `json:"B,omitempty"`
	SS   []string                   `json:"SS,omitempty"`
	NS   []string                   `json:"NS,omitempty"`
	BS   [][]byte                   `json:"BS,omitempty"`
	M    map[string]*AttributeValue `json:"M,omitempty"`
	L    []*AttributeValue          `json:"L,omitempty"`
	NULL *bool                      `json:"NULL,omitempty"`
	BOOL *bool                      `json:"BOOL,omitempty"`
}

// StreamRecord represents a single change event in a DynamoDB stream.
type StreamRecord struct {
	EventID        string
	EventName      OperationType
	EventVersion   string
	EventSource    string
	AwsRegion      string
	StreamViewType string
	TableName      string
	StreamARN      string
	Keys           map[string]AttributeValue
	NewImage       map[string]AttributeValue
	OldImage       map[string]AttributeValue
	SequenceNumber string
	CreatedAt      time.Time
	SizeBytes      int64
}

// StreamInfo holds metadata about a stream.
type StreamInfo struct {
	StreamARN      string
	TableName      string
	StreamViewType string
	StreamLabel    string
	StreamStatus   string
	KeySchema      []KeySchemaElement
	CreationTime   time.Time
}

// KeySchemaElement represents a key schema element.
type KeySchemaElement struct {
	AttributeName string
	KeyType       string // HASH or RANGE
}

// ShardInfo holds metadata about a shard within a stream.
type ShardInfo struct {
	ShardID                  string
	ParentShardID            string
	SequenceNumberRangeStart string
}

// Store is a global, concurrency-safe store for DynamoDB stream events.
// DynamoDB storage writes events here; DynamoDB Streams reads them.
type Store struct {
	mu              sync.RWMutex
	streams         map[string]*streamData // keyed by streamARN
	sequenceCounter uint64
	now             func() time.Time // the clock records are stamped and expired by
}

type streamData struct {
	info   StreamInfo
	shards []*shardData
}

// A shard's positions count every record it ever held: records[0] is at
// position base, the records before it were dropped (by age or by Trim),
// and trimmedThrough is the sequence number of the last one dropped.
type shardData struct {
	info           ShardInfo
	records        []*StreamRecord
	base           int
	trimmedThrough uint64
}

// Global is the default global Store instance shared between
// the dynamodb and dynamodbstreams services.
var Global = NewStore()

// NewStore creates a new Store.
func NewStore() *Store {
	return &Store{
		streams: make(map[string]*streamData),
		now:     time.Now,
	}
}

// RegisterStream registers a stream for a table. Called when a DynamoDB table
// with StreamSpecification is created.
func (s *Store) RegisterStream(info *StreamInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if _, exists := s.streams[info.StreamARN]; exists {
		return
	}

	seq := s.nextSequenceNumber()
	sd := &streamData{
		info: *info,
		shards: []*shardData{
			{
				info: ShardInfo{
					ShardID:                  "shardId-000000000000",
					SequenceNumberRangeStart: seq,
				},
				records: make([]*StreamRecord, 0),
			},
		},
	}

	s.streams[info.StreamARN] = sd
}

// PutRecord adds a stream record. Called by DynamoDB storage on item mutations.
func (s *Store) PutRecord(record *StreamRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()

	sd, exists := s.streams[record.StreamARN]
	if !exists {
		return
	}

	record.SequenceNumber = s.nextSequenceNumber()
	record.CreatedAt = s.now()
	record.EventVersion = "1.1"
	record.EventSource = "aws:dynamodb"

	activeShard := sd.shards[len(sd.shards)-1]
	activeShard.expire(record.CreatedAt)
	activeShard.records = append(activeShard.records, record)
}

// expire drops the records older than Retention at now.
func (sh *shardData) expire(now time.Time) {
	n := 0
	for n < len(sh.records) && now.Sub(sh.records[n].CreatedAt) > Retention {
		n++
	}

	sh.drop(n)
}

// drop drops the shard's n oldest records. The dropped entries are cleared
// so that the records are freed at once, and the slice is re-sliced so
// that its array is freed when append next grows it.
func (sh *shardData) drop(n int) {
	if n == 0 {
		return
	}

	sh.trimmedThrough, _ = strconv.ParseUint(sh.records[n-1].SequenceNumber, 10, 64)
	clear(sh.records[:n])
	sh.records = sh.records[n:]
	sh.base += n
}

// Trim drops a shard's records up to and including sequence number
// through, once every consumer has read them. The positions of the records
// kept do not change. It returns how many records it dropped.
func (s *Store) Trim(streamARN, shardID, through string) (int, error) {
	limit, err := strconv.ParseUint(through, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad sequence number %q: %w", through, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	sh, err := s.shard(streamARN, shardID)
	if err != nil {
		return 0, err
	}

	n := 0
	for n < len(sh.records) {
		seq, _ := strconv.ParseUint(sh.records[n].SequenceNumber, 10, 64)
		if seq > limit {
			break
		}

		n++
	}

	sh.drop(n)

	return n, nil
}

// shard finds a shard; s.mu is held.
func (s *Store) shard(streamARN, shardID string) (*shardData, error) {
	sd, exists := s.streams[streamARN]
	if !exists {
		return nil, fmt.Errorf("stream not found: %s", streamARN)
	}

	for _, sh := range sd.shards {
		if sh.info.ShardID == shardID {
			return sh, nil
		}
	}

	return nil, fmt.Errorf("shard not found: %s", shardID)
}

// DescribeStream returns stream info and shard list for the given ARN.
func (s *Store) DescribeStream(streamARN string) (*StreamInfo, []ShardInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	sd, exists := s.streams[streamARN]
	if !exists {
		return nil, nil, fmt.Errorf("stream not found: %s", streamARN)
	}

	shards := make([]ShardInfo, len(sd.shards))
	for i, sh := range sd.shards {
		shards[i] = sh.info
	}

	return &sd.info, shards, nil
}

// GetRecords returns records from a given shard starting at the specified
// position. A position before the shard's oldest record, which was dropped,
// is ErrTrimmed.
func (s *Store) GetRecords(streamARN, shardID string, position, limit int) ([]*StreamRecord, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	sh, err := s.shard(streamARN, shardID)
	if err != nil {
		return nil, 0, err
	}

	sh.expire(s.now())

	if position < sh.base {
		return nil, 0, ErrTrimmed
	}

	first := position - sh.base
	if first >= len(sh.records) {
		return nil, position, nil
	}

	end := min(first+limit, len(sh.records))
	result := make([]*StreamRecord, end-first)
	copy(result, sh.records[first:end])

	return result, sh.base + end, nil
}

// ShardRecordCount returns the position after a shard's last record (used
// for iterator positioning): how many records it ever held.
func (s *Store) ShardRecordCount(streamARN, shardID string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()

	sh, err := s.shard(streamARN, shardID)
	if err != nil {
		return 0
	}

	return sh.base + len(sh.records)
}

// TrimHorizon returns the position of a shard's oldest record kept.
func (s *Store) TrimHorizon(streamARN, shardID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()

	sh, err := s.shard(streamARN, shardID)
	if err != nil {
		return 0
	}

	sh.expire(s.now())

	return sh.base
}

// SequencePosition returns the position of a shard's first record at
// sequence number seq or, with after, past it. A record it would read
// that was dropped is ErrTrimmed.
func (s *Store) SequencePosition(streamARN, shardID string, seq uint64, after bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	sh, err := s.shard(streamARN, shardID)
	if err != nil {
		return 0, err
	}

	sh.expire(s.now())

	if seq < sh.trimmedThrough || (seq == sh.trimmedThrough && !after) {
		return 0, ErrTrimmed
	}

	i := sort.Search(len(sh.records), func(i int) bool {
		n, _ := strconv.ParseUint(sh.records[i].SequenceNumber, 10, 64)

		return n > seq || (n == seq && !after)
	})

	return sh.base + i, nil
}

// Len returns how many records a shard holds now.
func (s *Store) Len(streamARN, shardID string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()

	sh, err := s.shard(streamARN, shardID)
	if err != nil {
		return 0
	}

	return len(sh.records)
}

func (s *Store) nextSequenceNumber() string {
	seq := atomic.AddUint64(&s.sequenceCounter, 1)

	return fmt.Sprintf("%021d", seq)
}
