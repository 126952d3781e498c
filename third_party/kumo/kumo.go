// Package kumo provides a public API for running an in-process AWS service emulator.
//
// Usage:
//
//	srv := kumo.NewServer()
//	defer srv.Close()
//
//	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
//	    o.BaseEndpoint = aws.String(srv.URL)
//	})
package kumo

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	// Register all services via init(). See internal/registry for the
	// single canonical list shared with the CLI and the README generator.
	_ "github.com/sivchari/kumo/internal/registry"
	"github.com/sivchari/kumo/internal/server"
	"github.com/sivchari/kumo/internal/streams"
)

// Server is an in-process AWS service emulator.
// It wraps httptest.Server to provide a familiar API for Go testing.
type Server struct {
	// URL is the base URL of the server in the form "http://host:port".
	URL string

	httpServer *httptest.Server
}

// NewServer creates and starts a new in-process AWS emulator server.
// The server listens on a random available port on localhost.
// Use srv.URL as the BaseEndpoint for AWS SDK clients.
func NewServer() *Server {
	ts := httptest.NewServer(handler())

	return &Server{
		URL:        ts.URL,
		httpServer: ts,
	}
}

// handler builds the emulator handler used by every server constructor.
func handler() http.Handler {
	cfg := server.DefaultConfig()
	cfg.LogLevel = 100 // Suppress all logs in test mode.

	return server.New(cfg).Handler()
}

// Close shuts down the server.
func (s *Server) Close() {
	if s.httpServer != nil {
		s.httpServer.Close()
	}
}

// StreamRetention is how long a DynamoDB stream keeps a record, as AWS's
// does: 24 hours. Older records are dropped when the shard is next written
// or read.
const StreamRetention = streams.Retention

// TrimStream drops, from a shard of a DynamoDB stream, the records up to
// and including sequence number through: for a caller that knows every
// consumer of the stream has read them. Iterators stay valid: one at a
// dropped record gets TrimmedDataAccessException, as from AWS, and
// TRIM_HORIZON starts at the oldest record kept. The stream log is shared
// by every Server of the process. It returns how many records it dropped.
func TrimStream(streamARN, shardID, through string) (int, error) {
	n, err := streams.Global.Trim(streamARN, shardID, through)
	if err != nil {
		return 0, fmt.Errorf("kumo: trim stream %s shard %s: %w", streamARN, shardID, err)
	}

	return n, nil
}

// HasStream says whether this process's emulator serves a DynamoDB stream,
// so that TrimStream can trim it.
func HasStream(streamARN string) bool {
	_, _, err := streams.Global.DescribeStream(streamARN)

	return err == nil
}

// StreamRecords is how many records a shard of a DynamoDB stream holds now.
func StreamRecords(streamARN, shardID string) int {
	return streams.Global.Len(streamARN, shardID)
}
