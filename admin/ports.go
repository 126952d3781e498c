package admin

import (
	"context"

	"votes/domain"
	"votes/domain/lifecycle"
	"votes/projections"
)

// Registry stores the registry of projection versions.
type Registry interface {
	// Load reads the registry; consistent reads see every update made
	// before. A deployment that never stored one holds lifecycle.Initial.
	Load(ctx context.Context, consistent bool) (lifecycle.Registry, error)
	// Update applies change (a lifecycle transition) to the registry as it
	// is now and stores the result, so that two updates never both apply
	// to the same revision. It may apply change more than once, to a
	// registry read again after a concurrent update or a write whose fate
	// it could not tell: change must recognise its own earlier success.
	// An error from change is returned as it is, and nothing is stored.
	Update(ctx context.Context, change func(*lifecycle.Registry) error) (lifecycle.Registry, error)
}

// VersionStats is what a version's tally cells hold.
type VersionStats struct {
	Cells int   // tally cells stored
	Votes int64 // current votes counted, all titles and aspects
}

// VersionItems are the projection versions' stored items seen whole:
// every ballot and cell of every version.
type VersionItems interface {
	// Stats counts every version's cells and votes; a version with no
	// cells is absent.
	Stats(ctx context.Context) (map[string]VersionStats, error)
	// Titles lists, sorted and once each, the titles version holds cells
	// of.
	Titles(ctx context.Context, version string) ([]string, error)
	// Delete deletes every ballot, cell, rebuild checkpoint and summary of
	// version, telling progress (when set) of each batch deleted, and
	// returns how many items it deleted. Deleting again deletes what was
	// written since; deleting a version with no items deletes nothing.
	Delete(ctx context.Context, version string, progress func(deleted int)) (int64, error)
}

// Cells is one version's tally cells, written by a rebuild's projector and
// read whole by Verify, and a title's at once when its title index entry
// resyncs.
type Cells interface {
	projections.Cells
	projections.TitleCells
	// Tally sums a title's cells (a title with none has empty counts).
	// The read may miss a write that finished just before it.
	Tally(ctx context.Context, titleID string) (projections.Counts, error)
}

// Stores gives the stores of one projection version. Their keys are the
// version's alone: what one version's stores write no other version's
// stores read.
type Stores interface {
	Ballots(version string) projections.Ballots
	Cells(version string) Cells
	// Titles is the version's title index and trends, which its projector
	// keeps.
	Titles(version string) TitleProjections
}

// TitleProjections is a version's title index and trend items, to write
// and to read back.
type TitleProjections interface {
	projections.IndexStore
	projections.TrendReader
}

// EventSource reads the event table whole, a segment of it at a time.
type EventSource interface {
	// Scanner reads a segment in pages of at most pageSize items (at
	// least 1). Two scanners read the same events in the same segments.
	Scanner(pageSize int) projections.Scanner
	// CountRaw reads the whole table in segments parallel segments, pages
	// of pageSize items, as a rebuild does but decoding nothing, and
	// counts the items.
	CountRaw(ctx context.Context, segments, pageSize int) (int64, error)
}

// EventLoader writes events straight into the event table, bypassing the
// queue: a fixture loader, not an append.
type EventLoader interface {
	// Load writes events unconditionally: an event already stored is
	// overwritten with itself. It may write part of them before failing.
	// Safe for concurrent use.
	Load(ctx context.Context, events []domain.VoteCast) error
}

// TableChecker tells whether a deployment's tables exist.
type TableChecker interface {
	// CheckTables returns an error naming the first missing table and
	// saying what to check, or one wrapping the failed call.
	CheckTables(ctx context.Context) error
}

// EventCounter estimates the event table's size.
type EventCounter interface {
	// EventCount is the table's item count as the store last estimated it
	// (in AWS, refreshed about every six hours), or -1 when unknown.
	EventCount(ctx context.Context) int64
}

// FailureCounter counts the stream failures recorded and not repaired yet.
type FailureCounter interface {
	// Unrepaired counts the records the live projector gave up on and the
	// repairer has not projected since: every one, waiting, being
	// repaired, delayed or dead-lettered. Zero means none is missing from
	// the versions written live.
	Unrepaired(ctx context.Context) (int, error)
}

// Deployment is what the engineers' operations work on: one deployment's
// stores. Every field but Unrepaired is required.
type Deployment struct {
	Tables      TableChecker
	Count       EventCounter
	Registry    Registry
	Items       VersionItems
	Versions    Stores
	Checkpoints projections.Checkpoints
	Events      EventSource
	Loader      EventLoader
	// Unrepaired, when set, is asked before a rebuild marks its version
	// ready: records the live projector skipped may be missing from a
	// version written during them. Nil means none are.
	Unrepaired FailureCounter
}
