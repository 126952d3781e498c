package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"votes/projections"
)

// Summary is a title's tally as summed from its cells, and when the sum
// began: every cell write an eventually consistent read could see at At
// is in Counts.
type Summary struct {
	Counts projections.Counts
	At     time.Time
}

// Summaries keeps one Summary per projection version and title. It is a
// cache of the sum of the title's cells, for the query function alone:
// nothing is ever computed from it.
type Summaries interface {
	// Summary reads the stored summary, its counts and when its sum began,
	// with an eventually consistent read, which may return an older one
	// than the newest stored. ok is false when none is stored.
	Summary(ctx context.Context, version, titleID string) (counts projections.Counts, at time.Time, ok bool, err error)
	// Offer stores counts summed from at on, unless the stored summary
	// began at or after at, so that the stored summary only moves forward
	// in time, in whatever order concurrent offers land. An offer that
	// loses to a newer summary is not an error. Safe for concurrent use.
	Offer(ctx context.Context, version, titleID string, counts projections.Counts, at time.Time) error
}

// TitleIndexReader reads one projection version's title index: a title's
// summary, strongly consistent, as projections.TitleIndex's Get does. Its
// counts are exact as of the cell versions it records, and the projector
// brings it up to date in the same invocation as the cells. found is false
// for a title the index never wrote: one nobody voted on, or one whose
// votes predate the index in this version.
type TitleIndexReader interface {
	Get(ctx context.Context, titleID string) (s projections.TitleSummary, found bool, err error)
}

// ErrReadBudget is returned when a tally would need a sum of cells and the
// container has started as many sums as ReadLimits allows for now.
var ErrReadBudget = errors.New("tally sums over budget")

// ReadLimits bound what a tally read costs and how far behind it may be.
// The zero value reads the registry and the cells on every GET.
type ReadLimits struct {
	// MaxAge is the oldest a tally answered may be: an answer kept in
	// memory, or a stored summary, older than this is never served. Zero
	// sums the cells on every read.
	MaxAge time.Duration
	// VersionMaxAge is how long the active version is kept in memory: a
	// promote or a rollback is seen by every GET within it. Zero reads the
	// registry on every GET.
	VersionMaxAge time.Duration
	// SumsPerSecond and SumBurst are a token bucket on the sums of cells
	// one container starts; a read that needs a sum beyond it fails with
	// ErrReadBudget. They bound what reads of titles nobody read in the
	// last MaxAge can cost, whatever the request rate.
	SumsPerSecond float64
	SumBurst      int
	// Entries is how many titles one container keeps in memory.
	Entries int
	// EmptyFor is how long a title whose cells this container summed to
	// nothing, and that the title index still has no summary of, is
	// answered as empty as of the index's answer, without summing again:
	// every writer keeps the index, so a vote on the title since the sum
	// would have put it there (the projector writes the index in the same
	// invocation as the cells). Zero sums such a title again once its
	// answer is MaxAge old, like any other the index lacks.
	EmptyFor time.Duration
}

// DefaultReadLimits are the limits the deployed function runs with.
func DefaultReadLimits() ReadLimits {
	return ReadLimits{MaxAge: 250 * time.Millisecond, VersionMaxAge: time.Second, SumsPerSecond: 10, SumBurst: 20, Entries: 10000, EmptyFor: time.Minute}
}

// Validate reports the first limit out of range.
func (l ReadLimits) Validate() error {
	switch {
	case l.MaxAge < 0 || l.VersionMaxAge < 0 || l.EmptyFor < 0:
		return errors.New("read limits: ages cannot be negative")
	case l.MaxAge == 0:
		return nil // no summaries: the other limits do not apply
	case l.SumsPerSecond <= 0 || l.SumBurst < 1:
		return errors.New("read limits: sums per second and burst must be positive")
	case l.Entries < 1:
		return errors.New("read limits: entries must be at least 1")
	}
	return nil
}

// TallyCache reads tallies from the title index, and keeps each answer in
// memory for MaxAge: a read costs at most one read of the title's index
// summary, whatever the number of reads waiting for it in this container.
// A title the index has no summary of is read through a summary of its
// cells kept in Summaries: a read answered from one younger than MaxAge
// costs one summary read more; an older one sums the cells once and
// offers the new summary to the other containers. A title whose cells
// summed to nothing (one nobody has voted on, or whose first vote the
// projector has not indexed yet) is answered empty as of the index's
// answer for EmptyFor after the sum, at the cost of the index read alone.
type TallyCache struct {
	index     func(version string) TitleIndexReader
	cells     func(version string) TallyReader
	summaries Summaries
	limits    ReadLimits
	now       func() time.Time
	log       *slog.Logger

	mu      sync.Mutex
	mem     map[string]Summary
	flights map[string]*flight
	// empty holds, by key, when a sum of the cells that found nothing
	// began, for titles the index had no summary of.
	empty  map[string]time.Time
	tokens float64
	filled time.Time
}

type flight struct {
	done chan struct{}
	s    Summary
	err  error
}

// NewTallyCache reads each version's title index, and the cells through
// summaries for the titles it has none of, within limits; now is the clock
// (time.Now in production).
func NewTallyCache(index func(version string) TitleIndexReader, cells func(version string) TallyReader, summaries Summaries, limits ReadLimits, now func() time.Time, log *slog.Logger) *TallyCache {
	return &TallyCache{
		index: index, cells: cells, summaries: summaries, limits: limits, now: now, log: log,
		mem: map[string]Summary{}, flights: map[string]*flight{}, empty: map[string]time.Time{}, tokens: float64(limits.SumBurst),
	}
}

// For is the TallyReader of version, for NewQuery.
func (c *TallyCache) For(version string) TallyReader {
	return cachedTally{c: c, version: version}
}

type cachedTally struct {
	c       *TallyCache
	version string
}

func (t cachedTally) Tally(ctx context.Context, titleID string) (projections.Counts, error) {
	s, err := t.c.Summary(ctx, t.version, titleID)
	return s.Counts, err
}

// fresh says whether a summary taken at at may be served at now. A summary
// from the future (clocks of two containers differ by milliseconds under
// NTP) is taken as fresh only within MaxAge too.
func (c *TallyCache) fresh(at, now time.Time) bool {
	age := now.Sub(at)
	return age < c.limits.MaxAge && age > -c.limits.MaxAge
}

// Summary is version's tally of titleID, never older than MaxAge.
func (c *TallyCache) Summary(ctx context.Context, version, titleID string) (Summary, error) {
	if c.limits.MaxAge <= 0 {
		at := c.now()
		counts, err := c.cells(version).Tally(ctx, titleID)
		return Summary{Counts: counts, At: at}, err
	}
	key := version + "#" + titleID
	c.mu.Lock()
	if s, ok := c.mem[key]; ok && c.fresh(s.At, c.now()) {
		c.mu.Unlock()
		return Summary{Counts: s.Counts.Compact(), At: s.At}, nil
	}
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return Summary{}, ctx.Err()
		}
		return Summary{Counts: f.s.Counts.Compact(), At: f.s.At}, f.err
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.mu.Unlock()

	f.s, f.err = c.load(ctx, key, version, titleID)

	c.mu.Lock()
	delete(c.flights, key)
	if f.err == nil {
		c.remember(key, f.s)
	}
	c.mu.Unlock()
	close(f.done)
	return Summary{Counts: f.s.Counts.Compact(), At: f.s.At}, f.err
}

// load reads the title's index summary; for a title the index has none
// of, it answers empty if this container summed its cells to nothing
// within EmptyFor, or else reads the stored summary of its cells and,
// when that is too old, sums the cells and offers the sum as the new
// summary.
func (c *TallyCache) load(ctx context.Context, key, version, titleID string) (Summary, error) {
	// Taken before the read, as for a sum: the answer's age is never
	// understated.
	at := c.now()
	indexed, found, err := c.index(version).Get(ctx, titleID)
	if err != nil {
		return Summary{}, err
	}
	if found {
		c.mu.Lock()
		delete(c.empty, key)
		c.mu.Unlock()
		return Summary{Counts: indexed.Counts, At: at}, nil
	}
	if c.emptySince(key, at) {
		// Nothing was in the cells at the sum, and no writer has indexed a
		// vote on the title since, as of at: the index's own answer.
		return Summary{Counts: projections.Counts{}, At: at}, nil
	}
	counts, at, ok, err := c.summaries.Summary(ctx, version, titleID)
	if err != nil {
		return Summary{}, err
	}
	if ok && c.fresh(at, c.now()) {
		return Summary{Counts: counts, At: at}, nil
	}
	if !c.take() {
		return Summary{}, ErrReadBudget
	}
	// The time is taken before the cells are read: the sum holds at
	// least every write visible then, so its age is never understated.
	at = c.now()
	counts, err = c.cells(version).Tally(ctx, titleID)
	if err != nil {
		return Summary{}, err
	}
	if err := c.summaries.Offer(ctx, version, titleID, counts, at); err != nil {
		// The answer is right without it; the next read sums again.
		c.log.WarnContext(ctx, "store tally summary", "title", titleID, "err", err)
	}
	if len(counts.Compact()) == 0 {
		c.rememberEmpty(key, at)
	}
	return Summary{Counts: counts, At: at}, nil
}

// emptySince reports whether this container summed key's cells to nothing
// less than EmptyFor before now.
func (c *TallyCache) emptySince(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	since, ok := c.empty[key]
	if !ok {
		return false
	}
	if age := now.Sub(since); age >= 0 && age < c.limits.EmptyFor {
		return true
	}
	delete(c.empty, key)
	return false
}

// rememberEmpty notes that a sum of key's cells begun at since found
// nothing; when as many titles are noted as memory keeps, it forgets
// those noted too long ago, or else all of them. Every note follows a sum,
// so at most SumsPerSecond × EmptyFor titles are noted at once (600 with
// DefaultReadLimits, well within its Entries).
func (c *TallyCache) rememberEmpty(key string, since time.Time) {
	if c.limits.EmptyFor <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.empty[key]; !ok && len(c.empty) >= c.limits.Entries {
		now := c.now()
		for k, v := range c.empty {
			if now.Sub(v) >= c.limits.EmptyFor {
				delete(c.empty, k)
			}
		}
		if len(c.empty) >= c.limits.Entries {
			clear(c.empty)
		}
	}
	c.empty[key] = since
}

// take takes a token for one sum of cells. Call without c.mu.
func (c *TallyCache) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.filled.IsZero() && now.After(c.filled) {
		c.tokens = min(float64(c.limits.SumBurst), c.tokens+now.Sub(c.filled).Seconds()*c.limits.SumsPerSecond)
	}
	c.filled = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// remember keeps s in memory unless a newer summary is kept; when memory
// is full it forgets what is too old to serve, or else everything. Call
// with c.mu held.
func (c *TallyCache) remember(key string, s Summary) {
	if old, ok := c.mem[key]; ok && !old.At.Before(s.At) {
		return
	}
	if _, ok := c.mem[key]; !ok && len(c.mem) >= c.limits.Entries {
		now := c.now()
		for k, v := range c.mem {
			if !c.fresh(v.At, now) {
				delete(c.mem, k)
			}
		}
		if len(c.mem) >= c.limits.Entries {
			clear(c.mem)
		}
	}
	c.mem[key] = s
}

// VersionCache keeps the active version in memory for VersionMaxAge, so
// that a promote or a rollback is seen within that bound.
type VersionCache struct {
	src    ActiveVersion
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	version string
	at      time.Time
	ok      bool
}

// NewVersionCache keeps what src says for maxAge. src must read
// consistently for the bound to hold: an eventually consistent read can
// return an older version.
func NewVersionCache(src ActiveVersion, maxAge time.Duration, now func() time.Time) *VersionCache {
	return &VersionCache{src: src, maxAge: maxAge, now: now}
}

var _ ActiveVersion = (*VersionCache)(nil)

// Active is the active version as read at most maxAge ago.
func (v *VersionCache) Active(ctx context.Context) (string, error) {
	v.mu.Lock()
	if v.ok && v.now().Sub(v.at) < v.maxAge {
		defer v.mu.Unlock()
		return v.version, nil
	}
	v.mu.Unlock()
	at := v.now() // before the read: the version is as of at least at
	version, err := v.src.Active(ctx)
	if err != nil {
		return "", fmt.Errorf("active version: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.ok || !at.Before(v.at) {
		v.version, v.at, v.ok = version, at, true
	}
	return version, nil
}
