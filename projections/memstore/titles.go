package memstore

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"

	"votes/projections"
)

// Titles keeps a title index and its ranking pages in memory. Safe for
// concurrent use. It passes storetest.TestTitleIndex.
type Titles struct {
	mu        sync.Mutex
	summaries map[string]projections.TitleSummary
	pages     map[projections.RankingKey]map[int]projections.RankingPage
	trends    map[string]map[projections.Span]projections.TrendItem
}

var (
	_ projections.TitleIndex   = (*Titles)(nil)
	_ projections.TitleLister  = (*Titles)(nil)
	_ projections.RankingStore = (*Titles)(nil)
	_ projections.IndexStore   = (*Titles)(nil)
	_ projections.TrendReader  = (*Titles)(nil)
)

// NewTitles is an empty title index.
func NewTitles() *Titles {
	return &Titles{summaries: map[string]projections.TitleSummary{}, pages: map[projections.RankingKey]map[int]projections.RankingPage{},
		trends: map[string]map[projections.Span]projections.TrendItem{}}
}

func cloneSummary(s projections.TitleSummary) projections.TitleSummary {
	c := projections.Counts{}
	c.Merge(s.Counts)
	s.Counts = c
	s.Cells = maps.Clone(s.Cells)
	s.Pending, s.Flush = maps.Clone(s.Pending), maps.Clone(s.Flush)
	return s
}

// Get returns a copy of titleID's summary.
func (t *Titles) Get(_ context.Context, titleID string) (projections.TitleSummary, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.summaries[titleID]
	if !ok {
		return projections.TitleSummary{TitleID: titleID, Counts: projections.Counts{}, Cells: map[int]int64{}}, false, nil
	}
	return cloneSummary(s), true, nil
}

// Put writes s if the stored summary is at s.Rev-1.
func (t *Titles) Put(_ context.Context, s projections.TitleSummary) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	stored, ok := t.summaries[s.TitleID]
	if ok && stored.Rev == s.Rev && sameSummary(stored, s) {
		return nil
	}
	if (s.Rev <= 1 && ok) || (s.Rev > 1 && (!ok || stored.Rev != s.Rev-1)) {
		return projections.ErrStale
	}
	t.summaries[s.TitleID] = cloneSummary(s)
	return nil
}

func sameSummary(a, b projections.TitleSummary) bool {
	return a.TitleID == b.TitleID && a.Rev == b.Rev && a.LastVoteAt == b.LastVoteAt && a.Counts.Equal(b.Counts) && maps.Equal(a.Cells, b.Cells) && a.SameTrendState(b)
}

// All returns copies of every summary.
func (t *Titles) All(context.Context) ([]projections.TitleSummary, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]projections.TitleSummary, 0, len(t.summaries))
	for _, s := range t.summaries {
		out = append(out, cloneSummary(s))
	}
	return out, nil
}

// Page returns a stored ranking page.
func (t *Titles) Page(_ context.Context, key projections.RankingKey, number int) (projections.RankingPage, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pages[key][number]
	return p, ok, nil
}

// PutPages stores pages.
func (t *Titles) PutPages(_ context.Context, pages []projections.RankingPage) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range pages {
		if t.pages[p.Key] == nil {
			t.pages[p.Key] = map[int]projections.RankingPage{}
		}
		for i := range p.Titles {
			p.Titles[i] = cloneSummary(p.Titles[i])
		}
		t.pages[p.Key][p.Number] = p
	}
	return nil
}

var _ projections.TitleCells = (*Cells)(nil)

// ReadTitle returns every cell of titleID with its version and counts; the
// latest vote is the latest of its last step's redo log.
func (s *Cells) ReadTitle(_ context.Context, titleID string) (map[int]projections.CellSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]projections.CellSnapshot{}
	for c, x := range s.cells {
		if c.TitleID != titleID {
			continue
		}
		counts := projections.Counts{}
		counts.Merge(x.counts)
		out[c.Shard] = projections.CellSnapshot{Version: x.version, Counts: counts, LastVoteAt: x.redo.LastVoteAt()}
	}
	return out, nil
}

// AddTrend adds add to the item of span and makes rev its flush
// revision, if its flush revision is below rev.
func (t *Titles) AddTrend(_ context.Context, titleID string, span projections.Span, add projections.Trend, rev int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	items := t.trends[titleID]
	if items == nil {
		items = map[projections.Span]projections.TrendItem{}
		t.trends[titleID] = items
	}
	it, ok := items[span]
	if !ok {
		it = projections.TrendItem{Span: span, Counts: projections.Trend{}}
	}
	if it.Flush >= rev {
		return projections.ErrStale
	}
	it.Counts = maps.Clone(it.Counts)
	it.Counts.Merge(add)
	it.Flush = rev
	items[span] = it
	return nil
}

// TrendRange returns copies of the items of level starting in [start, end).
func (t *Titles) TrendRange(_ context.Context, titleID string, level projections.Level, start, end int64) ([]projections.TrendItem, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []projections.TrendItem
	for span, it := range t.trends[titleID] {
		if span.Level == level && span.Start >= start && span.Start < end {
			it.Counts = maps.Clone(it.Counts)
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b projections.TrendItem) int { return cmp.Compare(a.Span.Start, b.Span.Start) })
	return out, nil
}
