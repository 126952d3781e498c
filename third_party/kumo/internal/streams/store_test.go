package streams

import (
	"errors"
	"testing"
	"time"
)

const arn, shard = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/x", "shardId-000000000000"

func newTestStore(now *time.Time) *Store {
	s := NewStore()
	s.now = func() time.Time { return *now }
	s.RegisterStream(&StreamInfo{StreamARN: arn})

	return s
}

func put(s *Store, n int) []string {
	var seqs []string

	for range n {
		r := &StreamRecord{StreamARN: arn}
		s.PutRecord(r)
		seqs = append(seqs, r.SequenceNumber)
	}

	return seqs
}

// TestTrimKeepsPositions: after a trim, a reader's next position still
// names the record it named, one before the trimmed part is ErrTrimmed,
// and the records go.
func TestTrimKeepsPositions(t *testing.T) {
	now := time.Now()
	s := newTestStore(&now)
	seqs := put(s, 10)

	got, next, err := s.GetRecords(arn, shard, 0, 4)
	if err != nil || len(got) != 4 || next != 4 {
		t.Fatalf("GetRecords(0, 4) = %d records, next %d, %v", len(got), next, err)
	}

	if n, err := s.Trim(arn, shard, seqs[3]); n != 4 || err != nil {
		t.Fatalf("Trim through the 4th = %d, %v; want 4", n, err)
	}

	if n := s.Len(arn, shard); n != 6 {
		t.Fatalf("Len after trimming 4 of 10 = %d", n)
	}

	got, next, err = s.GetRecords(arn, shard, next, 100)
	if err != nil || len(got) != 6 || got[0].SequenceNumber != seqs[4] || next != 10 {
		t.Fatalf("GetRecords(4) after the trim = %d records from %v, next %d, %v; want 6 from %s, next 10", len(got), got, next, err, seqs[4])
	}

	if _, _, err := s.GetRecords(arn, shard, 2, 100); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("GetRecords(2) after the trim: %v, want ErrTrimmed", err)
	}

	if pos := s.TrimHorizon(arn, shard); pos != 4 {
		t.Fatalf("TrimHorizon = %d; want 4", pos)
	}

	// Sequence numbers count from 1 (RegisterStream took the first): the
	// 4th record, the last trimmed, is 5.
	for _, c := range []struct {
		seq   uint64
		after bool
		pos   int
		err   error
	}{
		{4, false, 0, ErrTrimmed}, {5, false, 0, ErrTrimmed}, {4, true, 0, ErrTrimmed},
		{5, true, 4, nil}, {6, false, 4, nil}, {8, true, 7, nil}, {11, false, 9, nil}, {11, true, 10, nil},
	} {
		if pos, err := s.SequencePosition(arn, shard, c.seq, c.after); pos != c.pos || !errors.Is(err, c.err) {
			t.Errorf("SequencePosition(%d, after %v) = %d, %v; want %d, %v", c.seq, c.after, pos, err, c.pos, c.err)
		}
	}

	if c := s.ShardRecordCount(arn, shard); c != 10 {
		t.Fatalf("ShardRecordCount = %d; want 10 (LATEST stays after every record)", c)
	}
}

// TestRecordsExpireAfterRetention: a record older than 24 hours is dropped
// when the shard is next written or read.
func TestRecordsExpireAfterRetention(t *testing.T) {
	now := time.Now()
	s := newTestStore(&now)
	put(s, 3)

	now = now.Add(Retention / 2)
	put(s, 2)

	now = now.Add(Retention/2 + time.Second)

	got, next, err := s.GetRecords(arn, shard, 3, 100)
	if err != nil || len(got) != 2 || next != 5 {
		t.Fatalf("GetRecords(3) a day after the first 3 = %d records, next %d, %v; want the 2 later ones", len(got), next, err)
	}

	if n := s.Len(arn, shard); n != 2 {
		t.Fatalf("Len = %d; want 2", n)
	}

	if _, _, err := s.GetRecords(arn, shard, 0, 100); !errors.Is(err, ErrTrimmed) {
		t.Fatalf("GetRecords(0) after expiry: %v, want ErrTrimmed", err)
	}
}
