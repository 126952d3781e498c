package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"votes/admin"
	"votes/projections"
)

// Stage is one stage's tables as the engineers' operations see them: the
// tables as a set (do they exist), the event table read whole, and each
// projection version's stores.
type Stage struct {
	client *dynamodb.Client
	tables Tables
}

var (
	_ admin.TableChecker = (*Stage)(nil)
	_ admin.EventCounter = (*Stage)(nil)
	_ admin.EventSource  = (*Stage)(nil)
	_ admin.Stores       = (*Stage)(nil)
	_ admin.Registry     = (*Registries)(nil)
	_ admin.EventLoader  = (*EventStore)(nil)
	_ admin.Cells        = (*CellStore)(nil)
)

// NewStage works on tables through client.
func NewStage(client *dynamodb.Client, tables Tables) *Stage {
	return &Stage{client: client, tables: tables}
}

// CheckTables fails with a clear error when one of the tables is missing.
func (s *Stage) CheckTables(ctx context.Context) error { return CheckTables(ctx, s.client, s.tables) }

// EventCount is DynamoDB's estimate of the event table's item count, or -1.
func (s *Stage) EventCount(ctx context.Context) int64 {
	return ItemCount(ctx, s.client, s.tables.Events)
}

// Scanner reads the event table in pages of at most pageSize items.
func (s *Stage) Scanner(pageSize int) projections.Scanner {
	return NewEventScanner(s.client, s.tables.Events, max(pageSize, 1))
}

// CountRaw counts the event table's items with a parallel scan that
// decodes nothing.
func (s *Stage) CountRaw(ctx context.Context, segments, pageSize int) (int64, error) {
	return NewEventScanner(s.client, s.tables.Events, max(pageSize, 1)).CountRaw(ctx, segments)
}

// Ballots is version's ballot store.
func (s *Stage) Ballots(version string) projections.Ballots {
	return NewBallotStore(s.client, s.tables.Ballots, version)
}

// Cells is version's cell store.
func (s *Stage) Cells(version string) admin.Cells {
	return NewCellStore(s.client, s.tables.Tallies, version)
}

// Titles is version's title index.
func (s *Stage) Titles(version string) admin.TitleProjections {
	return NewTitleStore(s.client, s.tables.Titles, version)
}

// Deployment is the stage's stores as admin takes them, all but the count
// of unrepaired stream failures, which the queues keep.
func (s *Stage) Deployment() admin.Deployment {
	return admin.Deployment{
		Tables:      s,
		Count:       s,
		Registry:    NewRegistries(s.client, s.tables.Tallies),
		Items:       NewVersionItems(s.client, s.tables),
		Versions:    s,
		Checkpoints: NewCheckpointStore(s.client, s.tables.Tallies),
		Events:      s,
		Loader:      NewEventStore(s.client, s.tables.Events),
	}
}
