package admin

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/domain/lifecycle"
	"votes/infra/dynamo"
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
// lifecycle.ErrRetired. It holds one entry per
// voter, title and aspect: the fold needs the latest vote of each.
func (a *Admin) Verify(ctx context.Context, version string, progress func(events int)) (VerifyResult, error) {
	reg, err := a.Registry.Load(ctx, true)
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

	type key struct{ voter, title, aspect string }
	latest := map[key]domain.VoteCast{}
	var mu sync.Mutex
	scanner := dynamo.NewEventScanner(a.DB, a.Tables.Events, 20000)
	const segments = 8
	errs := make(chan error, segments)
	for seg := range segments {
		go func() {
			var after projections.Cursor
			for {
				events, bad, next, err := scanner.Page(ctx, seg, segments, after)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, e := range events {
					k := key{e.VoterID, e.TitleID, e.Aspect}
					if cur, ok := latest[k]; !ok || e.After(cur) {
						e.OccurredAt, e.SubmissionID = "", ""
						latest[k] = e
					}
				}
				res.Events += int64(len(events) + bad)
				mu.Unlock()
				if progress != nil {
					progress(len(events) + bad)
				}
				if after = next; after == "" {
					errs <- nil
					return
				}
			}
		}()
	}
	for range segments {
		if err := <-errs; err != nil {
			return res, err
		}
	}
	want := map[string]projections.Counts{}
	for _, e := range latest {
		if want[e.TitleID] == nil {
			want[e.TitleID] = projections.Counts{}
		}
		want[e.TitleID].Add(e.Aspect, e.Choice, 1)
	}
	latest = nil

	titles := map[string]bool{}
	for t := range want {
		titles[t] = true
	}
	err = a.scanTable(ctx, a.Tables.Tallies, version+"#", func(items []map[string]types.AttributeValue) error {
		for _, item := range items {
			if t, ok := item[dynamo.AttrTitleID].(*types.AttributeValueMemberS); ok {
				titles[t.Value] = true
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	cells := dynamo.NewCellStore(a.DB, a.Tables.Tallies, version)
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
