package dynamo_test

import (
	"testing"

	"votes/infra/dynamo"
	"votes/projections/projectiontest"
)

// BenchmarkEventItem marshals an event into its DynamoDB item (the
// processor's hot path) and BenchmarkDecodeEvent reads it back (rebuild).
func BenchmarkEventItem(b *testing.B) {
	e := projectiontest.Vote("u-12345", "tt0111161", "sub-1", "story", "up", 1764237600000000000)
	b.ReportAllocs()
	for b.Loop() {
		_ = dynamo.EventItem(e)
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	item := dynamo.EventItem(projectiontest.Vote("u-12345", "tt0111161", "sub-1", "story", "up", 1764237600000000000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dynamo.DecodeEvent(item); err != nil {
			b.Fatal(err)
		}
	}
}
