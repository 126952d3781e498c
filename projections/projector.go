package projections

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"votes/domain"
	"votes/internal/backoff"
)

// ErrStale means a stored ballot has moved on since it was loaded: another
// writer touched it. The step fails and is retried.
var ErrStale = errors.New("ballot changed since it was read")

// ErrBusy means another writer's step is in flight on a cell and did not end
// within the wait allowed. The events are retried later.
var ErrBusy = errors.New("cell is busy with another writer's step")

// StepOrderError is Cells.Begin's answer when the cell has already finished
// a step whose ID is not below the one begun: that step was begun and
// finished before (a Begin landing late: an SDK retry, or an invocation
// frozen and thawed), or the writer's clock is behind. Nothing was recorded.
type StepOrderError struct {
	Cell domain.Cell
	Last string // the ID of the last step the cell finished
}

func (e *StepOrderError) Error() string {
	return fmt.Sprintf("cell %s has finished step %s, not older than the one begun", e.Cell, e.Last)
}

// Ballots stores ballots, one per voter and title.
type Ballots interface {
	// Load returns the stored ballots of voterIDs on titleID, strongly
	// consistent; a voter with no ballot is absent from the map.
	Load(ctx context.Context, titleID string, voterIDs []string) (map[string]Ballot, error)
	// Save writes b if the stored ballot is at b.Version-1 (none stored when
	// b.Version is 1) and does not fence off b.Step. Saving a ballot that
	// is already stored exactly as it is (Ballot.Same: a retried call the
	// store had applied) succeeds; otherwise a ballot that moved on, or is
	// fenced, gives ErrStale.
	Save(ctx context.Context, b Ballot) error
	// Create stores ballots at version 1 that must not exist yet, in as few
	// calls as it can, and returns the indexes of those that existed already
	// (for which it stored nothing). Every other one is stored.
	Create(ctx context.Context, bs []Ballot) (existing []int, err error)
}

// Cells stores tally cells: counts, and at most one projection step in
// flight per cell, which works as the cell's lock and write-ahead record.
// A cell also remembers the ID of the last step it finished; step IDs on a
// cell only ever increase, so a finished step can never be begun again.
type Cells interface {
	// Begin records step as in flight on cell. If another step is in flight
	// it records nothing and returns that step. Beginning the step that is
	// already in flight returns nil. If the cell's last finished step has an
	// ID not below step.ID it records nothing and returns a
	// *StepOrderError.
	Begin(ctx context.Context, cell domain.Cell, step Step) (*Step, error)
	// Commit adds delta to the cell's counts, clears step stepID and records
	// it as the cell's last finished step, in one atomic write. If stepID is
	// not in flight (it was committed already) it changes nothing and
	// returns nil.
	Commit(ctx context.Context, cell domain.Cell, stepID string, delta Counts) error
}

// Step is one projection step on one cell: its ID, with which the ballots
// it writes are stamped, the voters whose ballots it may write, who runs it,
// and when others may take it over (Unix milliseconds).
type Step struct {
	ID      string
	Voters  []string
	Owner   string
	Expires int64
}

// sealSuffix marks a ballot that a recovery fenced off from a step's
// owner: it still belongs to the step, but the owner can no longer save it.
const sealSuffix = "~sealed"

func belongsTo(b Ballot, stepID string) bool {
	return b.Step == stepID || b.Step == stepID+sealSuffix
}

// Options tune a Projector for who runs it.
type Options struct {
	// Concurrency bounds the cells projected at once (at least 1).
	Concurrency int
	// Owner names the writer in its steps, "stream" or "rebuild".
	Owner string
	// TakeOverOwn takes over an in-flight step of the same Owner at once
	// instead of waiting for its lease. For the stream consumer such a step
	// is nearly always an earlier attempt at the same batch that died (a
	// crashed or timed-out invocation); when it is in fact alive (two
	// invocations overlapping on a cell) the takeover fences it like any
	// other, so this is a matter of speed, never of correctness.
	TakeOverOwn bool
	// Dead, when set, recognises owners known to be gone (an earlier,
	// interrupted run of a rebuild): their steps are taken over at once,
	// sealed, without waiting for the lease.
	Dead func(owner string) bool
	// Lease is how long a step may stay in flight before another writer may
	// take it over. It must exceed the longest a step can run.
	Lease time.Duration
	// MaxWait is how long to wait for another writer's step to end before
	// giving up on a cell with ErrBusy.
	MaxWait time.Duration
	// Bulk creates the ballots of a step optimistically, many per call,
	// reading only those that already exist (rebuilds into a new version).
	Bulk bool
	// Clock tells the time for leases and waits; nil is the system clock.
	Clock Clock
}

// Clock is the time as a projector sees it. Exactness never depends on it:
// it decides only when a step's lease has run out and how long to wait.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, whichever comes first, and
	// returns ctx's error if it ended.
	Sleep(ctx context.Context, d time.Duration) error
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error { return backoff.Sleep(ctx, d) }

// StreamOptions are the live projector's: steps shorter than the Lambda
// timeout, and an earlier attempt's step taken over at once.
func StreamOptions(concurrency int) Options {
	return Options{Concurrency: concurrency, Owner: "stream", TakeOverOwn: true, Lease: 2 * time.Minute, MaxWait: 10 * time.Second}
}

// Projector folds batches of events into ballots and cells, exactly once,
// for any number of writers working on a cell at the same time.
//
// Each cell is updated by one step at a time: Begin records the step and the
// voters it may touch; the ballots that change are saved stamped with the
// step's ID and what they held before; Commit adds the counts and clears the
// step in one write. A writer that finds another's step in flight either
// waits for it or takes it over: it seals each of the step's ballots (a
// version bump and a fence naming the step, kept with the ballot from then
// on), counts those the step had saved (their Prev says what they changed),
// and commits the step for it. The step's owner may still be running (a
// paused or overlapping invocation, a lease that ran out, a clock that
// disagrees): every save it makes after the seal fails instead of going
// uncounted, its commit changes nothing, and its events are retried. Step
// IDs on a cell only increase and a cell refuses a step not newer than the
// last it finished, so a Begin that lands late cannot bring a finished step
// back. Leases and clocks only decide when to wait and when to take over;
// exactness rests on conditional writes alone.
//
// The ballot fold is idempotent, so redelivered events change nothing, and a
// ballot is written only when an event changes it. A title's events are
// stored under its cells' partition keys, so one invocation at a time per
// cell is the usual case and a takeover the exception; nothing depends on
// it. DynamoDB Streams orders records per item only, may hand sibling shards
// of one partition key to concurrent invocations, and delivers at least once.
type Projector struct {
	ballots   Ballots
	cells     Cells
	opts      Options
	newStepID func(after string) string
	now       func() time.Time
}

// NewProjector builds the live (stream) projector.
func NewProjector(ballots Ballots, cells Cells, concurrency int) *Projector {
	return NewProjectorWith(ballots, cells, StreamOptions(concurrency))
}

// NewProjectorWith builds a projector with opts.
func NewProjectorWith(ballots Ballots, cells Cells, opts Options) *Projector {
	opts.Concurrency = max(opts.Concurrency, 1)
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	p := &Projector{ballots: ballots, cells: cells, opts: opts, now: opts.Clock.Now}
	p.newStepID = func(after string) string { return nextStepID(p.now(), after) }
	return p
}

// Report says what one Project call did.
type Report struct {
	Cells     int
	Ballots   int // ballots written
	Recovered int // steps of earlier, failed attempts that were completed
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
	var (
		mu  sync.Mutex
		rep = Report{Cells: len(byCell), Failed: map[domain.Cell]error{}}
		wg  sync.WaitGroup
		sem = make(chan struct{}, p.opts.Concurrency)
	)
	for cell, evs := range byCell {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			written, recovered, err := p.projectCell(ctx, cell, evs)
			mu.Lock()
			defer mu.Unlock()
			rep.Ballots += written
			rep.Recovered += recovered
			if err != nil {
				rep.Failed[cell] = err
			}
		}()
	}
	wg.Wait()
	return rep
}

// begin makes step the cell's step in flight, taking over steps of other
// writers that look dead and waiting out those that look alive. It may give
// the step a newer ID, which it returns.
func (p *Projector) begin(ctx context.Context, cell domain.Cell, step Step) (_ Step, recovered int, err error) {
	deadline := p.now().Add(p.opts.MaxWait)
	for wait := time.Millisecond; ; {
		step.Expires = p.now().Add(p.opts.Lease).UnixMilli()
		inflight, err := p.cells.Begin(ctx, cell, step)
		var order *StepOrderError
		if errors.As(err, &order) {
			step.ID = p.newStepID(order.Last)
			continue
		}
		if err != nil {
			return step, recovered, fmt.Errorf("begin step on cell %s: %w", cell, err)
		}
		if inflight == nil {
			return step, recovered, nil
		}
		switch {
		case p.opts.TakeOverOwn && inflight.Owner == p.opts.Owner,
			p.now().UnixMilli() > inflight.Expires,
			p.opts.Dead != nil && p.opts.Dead(inflight.Owner):
			err = p.recover(ctx, cell, *inflight)
		case p.now().After(deadline):
			return step, recovered, fmt.Errorf("cell %s: step of %s in flight: %w", cell, inflight.Owner, ErrBusy)
		default:
			if err := p.opts.Clock.Sleep(ctx, wait); err != nil {
				return step, recovered, err
			}
			wait = min(2*wait, 50*time.Millisecond)
			continue
		}
		if err != nil {
			return step, recovered, err
		}
		recovered++
		if inflight.ID >= step.ID {
			// The step taken over was newer than ours: ours must follow it.
			step.ID = p.newStepID(inflight.ID)
		}
	}
}

// projectCell runs one step on a cell: it begins the step (taking over or
// waiting out another writer's), writes the ballots the events change, and
// commits the step with what they add to the tally.
func (p *Projector) projectCell(ctx context.Context, cell domain.Cell, events []domain.VoteCast) (written, recovered int, err error) {
	byVoter, voters := groupByVoter(events)
	step := Step{ID: p.newStepID(""), Voters: voters, Owner: p.opts.Owner}
	if step, recovered, err = p.begin(ctx, cell, step); err != nil {
		return 0, recovered, err
	}
	delta := Counts{}
	toLoad := voters
	if p.opts.Bulk {
		if toLoad, written, err = p.createFresh(ctx, cell, step.ID, voters, byVoter, delta); err != nil {
			return written, recovered, err
		}
	}
	saved, err := p.foldStored(ctx, cell, step.ID, toLoad, byVoter, delta)
	written += saved
	if err != nil {
		return written, recovered, err
	}
	if err := p.cells.Commit(ctx, cell, step.ID, delta); err != nil {
		return written, recovered, fmt.Errorf("commit step on cell %s: %w", cell, err)
	}
	return written, recovered, nil
}

// groupByVoter returns events by voter, and the voters in order.
func groupByVoter(events []domain.VoteCast) (map[string][]domain.VoteCast, []string) {
	byVoter := map[string][]domain.VoteCast{}
	for _, e := range events {
		byVoter[e.VoterID] = append(byVoter[e.VoterID], e)
	}
	voters := slices.Sorted(maps.Keys(byVoter))
	return byVoter, voters
}

// createFresh is the bulk path (Options.Bulk): most ballots of a new
// version do not exist yet, so it creates them from the events alone, as
// version 1 written by stepID with every aspect new, without reading them.
// It adds those it created to delta and returns them as created; the
// voters whose ballots turned out to exist it returns in toLoad, to be
// read and folded as in the ordinary path.
func (p *Projector) createFresh(ctx context.Context, cell domain.Cell, stepID string, voters []string, byVoter map[string][]domain.VoteCast, delta Counts) (toLoad []string, created int, err error) {
	fresh := make([]Ballot, len(voters))
	for i, voter := range voters {
		b := NewBallot(voter, cell.TitleID)
		for _, e := range byVoter[voter] {
			b.Apply(e)
		}
		b.Version, b.Step, b.Prev = 1, stepID, map[string]string{}
		for aspect := range b.Aspects {
			b.Prev[aspect] = ""
		}
		fresh[i] = b
	}
	existing, err := p.ballots.Create(ctx, fresh)
	if err != nil {
		return nil, 0, fmt.Errorf("create ballots on cell %s: %w", cell, err)
	}
	toLoad = make([]string, 0, len(existing))
	isExisting := make(map[int]bool, len(existing))
	for _, i := range existing {
		isExisting[i] = true
		toLoad = append(toLoad, voters[i])
	}
	for i, b := range fresh {
		if !isExisting[i] {
			created++
			delta.Merge(b.stepDelta())
		}
	}
	return toLoad, created, nil
}

// foldStored reads the stored ballots of voters, folds each voter's events
// into them, and saves those that change, stamped with stepID. It adds what
// each saved ballot changes to delta and returns how many it saved. It
// stops with ErrStale if another writer took the step over.
func (p *Projector) foldStored(ctx context.Context, cell domain.Cell, stepID string, voters []string, byVoter map[string][]domain.VoteCast, delta Counts) (saved int, err error) {
	if len(voters) == 0 {
		return 0, nil
	}
	stored, err := p.ballots.Load(ctx, cell.TitleID, voters)
	if err != nil {
		return 0, fmt.Errorf("load ballots of cell %s: %w", cell, err)
	}
	for _, voter := range voters {
		b, ok := stored[voter]
		if !ok {
			b = NewBallot(voter, cell.TitleID)
		}
		if slices.Contains(b.Fences, stepID) {
			// Another writer took this step over: it counts what the
			// step saved and commits it. Committing here instead could
			// leave out a ballot it counted.
			return saved, fmt.Errorf("cell %s: step %s was taken over: %w", cell, stepID, ErrStale)
		}
		if b.Step == stepID {
			// Saved by an earlier try of this very step (a create whose
			// answer was lost): count it as saved.
			saved++
			delta.Merge(b.stepDelta())
			continue
		}
		if !p.fold(&b, byVoter[voter], stepID) {
			continue
		}
		if err := p.ballots.Save(ctx, b); err != nil {
			return saved, fmt.Errorf("save ballot on cell %s: %w", cell, err)
		}
		saved++
		delta.Merge(b.stepDelta())
	}
	return saved, nil
}

// fold applies events to b and, if it changed, stamps it as the next
// version written by stepID with what it held before.
func (p *Projector) fold(b *Ballot, events []domain.VoteCast, stepID string) bool {
	before := b.choices()
	changed := false
	for _, e := range events {
		changed = b.Apply(e) || changed
	}
	if !changed {
		return false
	}
	b.Prev = map[string]string{}
	for aspect, cur := range b.Aspects {
		if before[aspect] != cur.Choice {
			b.Prev[aspect] = before[aspect]
		}
	}
	if len(b.Prev) == 0 {
		// A newer vote with the same choice: store it so that ordering
		// stays right, but the tally does not move.
		b.Prev = nil
	}
	b.Step = stepID
	b.Version++
	return true
}

// recover completes a step that another writer (or an earlier attempt of
// this one) began and did not commit: every ballot it saved carries its ID
// and says what it changed. Its owner may still be running, so each ballot
// is fenced off from it before it is counted.
func (p *Projector) recover(ctx context.Context, cell domain.Cell, step Step) error {
	delta := Counts{}
	for _, voter := range step.Voters {
		d, err := p.seal(ctx, cell, step.ID, voter)
		if err != nil {
			return err
		}
		delta.Merge(d)
	}
	if err := p.cells.Commit(ctx, cell, step.ID, delta); err != nil {
		return fmt.Errorf("recover step %s on cell %s: commit: %w", step.ID, cell, err)
	}
	return nil
}

// seal bumps a voter's ballot (creating an empty one if there is none) so
// that the owner of stepID can no longer save it, and returns what the
// ballot's part in the step adds to the tally.
func (p *Projector) seal(ctx context.Context, cell domain.Cell, stepID, voter string) (Counts, error) {
	for {
		stored, err := p.ballots.Load(ctx, cell.TitleID, []string{voter})
		if err != nil {
			return nil, fmt.Errorf("seal step %s on cell %s: %w", stepID, cell, err)
		}
		b, ok := stored[voter]
		if !ok {
			b = NewBallot(voter, cell.TitleID)
		}
		sealed := b
		sealed.Version++
		if !slices.Contains(sealed.Fences, stepID) {
			sealed.Fences = append(slices.Clone(sealed.Fences), stepID)
		}
		var d Counts
		if belongsTo(b, stepID) {
			d = b.stepDelta()
			sealed.Step = stepID + sealSuffix
		}
		err = p.ballots.Save(ctx, sealed)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, ErrStale) {
			return nil, fmt.Errorf("seal step %s on cell %s: %w", stepID, cell, err)
		}
		// The owner saved it meanwhile: read it again.
	}
}

// nextStepID makes a step ID that sorts after after (an ID, or empty): 16
// hex digits of a counter that is the clock's nanoseconds, or one more than
// after's when the clock is behind, then 8 random hex digits so that
// writers on other hosts do not collide. IDs compare as strings.
func nextStepID(now time.Time, after string) string {
	n := uint64(now.UnixNano())
	if len(after) >= 16 {
		if last, err := strconv.ParseUint(after[:16], 16, 64); err == nil && last >= n {
			n = last + 1
		}
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%016x%s", n, hex.EncodeToString(b[:]))
}
