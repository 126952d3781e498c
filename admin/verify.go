package admin

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"votes/domain/lifecycle"
	"votes/projections"
)

// Difference is a count where a version's projection (its tallies, its
// title index, or its trend) disagrees with the event table.
type Difference struct {
	Projection string // "tallies", "title index", "trend by minute" or "trend by hour"
	TitleID    string
	// At is the start of the trend's minute or hour; zero for the others.
	At time.Time
	projections.Difference
}

// VerifyResult says what Verify compared.
type VerifyResult struct {
	Version     string
	Events      int64
	Titles      int
	Differences []Difference
}

// Verify recomputes every title's tallies from the event table and compares
// them with version's (the active one when empty): its tally cells, its
// title index, and its trend items by minute and by hour (votes cast and
// tally changes). A retired or retiring version has no items to compare:
// that is an error wrapping lifecycle.ErrRetired. It folds with
// projections.Folder, the definition of the tallies, holding one entry per
// voter, title and aspect, and projections.TrendFolder, which holds every
// vote's choice, time and ID.
func (a *Admin) Verify(ctx context.Context, version string, progress func(events int)) (VerifyResult, error) {
	version, err := a.verifiable(ctx, version)
	res := VerifyResult{Version: version}
	if err != nil {
		return res, err
	}
	want, trends, err := a.foldEvents(ctx, &res, progress)
	if err != nil {
		return res, err
	}
	titles, err := a.titlesOf(ctx, version, want)
	if err != nil {
		return res, err
	}
	res.Titles = len(titles)
	cells, index := a.d.Versions.Cells(version), a.d.Versions.Titles(version)
	for _, t := range titles {
		got, err := cells.Tally(ctx, t)
		if err != nil {
			return res, err
		}
		for _, d := range got.Diff(want[t]) {
			res.Differences = append(res.Differences, Difference{Projection: "tallies", TitleID: t, Difference: d})
		}
		sum, _, err := index.Get(ctx, t)
		if err != nil {
			return res, err
		}
		for _, d := range sum.Counts.Diff(want[t]) {
			res.Differences = append(res.Differences, Difference{Projection: "title index", TitleID: t, Difference: d})
		}
		for _, level := range []projections.Level{projections.MinuteLevel, projections.HourLevel} {
			stored, err := projections.StoredTrend(ctx, index, t, level)
			if err != nil {
				return res, err
			}
			res.Differences = append(res.Differences, trendDiff(t, level, stored, trends[t].ByLevel(level))...)
		}
	}
	return res, nil
}

// trendDiff lists where a stored trend and the fold's differ: per span,
// aspect and choice, the votes cast and the tally change.
func trendDiff(titleID string, level projections.Level, got, want projections.Trend) []Difference {
	name := map[projections.Level]string{projections.MinuteLevel: "trend by minute", projections.HourLevel: "trend by hour"}[level]
	keys := map[projections.TrendKey]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	var out []Difference
	for _, k := range slices.SortedFunc(maps.Keys(keys), func(a, b projections.TrendKey) int {
		return cmp.Or(cmp.Compare(a.Minute, b.Minute), strings.Compare(a.Aspect, b.Aspect), strings.Compare(a.Choice, b.Choice))
	}) {
		g, w := got[k], want[k]
		at := time.Unix(k.Minute*60, 0).UTC()
		if g.Cast != w.Cast {
			out = append(out, Difference{Projection: name, TitleID: titleID, At: at,
				Difference: projections.Difference{Aspect: k.Aspect, Choice: k.Choice + " cast", Got: g.Cast, Want: w.Cast}})
		}
		if g.Tally != w.Tally {
			out = append(out, Difference{Projection: name, TitleID: titleID, At: at,
				Difference: projections.Difference{Aspect: k.Aspect, Choice: k.Choice + " change", Got: g.Tally, Want: w.Tally}})
		}
	}
	return out
}

// verifiable names the version to verify (the active one for ""), and
// fails when it has no items left to compare.
func (a *Admin) verifiable(ctx context.Context, version string) (string, error) {
	reg, err := a.d.Registry.Load(ctx, true)
	if err != nil {
		return version, err
	}
	if version == "" {
		version = reg.Active
	}
	v, err := reg.Get(version)
	if err != nil {
		return version, err
	}
	switch v.State {
	case lifecycle.Retired:
		when := ""
		if !v.Deleted.IsZero() {
			when = " at " + v.Deleted.UTC().Format(time.RFC3339)
		}
		return version, retired{fmt.Sprintf("version %s was retired%s and its items deleted; nothing to verify", version, when)}
	case lifecycle.Retiring:
		return version, retired{fmt.Sprintf("version %s is being retired, its items deleted; nothing to verify", version)}
	}
	return version, nil
}

// foldEvents is the pure fold of the whole event table, read in parallel
// segments, and its trends by minute; it counts the items read in
// res.Events.
func (a *Admin) foldEvents(ctx context.Context, res *VerifyResult, progress func(events int)) (map[string]projections.Counts, map[string]projections.Trend, error) {
	var (
		mu     sync.Mutex
		folder projections.Folder
		trends projections.TrendFolder
	)
	const segments = 8
	err := projections.ScanEvents(ctx, a.d.Events.Scanner(20000), segments, projections.Segments(segments), func(_ context.Context, _ int, p projections.EventPage, _ projections.Cursor) error {
		mu.Lock()
		folder.Add(p.Events)
		trends.Add(p.Events)
		res.Events += int64(len(p.Events) + p.Invalid)
		mu.Unlock()
		if progress != nil {
			progress(len(p.Events) + p.Invalid)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return folder.Tallies(), trends.Trends(), nil
}

// titlesOf lists, sorted, the titles with votes in the events (want) or
// counts in the version.
func (a *Admin) titlesOf(ctx context.Context, version string, want map[string]projections.Counts) ([]string, error) {
	stored, err := a.d.Items.Titles(ctx, version)
	if err != nil {
		return nil, err
	}
	titles := map[string]bool{}
	for _, t := range stored {
		titles[t] = true
	}
	for t := range want {
		titles[t] = true
	}
	sorted := make([]string, 0, len(titles))
	for t := range titles {
		sorted = append(sorted, t)
	}
	slices.Sort(sorted)
	return sorted, nil
}

// retired says a version has no items to verify, and is
// lifecycle.ErrRetired.
type retired struct{ msg string }

func (e retired) Error() string { return e.msg }
func (e retired) Unwrap() error { return lifecycle.ErrRetired }
