package domain_test

import (
	"encoding/json"
	"testing"
	"time"

	"votes/domain"
)

var benchBody = []byte(`{"voterId":"u-12345","titleId":"tt0111161","votes":[{"aspect":"story","choice":"up"},{"aspect":"acting","choice":"down"},{"aspect":"overall","choice":"up"}],"occurredAt":"2026-11-27T10:00:00Z"}`)

// BenchmarkDecodeSubmission is the receiver's hot path: strict decoding and
// validation of one body. BenchmarkJSONUnmarshalFloor is its floor.
func BenchmarkDecodeSubmission(b *testing.B) {
	cat := domain.DefaultCatalog()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if _, err := domain.DecodeSubmission(benchBody, cat, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONUnmarshalFloor decodes the same body with plain
// encoding/json into a struct, validating nothing.
func BenchmarkJSONUnmarshalFloor(b *testing.B) {
	var v struct {
		VoterID    string `json:"voterId"`
		TitleID    string `json:"titleId"`
		Votes      []struct{ Aspect, Choice string }
		OccurredAt string `json:"occurredAt"`
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if err := json.Unmarshal(benchBody, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccept stamps a submission and derives its vote IDs.
func BenchmarkAccept(b *testing.B) {
	s, err := domain.DecodeSubmission(benchBody, domain.DefaultCatalog(), "")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Accept("sub-1", now)
	}
}
