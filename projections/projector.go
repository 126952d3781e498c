package projections

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"votes/domain"
)

// ErrStale means a stored ballot is not at the version a save expects:
// another writer saved it first.
var ErrStale = errors.New("ballot changed since it was read")

// ErrCellMoved means a cell is no longer at the version a step read it at:
// another step committed first. Nothing was written.
var ErrCellMoved = errors.New("cell moved on since it was read")

// Ballots stores ballots, one per voter and title.
type Ballots interface {
	// Load returns the stored ballots of voterIDs on titleID, strongly
	// consistent: each reflects every save acknowledged before Load was
	// called. A voter with no ballot is absent from the map.
	Load(ctx context.Context, titleID string, voterIDs []string) (map[string]Ballot, error)
	// LoadAll is Load for the ballots of several titles at once, in as
	// few calls to the store as it can: each key's stored ballot, strongly
	// consistent as Load's, absent from the map when there is none.
	LoadAll(ctx context.Context, keys []BallotKey) (map[BallotKey]Ballot, error)
	// Save writes b if the stored ballot is at b.Version-1 (none stored when
	// b.Version is 1), atomically. Saving a ballot that is already stored
	// exactly as it is (Ballot.Same: a retried call the store had applied)
	// succeeds; any other stored ballot gives ErrStale and is left as it is.
	Save(ctx context.Context, b Ballot) error
}

// Cells stores tally cells. A cell holds counts, a version (0 for a cell
// never written, one more per committed step) and the redo log of the last
// step committed on it.
type Cells interface {
	// Read returns the cell's version and redo log, strongly consistent: it
	// reflects every commit acknowledged before Read was called.
	Read(ctx context.Context, cell domain.Cell) (CellState, error)
	// ReadAll is Read for several cells at once, in as few calls to the
	// store as it can: every cell asked for is in the map (one never
	// written at version 0), each reflecting every commit acknowledged
	// before ReadAll was called.
	ReadAll(ctx context.Context, cells []domain.Cell) (map[domain.Cell]CellState, error)
	// Commit adds delta to the cell's counts, makes redo its redo log and
	// moves its version from expect to expect+1, in one atomic write, if
	// the cell is at version expect. If it is not, and the cell holds redo
	// (the same Redo.Step: an earlier try of this very call was applied),
	// Commit returns nil; otherwise it writes nothing and returns
	// ErrCellMoved.
	Commit(ctx context.Context, cell domain.Cell, expect int64, redo Redo, delta Counts) error
}

// BallotKey names one ballot: a voter's on a title.
type BallotKey struct{ TitleID, VoterID string }

// CellState is what a step reads of a cell besides its counts.
type CellState struct {
	Version int64
	Redo    Redo
}

// Redo is the redo log of a committed step: for every voter whose ballot
// the step changed, the version the step gives that ballot and the votes
// that changed it, and what the step did to the title's trend. Step
// identifies the commit (random, one per Commit call), so that a store can
// recognise a retried commit of its own.
type Redo struct {
	Step    string
	Entries []RedoEntry
	// Trend is what the step moved in the trend of the cell's title; its
	// tally changes add up to what the step moved in the cell's counts.
	// Nil in a log written before trends were kept.
	Trend Trend
}

// RedoEntry is one voter's part of a step: applying Votes to the voter's
// ballot at Version-1 gives the ballot at Version.
type RedoEntry struct {
	VoterID string
	Version int64
	Votes   []Vote
}

// Vote is one vote of a redo log.
type Vote struct {
	Aspect string
	Current
}

// Equal reports whether r and o are the same log, entries in order.
func (r Redo) Equal(o Redo) bool {
	return r.Step == o.Step && (r.Trend == nil) == (o.Trend == nil) && maps.Equal(r.Trend, o.Trend) &&
		slices.EqualFunc(r.Entries, o.Entries, func(a, b RedoEntry) bool {
			return a.VoterID == b.VoterID && a.Version == b.Version && slices.Equal(a.Votes, b.Votes)
		})
}

// maxStepVoters bounds the voters of one step, so that a step's redo log
// stays far below DynamoDB's 400 KB item size (a voter's entry is at most
// about 450 bytes with five aspects and the longest IDs). A cell with more
// voters in a batch takes several steps, one after the other.
const maxStepVoters = 250

// maxAttempts bounds how often a step on one cell is computed again because
// other steps committed first; each such retry means another writer made
// progress on the cell. Past it the cell fails and its events are retried.
const maxAttempts = 50

// Projector folds batches of events into ballots and cells, exactly once,
// for any number of writers working on a cell at the same time.
//
// A step on a cell, for the events of a batch on it:
//
//  1. reads the cell (version n, redo log R), then the ballots of the
//     events' voters and of R's voters (a batch makes these reads for the
//     first step on each of its cells at once: all the cells, then all
//     the ballots);
//  2. completes R: a voter of R whose ballot is still below R's version
//     for it gets R's votes saved, at exactly that version;
//  3. folds the events into the ballots; for each ballot that changes, the
//     new ballot is its stored version plus one;
//  4. commits, in ONE conditional write on the cell: add the counts the
//     changed ballots move, make the step's redo log the cell's, version
//     n+1, if the cell is still at n. If another step committed first,
//     back to 1. A step that changes no ballot writes nothing;
//  5. saves the changed ballots, each on condition that the stored one is
//     at the version before. Another writer may complete them first (step 2
//     of its own step): that is fine. A save that fails fails the cell; the
//     retry's step 2 completes it.
//
// Invariant: for every cell, its counts are the tally of its voters'
// effective ballots, where a voter's effective ballot is the cell's redo
// target if the voter is in the cell's redo log and its stored ballot is
// below that version, else the stored ballot. Step 4 is the only write that
// changes counts or the redo log, and it is conditional on the version, so
// steps on a cell are serialised, each computed from the effective ballots
// after completing the previous step's log. The cell is read before the
// ballots (not in one batch, whose reads are not ordered): every log older
// than the cell's was completed before the cell moved past it, so the
// ballots read are the effective ones unless another step commits
// meanwhile, and then the commit fails. Ballot saves are conditional on the
// exact previous version, so a save that lands late (a paused writer, an SDK
// retry) can never go over a newer ballot, and each (voter, title, version)
// is the target of exactly one committed step. So the counts are the fold of
// the events that committed steps applied; an event whose step did not
// commit is retried (its cell is in Report.Failed) and folds in later; an
// event folded twice changes nothing.
//
// No clock, lease or owner is involved: a writer never waits for another,
// it completes the other's redo log (idempotent) and goes on. The premise
// is DynamoDB's: conditional writes are atomic, and strongly consistent
// reads see every write acknowledged before them.
//
// The ballot fold is idempotent, so redelivered events change nothing, and a
// ballot is written only when an event changes it. DynamoDB Streams orders
// records per item only, may hand sibling shards of one partition key to
// concurrent invocations, and delivers at least once; none of it matters
// to exactness.
type Projector struct {
	ballots     Ballots
	cells       Cells
	concurrency int
	done        *completed
}

// NewProjector builds a projector that works on up to concurrency cells at
// once, and saves up to concurrency ballots at once besides.
func NewProjector(ballots Ballots, cells Cells, concurrency int) *Projector {
	return &Projector{ballots: ballots, cells: cells, concurrency: max(concurrency, 1), done: newCompleted()}
}

// completed remembers, per cell, the last redo log this projector knows to
// be complete: its own step whose ballots it saved every one of, or
// another's that it completed. A step that reads that log in the cell
// skips loading its voters' ballots, and completing it: completion is for
// good (ballot versions only move on), so this only saves reads. Safe for
// concurrent use; bounded, it forgets everything when full.
type completed struct {
	mu sync.Mutex
	m  map[domain.Cell]string
}

const completedCells = 1 << 16

func newCompleted() *completed { return &completed{m: map[domain.Cell]string{}} }

func (c *completed) is(cell domain.Cell, step string) bool {
	if step == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[cell] == step
}

func (c *completed) mark(cell domain.Cell, step string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= completedCells {
		clear(c.m)
	}
	c.m[cell] = step
}

// Report says what one Project call did.
type Report struct {
	Cells     int
	Ballots   int // ballots saved by the steps of this call
	Recovered int // ballots of earlier steps' redo logs that this call saved
	Failed    map[domain.Cell]error
}

// Project folds events into the stores. Cells are independent: one failing
// does not stop the others, and Report.Failed says which failed, so the
// caller can retry only their events.
func (p *Projector) Project(ctx context.Context, events []domain.VoteCast) Report {
	byCell := map[domain.Cell][]domain.VoteCast{}
	for _, e := range events {
		byCell[e.Cell()] = append(byCell[e.Cell()], e)
	}
	ahead := p.readAhead(ctx, byCell)
	var (
		mu    sync.Mutex
		rep   = Report{Cells: len(byCell), Failed: map[domain.Cell]error{}}
		wg    sync.WaitGroup
		sem   = make(chan struct{}, p.concurrency)
		saves = make(chan struct{}, p.concurrency)
	)
	// Cells in a fixed order: with one cell at a time, a batch's calls on
	// the stores come in an order its events alone decide, so a test that
	// draws faults call by call can replay and shrink them.
	for _, cell := range slices.SortedFunc(maps.Keys(byCell), compareCells) {
		evs := byCell[cell]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := step{p: p, cell: cell, saves: saves}
			err := s.run(ctx, evs, ahead[cell])
			mu.Lock()
			defer mu.Unlock()
			rep.Ballots += s.saved
			rep.Recovered += s.recovered
			if err != nil {
				rep.Failed[cell] = err
			}
		}()
	}
	wg.Wait()
	return rep
}

func compareCells(a, b domain.Cell) int {
	return cmp.Or(strings.Compare(a.TitleID, b.TitleID), cmp.Compare(a.Shard, b.Shard))
}

// ahead is what a batch's reads ahead found for one cell: the state, the
// redo log to complete and the ballots that its first step starts from.
type ahead struct {
	state   CellState
	pending Redo
	ballots map[string]Ballot
}

// readAhead makes the reads that the first step on every cell of a batch
// starts with, in two rounds instead of two calls per cell: every cell
// (ReadAll), then every ballot those steps load (LoadAll). Each cell is
// still read before its ballots, as a step reads them (see Projector), so
// a step starting from them is the step that would have read them itself,
// only earlier; if another step commits on the cell meanwhile, its commit
// fails and it reads again. When a round fails it returns nil, and each
// step reads for itself.
func (p *Projector) readAhead(ctx context.Context, byCell map[domain.Cell][]domain.VoteCast) map[domain.Cell]*ahead {
	cells := slices.Collect(maps.Keys(byCell))
	states, err := p.cells.ReadAll(ctx, cells)
	if err != nil {
		return nil
	}
	out := make(map[domain.Cell]*ahead, len(cells))
	var keys []BallotKey
	for _, cell := range cells {
		a := &ahead{state: states[cell], pending: p.pending(cell, states[cell])}
		for _, v := range withRedoVoters(stepVoters(byCell[cell])[0], a.pending) {
			keys = append(keys, BallotKey{TitleID: cell.TitleID, VoterID: v})
		}
		out[cell] = a
	}
	stored, err := p.ballots.LoadAll(ctx, keys)
	if err != nil {
		return nil
	}
	for _, k := range keys {
		a := out[domain.CellOf(k.TitleID, k.VoterID)]
		if a == nil {
			// A redo log's voter is always one of its own cell's; a cell
			// that says otherwise is left to its step to find out.
			return nil
		}
		if a.ballots == nil {
			a.ballots = map[string]Ballot{}
		}
		b, ok := stored[k]
		if !ok {
			b = NewBallot(k.VoterID, k.TitleID)
		}
		a.ballots[k.VoterID] = b
	}
	return out
}

// pending is the redo log in st that a step must complete: none when this
// projector knows it complete already.
func (p *Projector) pending(cell domain.Cell, st CellState) Redo {
	if p.done.is(cell, st.Redo.Step) {
		return Redo{} // completed before: its voters' ballots are stored as it says
	}
	return st.Redo
}

// step projects one cell's events.
type step struct {
	p     *Projector
	cell  domain.Cell
	saves chan struct{} // bounds the ballot saves in flight, across cells

	saved, recovered int
}

// stepVoters are the voters of events, sorted, in the groups that one step
// each takes.
func stepVoters(events []domain.VoteCast) [][]string {
	var voters []string
	for _, e := range events {
		voters = append(voters, e.VoterID)
	}
	slices.Sort(voters)
	return slices.Collect(slices.Chunk(slices.Compact(voters), maxStepVoters))
}

// withRedoVoters is voters and the voters of redo, sorted, each once.
func withRedoVoters(voters []string, redo Redo) []string {
	all := slices.Clone(voters)
	for _, e := range redo.Entries {
		all = append(all, e.VoterID)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// run takes the cell's events in steps; the first starts from what the
// batch read ahead, when it did.
func (s *step) run(ctx context.Context, events []domain.VoteCast, first *ahead) error {
	byVoter := map[string][]domain.VoteCast{}
	for _, e := range events {
		byVoter[e.VoterID] = append(byVoter[e.VoterID], e)
	}
	for _, voters := range stepVoters(events) {
		if err := s.one(ctx, voters, byVoter, first); err != nil {
			return err
		}
		first = nil
	}
	return nil
}

// one runs one step for voters' events, again from its start each time
// another step commits on the cell first. Its first try starts from first
// when there is one.
func (s *step) one(ctx context.Context, voters []string, byVoter map[string][]domain.VoteCast, first *ahead) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cell %s: %w", s.cell, err)
		}
		var (
			st      CellState
			pending Redo
			ballots map[string]Ballot
		)
		if attempt == 1 && first != nil {
			st, pending, ballots = first.state, first.pending, first.ballots
		} else {
			var err error
			if st, err = s.p.cells.Read(ctx, s.cell); err != nil {
				return fmt.Errorf("read cell %s: %w", s.cell, err)
			}
			pending = s.p.pending(s.cell, st)
			if ballots, err = s.load(ctx, withRedoVoters(voters, pending)); err != nil {
				return err
			}
		}
		if err := s.complete(ctx, pending, ballots); err != nil {
			return err
		}
		if pending.Step != "" {
			s.p.done.mark(s.cell, pending.Step)
		}
		redo, targets, delta := fold(voters, byVoter, ballots)
		if len(targets) == 0 {
			return nil
		}
		err := s.p.cells.Commit(ctx, s.cell, st.Version, redo, delta)
		if errors.Is(err, ErrCellMoved) && attempt < maxAttempts {
			continue // another step committed first: compute again
		}
		if err != nil {
			return fmt.Errorf("commit step on cell %s at version %d: %w", s.cell, st.Version, err)
		}
		n, err := s.saveAll(ctx, targets, nil)
		s.saved += n
		if err == nil {
			s.p.done.mark(s.cell, redo.Step)
		}
		return err
	}
}

// load reads the ballots of voters; a voter with none stored has an empty
// ballot at version 0.
func (s *step) load(ctx context.Context, voters []string) (map[string]Ballot, error) {
	stored, err := s.p.ballots.Load(ctx, s.cell.TitleID, voters)
	if err != nil {
		return nil, fmt.Errorf("load ballots of cell %s: %w", s.cell, err)
	}
	for _, v := range voters {
		if _, ok := stored[v]; !ok {
			stored[v] = NewBallot(v, s.cell.TitleID)
		}
	}
	return stored, nil
}

// complete saves what redo says of each of its voters whose ballot is still
// below the version redo gives it, and updates ballots to what is stored.
func (s *step) complete(ctx context.Context, redo Redo, ballots map[string]Ballot) error {
	var todo []Ballot
	for _, e := range redo.Entries {
		b := ballots[e.VoterID]
		switch {
		case b.Version >= e.Version:
			continue // done
		case b.Version < e.Version-1:
			return fmt.Errorf("cell %s: a ballot is at version %d, below %d, the version its redo log starts from: the cell and its ballots disagree", s.cell, b.Version, e.Version-1)
		}
		t := b.clone()
		for _, v := range e.Votes {
			t.put(v.Aspect, v.Current)
		}
		t.Version = e.Version
		todo = append(todo, t)
	}
	n, err := s.saveAll(ctx, todo, ballots)
	s.recovered += n
	return err
}

// fold folds each voter's events into their ballot: the ballots that
// change, at their next version, the redo log that says so (with what the
// step moves in the trend), and what they move in the counts.
func fold(voters []string, byVoter map[string][]domain.VoteCast, ballots map[string]Ballot) (Redo, []Ballot, Counts) {
	redo := Redo{Step: newStepID(), Trend: Trend{}}
	var targets []Ballot
	for _, v := range voters {
		b := ballots[v]
		t := b.clone()
		var votes []Vote
		for _, e := range byVoter[v] {
			c := Current{Choice: e.Choice, RecordedAt: e.RecordedAt, VoteID: e.VoteID}
			if m, ok := t.put(e.Aspect, c); ok {
				redo.Trend.move(m)
				votes = append(votes, Vote{Aspect: e.Aspect, Current: c})
			}
		}
		if len(votes) == 0 {
			continue
		}
		t.Version = b.Version + 1
		redo.Entries = append(redo.Entries, RedoEntry{VoterID: v, Version: t.Version, Votes: votes})
		targets = append(targets, t)
	}
	return redo, targets, redo.Trend.Counts()
}

// saveAll saves bs at once (within the projector's bound), and returns how
// many it saved itself; the others another writer had saved. If stored is
// not nil it is updated to what each ballot is stored as.
func (s *step) saveAll(ctx context.Context, bs []Ballot, stored map[string]Ballot) (int, error) {
	out := make([]Ballot, len(bs))
	errs := make([]error, len(bs))
	mine := make([]bool, len(bs))
	if len(bs) == 1 {
		out[0], mine[0], errs[0] = s.save(ctx, bs[0])
	} else {
		var wg sync.WaitGroup
		for i, b := range bs {
			wg.Add(1)
			s.saves <- struct{}{}
			go func() {
				defer func() { <-s.saves; wg.Done() }()
				out[i], mine[i], errs[i] = s.save(ctx, b)
			}()
		}
		wg.Wait()
	}
	n := 0
	for i := range bs {
		if errs[i] != nil {
			continue
		}
		if mine[i] {
			n++
		}
		if stored != nil {
			stored[out[i].VoterID] = out[i]
		}
	}
	return n, errors.Join(errs...)
}

// save saves b, the target of a committed step. If the store says another
// ballot is there, it reads it: one at b's version or later means another
// writer saved b first (completing the step's redo log), and is returned.
func (s *step) save(ctx context.Context, b Ballot) (_ Ballot, mine bool, _ error) {
	for range 3 {
		err := s.p.ballots.Save(ctx, b)
		if err == nil {
			return b, true, nil
		}
		if !errors.Is(err, ErrStale) {
			return b, false, fmt.Errorf("save ballot on cell %s: %w", s.cell, err)
		}
		got, err := s.p.ballots.Load(ctx, b.TitleID, []string{b.VoterID})
		if err != nil {
			return b, false, fmt.Errorf("reread ballot on cell %s: %w", s.cell, err)
		}
		stored, ok := got[b.VoterID]
		switch {
		case ok && stored.Version >= b.Version:
			return stored, false, nil
		case ok && stored.Version == b.Version-1, !ok && b.Version == 1:
			continue // saved meanwhile at the version before: the store answered stale, try again
		default:
			return b, false, fmt.Errorf("cell %s: a ballot is at version %d, below %d, the version its committed step starts from: the cell and its ballots disagree", s.cell, stored.Version, b.Version-1)
		}
	}
	return b, false, fmt.Errorf("save ballot on cell %s at version %d: %w", s.cell, b.Version, ErrStale)
}

// newStepID is a random ID for one commit, 16 hex digits.
func newStepID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
