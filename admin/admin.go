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
	Resume      bool
	Segments    int
	PageSize    int
	Concurrency int // cells projected at once per segment
	// Progress, when set, is told of every page projected.
	Progress func(events int)
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
func (a *Admin) Rebuild(ctx context.Context, o RebuildOptions) (RebuildResult, error) {
	if err := a.CheckTables(ctx); err != nil {
		return RebuildResult{}, err
	}
	me := randomID()
	var version string
	var segments int
	_, err := a.d.Registry.Update(ctx, func(r *lifecycle.Registry) error {
		var err error
		if o.Resume {
			version, err = r.Resume(me, a.now(), a.lease)
		} else {
			version, err = r.StartRebuild(me, a.now(), a.lease, o.Segments)
		}
		if err != nil {
			return err
		}
		segments = r.Versions[version].Segments
		return nil
	})
	if err != nil {
		return RebuildResult{}, err
	}
	res := RebuildResult{Version: version, Resumed: o.Resume, Segments: segments}

	// Hold the version while working; losing it stops the rebuild.
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(a.lease / 3):
			}
			if _, err := a.d.Registry.Update(ctx, func(r *lifecycle.Registry) error {
				return r.Heartbeat(version, me, a.now(), a.lease)
			}); err != nil && ctx.Err() == nil {
				cancel(err)
				return
			}
		}
	}()
	update := func(change func(*lifecycle.Registry) error) error {
		_, err := a.d.Registry.Update(context.WithoutCancel(parent), change)
		return err
	}
	release := func() error {
		return update(func(r *lifecycle.Registry) error { return r.Release(version, me) })
	}

	cps := a.d.Checkpoints
	if o.OnStart != nil {
		done := int64(0)
		if loaded, err := cps.Load(ctx, version, segments); err == nil {
			for _, cp := range loaded {
				done += cp.Events
			}
		}
		o.OnStart(version, done)
	}
	start := a.now()
	// Steps of earlier runs of this rebuild are dead: the registry lease
	// lets one run at a time build a version. Steps of this run's other
	// segments are alive and waited for.
	owner := "rebuild:" + version + ":" + me
	dead := func(o string) bool { return strings.HasPrefix(o, "rebuild:"+version+":") && o != owner }
	rb := &projections.Rebuild{
		Scanner:     a.d.Events.Scanner(o.PageSize),
		Checkpoints: cps,
		Projector: projections.NewProjectorWith(
			a.d.Versions.Ballots(version),
			a.d.Versions.Cells(version),
			projections.Options{Concurrency: max(o.Concurrency, 1), Owner: owner, Dead: dead, Lease: 15 * time.Second, MaxWait: 30 * time.Second, Bulk: true}),
		Segments: segments,
		Progress: o.Progress,
		Retries:  20,
	}
	out, runErr := rb.Run(ctx, version)
	cancel(nil)
	hb.Wait()
	res.Events, res.Invalid, res.Elapsed = out.Events, out.Invalid, a.now().Sub(start)
	if runErr != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			runErr = cause // the heartbeat failed
		}
		if err := release(); err != nil && !errors.Is(runErr, lifecycle.ErrLeaseLost) {
			runErr = errors.Join(runErr, err)
		}
		return res, fenced(version, runErr)
	}

	unrepaired := 0
	if a.d.Unrepaired != nil {
		if unrepaired, err = a.d.Unrepaired.Unrepaired(parent); err != nil {
			return res, errors.Join(fmt.Errorf("version %s: count unrepaired stream failures: %w", version, err), release())
		}
	}
	err = update(func(r *lifecycle.Registry) error {
		return r.Complete(version, me, a.now(), out.Events, unrepaired)
	})
	if errors.Is(err, lifecycle.ErrUnrepaired) {
		return res, errors.Join(
			fmt.Errorf("%w; version %s stays building: run votes repair, then votes rebuild --resume", err, version),
			release())
	}
	return res, fenced(version, err)
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
