package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/projections"
)

// RankingTitles is what a ranking refresh reads and writes of one version:
// its title index, listed whole, and its ranking pages.
type RankingTitles interface {
	projections.TitleLister
	projections.RankingStore
}

// Ranker handles the schedule (EventBridge, every minute) that refreshes
// the precomputed rankings of every version the projector writes: each
// order of the title index, cut in pages of projections.RankingPageSize,
// only the pages that changed rewritten. A refresh is a recomputation, so
// one that runs twice, or two at once, leaves the same pages.
type Ranker struct {
	versions  WriteSet
	titlesFor func(version string) RankingTitles
	keys      []projections.RankingKey
	now       func() time.Time
	log       *slog.Logger
}

// NewRanker builds the schedule's handler for the aspects' orders.
func NewRanker(versions WriteSet, titlesFor func(version string) RankingTitles, aspects []string, now func() time.Time, log *slog.Logger) *Ranker {
	return &Ranker{versions: versions, titlesFor: titlesFor, keys: projections.RankingKeys(aspects), now: now, log: log}
}

// Handle refreshes the rankings of every version written. A version that
// fails does not stop the others; the error names each, and the next
// schedule tries again.
func (r *Ranker) Handle(ctx context.Context, _ events.EventBridgeEvent) error {
	versions, err := r.versions.WriteSet(ctx)
	if err != nil {
		return fmt.Errorf("rank: read the versions written: %w", err)
	}
	var errs []error
	for _, v := range versions {
		start := r.now()
		written, err := projections.RefreshRankings(ctx, r.titlesFor(v), r.titlesFor(v), r.keys, start.UnixNano())
		if err != nil {
			errs = append(errs, fmt.Errorf("version %s: %w", v, err))
			continue
		}
		r.log.DebugContext(ctx, "rankings refreshed", "version", v, "pages_written", written, "took", r.now().Sub(start))
	}
	if err := errors.Join(errs...); err != nil {
		r.log.ErrorContext(ctx, "rankings refresh", "err", err)
		return err
	}
	return nil
}
