// Package admin runs the engineers' operations on projection versions:
// rebuild a version from the event table while live traffic goes on,
// promote it, roll back, list, verify and retire versions. They work the
// same against the local stack and a deployed stage. The rules of a
// version's life are in votes/domain/lifecycle; this package applies its
// transitions to the stored registry and does the work between them.
package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"votes/domain"
	"votes/domain/lifecycle"
	"votes/projections"
)

// Admin operates on one deployment's stores.
type Admin struct {
	d   Deployment
	now func() time.Time
	// lease is how long a rebuild holds its version without a heartbeat;
	// it heartbeats every third of it.
	lease time.Duration
}

// New operates on d.
func New(d Deployment) *Admin {
	return &Admin{d: d, now: time.Now, lease: 30 * time.Second}
}

// CheckTables fails with a clear error when a table is missing.
func (a *Admin) CheckTables(ctx context.Context) error {
	return a.d.Tables.CheckTables(ctx)
}

// EventCount is the store's estimate of the event table's size (refreshed
// about every six hours in AWS), or -1 when unknown.
func (a *Admin) EventCount(ctx context.Context) int64 {
	return a.d.Count.EventCount(ctx)
}

// RebuildOptions tune a rebuild.
type RebuildOptions struct {
	// Resume takes up the interrupted rebuild (the newest building
	// version) instead of starting a new version.
	Resume bool
	// Abandon retires every building version nobody holds (interrupted
	// rebuilds) before a new version starts; without it, a new rebuild
	// while one is building fails with a *PendingError.
	Abandon     bool
	Segments    int
	PageSize    int
	Concurrency int // cells projected at once per segment
	// Read, when set, is told of every page as soon as the scan read it,
	// before it is projected: the scan's progress.
	Read func(events int)
	// Progress, when set, is told of every page projected.
	Progress func(events int)
	// OnAbandon, when set, is told of each version Abandon retired, with
	// the number of its items deleted.
	OnAbandon func(version string, deleted int64)
	// OnStart, when set, is told which version is built and from how many
	// events already read (a resumed rebuild).
	OnStart func(version string, done int64)
}

// RebuildResult says what a rebuild did.
type RebuildResult struct {
	Version  string
	Events   int64
	Invalid  int64
	Elapsed  time.Duration
	Resumed  bool
	Segments int
}

// Rebuild creates a new version (or takes up the interrupted one with
// Resume), and folds the whole event table into it. The version joins the
// live projector's write set before the scan starts, so every event is
// either written before the scan (the scan reads it) or projected live
// into the version; both paths are idempotent. On success the version is
// ready to be promoted.
//
// The rebuild holds the version under a lease, renewed by a heartbeat; a
// heartbeat that fails (the version was retired, or another rebuild took it
// over) stops the rebuild. The final Complete is refused in the same cases,
// and when stream failures are unrepaired: then the version stays building,
// released, and the error wraps lifecycle.ErrUnrepaired.
func (a *Admin) Rebuild(ctx context.Context, o RebuildOptions) (res RebuildResult, err error) {
	if err := a.CheckTables(ctx); err != nil {
		return RebuildResult{}, err
	}
	if o.Resume && o.Abandon {
		return RebuildResult{}, errors.New("rebuild: resume or abandon the building version, not both")
	}
	if o.Abandon {
		if err := a.abandon(ctx, o.OnAbandon); err != nil {
			return RebuildResult{}, err
		}
	}
	b, err := a.claim(ctx, o.Resume, o.Segments)
	if err != nil {
		return RebuildResult{}, err
	}
	// Whatever stops the rebuild lets the version go, for a resume to
	// take it up; finishing it released it already.
	defer func() { err = a.release(ctx, b, err) }()
	res = RebuildResult{Version: b.version, Resumed: o.Resume, Segments: b.segments}
	if o.OnStart != nil {
		o.OnStart(b.version, a.eventsDone(ctx, b))
	}

	start := a.now()
	out, err := a.scan(ctx, b, o)
	res.Events, res.Invalid, res.Elapsed = out.Events, out.Invalid, a.now().Sub(start)
	if err != nil {
		return res, err
	}
	return res, a.complete(ctx, b, out.Events)
}

// build is a version a rebuild holds.
type build struct {
	version  string
	builder  string // this run, as the registry's lease names it
	segments int
}

// claim takes the version to build under a lease: a new one, or with
// resume the one an interrupted rebuild left.
func (a *Admin) claim(ctx context.Context, resume bool, segments int) (build, error) {
	b := build{builder: randomID()}
	_, err := a.d.Registry.Update(ctx, func(r *lifecycle.Registry) error {
		var err error
		if resume {
			b.version, err = r.Resume(b.builder, a.now(), a.lease)
		} else if pending := a.pending(*r, b.builder); len(pending) > 0 {
			return &PendingError{Versions: pending, Now: a.now()}
		} else {
			b.version, err = r.StartRebuild(b.builder, a.now(), a.lease, segments)
		}
		if err != nil {
			return err
		}
		b.segments = r.Versions[b.version].Segments
		return nil
	})
	return b, err
}

// ErrPending is wrapped by a *PendingError.
var ErrPending = errors.New("a version is still building")

// PendingError refuses a new rebuild while other versions are building:
// starting one would leave them behind, written live for nothing, until
// someone retires them.
type PendingError struct {
	Versions []lifecycle.Version // building, in name order
	Now      time.Time           // when they were found so: a lease after it is live
}

func (e *PendingError) Error() string {
	var b strings.Builder
	for i, v := range e.Versions {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("version " + v.Name)
		if v.Builder != "" && v.BuilderLease.After(e.Now) {
			b.WriteString(" (being rebuilt, its lease runs until " + v.BuilderLease.UTC().Format(time.RFC3339) + ")")
		}
	}
	return fmt.Sprintf("%s: %v", b.String(), ErrPending)
}

func (e *PendingError) Unwrap() error { return ErrPending }

// pending lists the building versions, but for one builder holds (its
// own start, applied again) when builder is not empty.
func (a *Admin) pending(r lifecycle.Registry, builder string) []lifecycle.Version {
	var out []lifecycle.Version
	for _, v := range r.Sorted() {
		if v.State == lifecycle.Building && (builder == "" || v.Builder != builder) {
			out = append(out, v)
		}
	}
	return out
}

// abandon retires every building version, telling onAbandon of each. A
// version whose rebuild still holds it under a live lease is refused
// (lifecycle.ErrBeingRebuilt): it is not interrupted.
func (a *Admin) abandon(ctx context.Context, onAbandon func(string, int64)) error {
	reg, err := a.d.Registry.Load(ctx, true)
	if err != nil {
		return err
	}
	for _, v := range a.pending(reg, "") {
		n, err := a.Retire(ctx, v.Name, nil)
		if err != nil {
			return &AbandonError{Version: v.Name, Err: err}
		}
		if onAbandon != nil {
			onAbandon(v.Name, n)
		}
	}
	return nil
}

// AbandonError says that abandoning a version failed: it may be left
// retiring, its items partly deleted, for votes retire to finish.
type AbandonError struct {
	Version string
	Err     error
}

func (e *AbandonError) Error() string { return fmt.Sprintf("abandon version %s: %v", e.Version, e.Err) }
func (e *AbandonError) Unwrap() error { return e.Err }

// eventsDone sums the events the checkpoints of b's segments say earlier
// runs read: 0 for a new version, or when they cannot be read (it is only
// told to OnStart).
func (a *Admin) eventsDone(ctx context.Context, b build) int64 {
	done := int64(0)
	if loaded, err := a.d.Checkpoints.Load(ctx, b.version, b.segments); err == nil {
		for _, cp := range loaded {
			done += cp.Events
		}
	}
	return done
}

// scan folds the event table into b's version while a heartbeat holds it.
// When the heartbeat fails, the scan stops with the heartbeat's error.
func (a *Admin) scan(ctx context.Context, b build, o RebuildOptions) (projections.RebuildResult, error) {
	held, stop := a.hold(ctx, b)
	out, err := a.rebuilder(b, o).Run(held, b.version)
	stop()
	if err != nil {
		if cause := context.Cause(held); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause // the heartbeat failed
		}
	}
	return out, err
}

// hold renews b's lease every third of it until stop is called. A renewal
// that fails cancels the returned context with its error.
func (a *Admin) hold(ctx context.Context, b build) (held context.Context, stop func()) {
	held, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-held.Done():
				return
			case <-time.After(a.lease / 3):
			}
			if _, err := a.d.Registry.Update(held, func(r *lifecycle.Registry) error {
				return r.Heartbeat(b.version, b.builder, a.now(), a.lease)
			}); err != nil && held.Err() == nil {
				cancel(err)
				return
			}
		}
	})
	return held, func() { cancel(nil); wg.Wait() }
}

// rebuilder is the rebuild of b's version, tuned by o. Its projector
// writes cells beside the live projector and any earlier, interrupted run
// of the rebuild, as one more writer: no writer waits for another.
func (a *Admin) rebuilder(b build, o RebuildOptions) *projections.Rebuild {
	return &projections.Rebuild{
		Scanner:     readCounter{a.d.Events.Scanner(o.PageSize), o.Read},
		Checkpoints: a.d.Checkpoints,
		Projector: projections.NewIndexedProjector(a.d.Versions.Ballots(b.version), a.d.Versions.Cells(b.version),
			a.d.Versions.Titles(b.version), a.d.Versions.Cells(b.version), max(o.Concurrency, 1)),
		Segments: b.segments,
		Progress: o.Progress,
		Retries:  20,
	}
}

// readCounter tells read of each page's events (valid or not) as soon as
// the scan has read them.
type readCounter struct {
	projections.Scanner
	read func(events int)
}

func (c readCounter) Page(ctx context.Context, segment, total int, after projections.Cursor) ([]domain.VoteCast, int, projections.Cursor, error) {
	events, invalid, next, err := c.Scanner.Page(ctx, segment, total, after)
	if err == nil && c.read != nil {
		c.read(len(events) + invalid)
	}
	return events, invalid, next, err
}

// complete marks b's version ready, having read events, unless stream
// failures wait for repair.
func (a *Admin) complete(ctx context.Context, b build, events int64) error {
	unrepaired := 0
	if a.d.Unrepaired != nil {
		var err error
		if unrepaired, err = a.d.Unrepaired.Unrepaired(ctx); err != nil {
			return fmt.Errorf("version %s: count unrepaired stream failures: %w", b.version, err)
		}
	}
	// The scan is done: an interrupt now would waste it.
	_, err := a.d.Registry.Update(context.WithoutCancel(ctx), func(r *lifecycle.Registry) error {
		return r.Complete(b.version, b.builder, a.now(), events, unrepaired)
	})
	if errors.Is(err, lifecycle.ErrUnrepaired) {
		return fmt.Errorf("%w; version %s stays building: run votes repair, then votes rebuild --resume", err, b.version)
	}
	return err
}

// release lets b's version go after the rebuild stopped with err, so that
// a resume can take it up, and returns err with what the release adds.
// A rebuild that lost its version has nothing to release.
func (a *Admin) release(ctx context.Context, b build, err error) error {
	if err == nil {
		return nil
	}
	// Released even when ctx ended: an interrupt is what a resume follows.
	_, relErr := a.d.Registry.Update(context.WithoutCancel(ctx), func(r *lifecycle.Registry) error {
		return r.Release(b.version, b.builder)
	})
	if errors.Is(err, lifecycle.ErrLeaseLost) {
		return fenced(b.version, err)
	}
	return errors.Join(err, relErr)
}

// fenced words an error that says the rebuild lost its version.
func fenced(version string, err error) error {
	if errors.Is(err, lifecycle.ErrLeaseLost) {
		return fmt.Errorf("rebuild of version %s stopped, the version was not marked ready: %w", version, err)
	}
	return err
}

// Promote makes version the one queries read. It must be ready (a finished
// rebuild) or superseded. The version that was active becomes superseded:
// still written live, its items kept, so that Rollback can bring it back
// until it is retired.
func (a *Admin) Promote(ctx context.Context, version string) (previous string, err error) {
	_, err = a.d.Registry.Update(ctx, func(r *lifecycle.Registry) error {
		p, err := r.Promote(version, a.now())
		if p != "" || err != nil {
			// Reapplied after its write was applied, the promotion
			// finds the version active and returns "": keep the first.
			previous = p
		}
		return err
	})
	return previous, err
}

// Rollback promotes back the most recently superseded version, and returns
// it and the version it replaced.
func (a *Admin) Rollback(ctx context.Context) (to, from string, err error) {
	_, err = a.d.Registry.Update(ctx, func(r *lifecycle.Registry) error {
		// A rollback applied twice goes back and forth: when the store
		// reapplies this change because it could not tell whether its
		// write was applied, the target being active means it was.
		if to != "" && r.Active == to {
			return nil
		}
		to, from, err = r.Rollback(a.now())
		return err
	})
	return to, from, err
}

// VersionInfo is a version with what its cells count.
type VersionInfo struct {
	lifecycle.Version
	Cells int   // tally cells stored
	Votes int64 // current votes counted, all titles and aspects
}

// Versions lists the versions with their counts, from a scan of the
// tallies table (small: one item per title and shard and version).
func (a *Admin) Versions(ctx context.Context) ([]VersionInfo, string, error) {
	reg, err := a.d.Registry.Load(ctx, true)
	if err != nil {
		return nil, "", err
	}
	stats, err := a.d.Items.Stats(ctx)
	if err != nil {
		return nil, "", err
	}
	var out []VersionInfo
	for _, v := range reg.Sorted() {
		out = append(out, VersionInfo{Version: v, Cells: stats[v.Name].Cells, Votes: stats[v.Name].Votes})
	}
	return out, reg.Active, nil
}

// Retire deletes a version's ballots, cells, checkpoints and tally
// summaries. The active version cannot be retired. It first marks the
// version retiring, which stops the live projector writing it from its
// next batch and fences a rebuild of it: the rebuild stops at its next
// heartbeat and can never mark it ready. Then it deletes the items and
// marks the version retired. Writes already under way when it was marked
// (a live batch, a rebuild page) can land after the deletion passed;
// retiring it again deletes them.
func (a *Admin) Retire(ctx context.Context, version string, progress func(deleted int)) (int64, error) {
	_, err := a.d.Registry.Update(ctx, func(r *lifecycle.Registry) error {
		return r.Retire(version, a.now())
	})
	if err != nil {
		return 0, err
	}
	deleted, err := a.d.Items.Delete(ctx, version, progress)
	if err != nil {
		return deleted, err
	}
	_, err = a.d.Registry.Update(ctx, func(r *lifecycle.Registry) error {
		return r.Deleted(version, a.now())
	})
	return deleted, err
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
