package admin

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"votes/domain/lifecycle"
	"votes/projections"
)

// Difference is a count where a version disagrees with the event table.
type Difference struct {
	TitleID string
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
// them with version's (the active one when empty). A retired or retiring
// version has no items to compare: that is an error wrapping
// lifecycle.ErrRetired. It folds with projections.Folder, the definition
// of the tallies, holding one entry per voter, title and aspect.
func (a *Admin) Verify(ctx context.Context, version string, progress func(events int)) (VerifyResult, error) {
	reg, err := a.d.Registry.Load(ctx, true)
	if err != nil {
		return VerifyResult{}, err
	}
	if version == "" {
		version = reg.Active
	}
	v, err := reg.Get(version)
	if err != nil {
		return VerifyResult{}, err
	}
	switch v.State {
	case lifecycle.Retired:
		when := ""
		if !v.Deleted.IsZero() {
			when = " at " + v.Deleted.UTC().Format(time.RFC3339)
		}
		return VerifyResult{Version: version}, retired{fmt.Sprintf("version %s was retired%s and its items deleted; nothing to verify", version, when)}
	case lifecycle.Retiring:
		return VerifyResult{Version: version}, retired{fmt.Sprintf("version %s is being retired, its items deleted; nothing to verify", version)}
	}
	res := VerifyResult{Version: version}

	var (
		mu     sync.Mutex
		folder projections.Folder
	)
	scanner := a.d.Events.Scanner(20000)
	const segments = 8
	err = projections.ScanEvents(ctx, scanner, segments, projections.Segments(segments), func(_ context.Context, _ int, p projections.EventPage, _ projections.Cursor) error {
		mu.Lock()
		folder.Add(p.Events)
		res.Events += int64(len(p.Events) + p.Invalid)
		mu.Unlock()
		if progress != nil {
			progress(len(p.Events) + p.Invalid)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	want := folder.Tallies()
	folder = projections.Folder{}

	// Titles with votes in the events or counts in the version.
	stored, err := a.d.Items.Titles(ctx, version)
	if err != nil {
		return res, err
	}
	titles := map[string]bool{}
	for _, t := range stored {
		titles[t] = true
	}
	for t := range want {
		titles[t] = true
	}
	cells := a.d.Versions.Cells(version)
	sorted := make([]string, 0, len(titles))
	for t := range titles {
		sorted = append(sorted, t)
	}
	slices.Sort(sorted)
	res.Titles = len(sorted)
	for _, t := range sorted {
		got, err := cells.Tally(ctx, t)
		if err != nil {
			return res, err
		}
		for _, d := range got.Diff(want[t]) {
			res.Differences = append(res.Differences, Difference{TitleID: t, Difference: d})
		}
	}
	return res, nil
}

// retired says a version has no items to verify, and is
// lifecycle.ErrRetired.
type retired struct{ msg string }

func (e retired) Error() string { return e.msg }
func (e retired) Unwrap() error { return lifecycle.ErrRetired }
