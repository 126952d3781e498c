package projections

import (
	"context"
	"fmt"
	"slices"
)

// RankingPageSize is how many titles one stored ranking page holds. A page
// of summaries stays near 20 KB, so reading one costs at most 3 read units
// (eventually consistent), and a GET of up to one page's titles reads two.
const RankingPageSize = 100

// RankingKey names one precomputed order: a sort on an aspect ("" for all
// aspects; approval needs one).
type RankingKey struct {
	Sort   Sort
	Aspect string
}

func (k RankingKey) String() string {
	if k.Aspect == "" {
		return string(k.Sort)
	}
	return string(k.Sort) + "/" + k.Aspect
}

// RankingKeys lists the orders kept for aspects: votes over every aspect
// and per aspect, approval per aspect, and recent activity (per title).
func RankingKeys(aspects []string) []RankingKey {
	keys := []RankingKey{{Sort: ByVotes}, {Sort: ByRecent}}
	for _, a := range aspects {
		keys = append(keys, RankingKey{Sort: ByVotes, Aspect: a}, RankingKey{Sort: ByApproval, Aspect: a})
	}
	return keys
}

// Canonical is the stored key answering sort on aspect: recent activity is
// per title, so its aspect is dropped.
func (k RankingKey) Canonical() RankingKey {
	if k.Sort == ByRecent {
		return RankingKey{Sort: ByRecent}
	}
	return k
}

// RankingPage is one page of a precomputed order: the titles ranked
// Number*RankingPageSize onwards, and Generation the refresh that wrote it.
type RankingPage struct {
	Key        RankingKey
	Number     int
	Titles     []TitleSummary
	Generation int64
}

// Pages cuts summaries ranked by key into pages. There is always at least
// one page, empty when there are no titles.
func Pages(summaries []TitleSummary, key RankingKey, generation int64) []RankingPage {
	ranked := Rank(summaries, key.Sort, key.Aspect)
	var out []RankingPage
	for start := 0; start == 0 || start < len(ranked); start += RankingPageSize {
		end := min(start+RankingPageSize, len(ranked))
		out = append(out, RankingPage{Key: key, Number: start / RankingPageSize, Titles: slices.Clone(ranked[start:end]), Generation: generation})
	}
	return out
}

// SamePage reports whether two pages rank the same titles with the same
// figures: a refresh rewrites only the pages that changed.
func SamePage(a, b RankingPage) bool {
	if a.Key != b.Key || a.Number != b.Number || len(a.Titles) != len(b.Titles) {
		return false
	}
	for i := range a.Titles {
		x, y := a.Titles[i], b.Titles[i]
		if x.TitleID != y.TitleID || x.LastVoteAt != y.LastVoteAt || !x.Counts.Equal(y.Counts) {
			return false
		}
	}
	return true
}

// TitleLister lists every title summary of a projection version.
type TitleLister interface {
	// All returns every summary, in no particular order, eventually
	// consistent.
	All(ctx context.Context) ([]TitleSummary, error)
}

// RankingStore keeps the precomputed ranking pages of one version.
type RankingStore interface {
	// Page returns page number of key, eventually consistent; found is
	// false for a page never written (or beyond the last).
	Page(ctx context.Context, key RankingKey, number int) (p RankingPage, found bool, err error)
	// PutPages writes pages, each replacing the stored page of its key and
	// number.
	PutPages(ctx context.Context, pages []RankingPage) error
}

// RefreshRankings recomputes every order of keys from the title index and
// writes the pages that changed. Titles never leave the index (a title
// whose votes all moved away stays, at zero), so an order never shrinks (one read of every summary, and a write per
// changed page). It is a recomputation, not an update: running it twice,
// or two at once, leaves the same pages. It returns how many pages it
// wrote.
func RefreshRankings(ctx context.Context, titles TitleLister, store RankingStore, keys []RankingKey, generation int64) (written int, err error) {
	all, err := titles.All(ctx)
	if err != nil {
		return 0, fmt.Errorf("rankings: list titles: %w", err)
	}
	for _, key := range keys {
		pages := Pages(all, key, generation)
		var changed []RankingPage
		for _, p := range pages {
			old, found, err := store.Page(ctx, key, p.Number)
			if err != nil {
				return written, fmt.Errorf("rankings: read %s page %d: %w", key, p.Number, err)
			}
			if !found || !SamePage(old, p) {
				changed = append(changed, p)
			}
		}
		if err := store.PutPages(ctx, changed); err != nil {
			return written, fmt.Errorf("rankings: write %s: %w", key, err)
		}
		written += len(changed)
	}
	return written, nil
}
