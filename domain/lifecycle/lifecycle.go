// Package lifecycle is the life of a projection version, as a pure state
// machine: a rebuild fills a new version, it becomes ready, it is promoted
// for queries to read, the version it replaces is superseded (still written,
// so it can come back), and a version no longer wanted is retired and its
// items deleted.
//
//	building ──Complete──> ready ──Promote──> active ──(another promoted)──> superseded
//	                                            ^                                │
//	                                            └────────Promote / Rollback──────┘
//	any version but the active one ──Retire──> retiring ──Deleted──> retired
//
// Every transition is a method on *Registry that either applies entirely or
// returns an error and changes nothing. Time is a parameter: nothing here
// reads a clock. Correctness never depends on clocks agreeing: a builder is
// fenced by the registry's state and its builder field, which every
// transition reads and writes in one conditional update of the stored
// registry; leases only decide when a silent builder may be taken over.
//
// The store applies a transition with optimistic concurrency and reapplies
// it when its write may have been applied without the answer arriving, so
// the transitions recognise their own earlier success: applied twice, they
// end where applied once. Rollback is the exception (twice goes back and
// forth); its caller checks whether its target is already active.
//
// The package uses the standard library only.
package lifecycle

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// State is where a version is in its life. The strings are what the
// registry stores.
type State string

// The states of a version. Written says which ones the live projector
// writes.
const (
	// Building: a rebuild fills it from the event table, and the live
	// projector writes it too. Its builder holds it under a lease.
	Building State = "building"
	// Ready: complete, written live, can be promoted.
	Ready State = "ready"
	// Active: the one version queries read. Written live.
	Active State = "active"
	// Superseded: was active until another version was promoted. Its items
	// are kept and still written live, so it can be promoted back.
	Superseded State = "superseded"
	// Retiring: its items are being deleted; no longer written.
	Retiring State = "retiring"
	// Retired: its items were deleted. Nothing can bring it back.
	Retired State = "retired"
)

// Written reports whether the live projector writes versions in state s.
func (s State) Written() bool {
	switch s {
	case Building, Ready, Active, Superseded:
		return true
	}
	return false
}

// Errors callers branch on.
var (
	ErrNoSuchVersion     = errors.New("no such projection version")
	ErrNotReady          = errors.New("version is not ready")
	ErrBeingRebuilt      = errors.New("version is being rebuilt by another process")
	ErrActive            = errors.New("version is active")
	ErrLeaseLost         = errors.New("rebuild no longer holds the version")
	ErrUnrepaired        = errors.New("stream failures not yet repaired")
	ErrNothingToResume   = errors.New("no interrupted rebuild to resume")
	ErrNothingToRollBack = errors.New("no superseded version to roll back to")
	ErrNotRetiring       = errors.New("version is not being retired")
	ErrRetired           = errors.New("version is retired and its items deleted")
)

// Version is one projection version.
type Version struct {
	Name  string
	State State
	// Created is when a rebuild started it; zero for the first version.
	Created time.Time
	// Completed is when its rebuild finished (Ready).
	Completed time.Time
	// Promoted is when it last became active.
	Promoted time.Time
	// Superseded is when another version last replaced it, and
	// SupersededSeq the registry's Promotions count then: Rollback orders
	// supersessions by the count, which does not depend on clocks.
	Superseded    time.Time
	SupersededSeq int64
	// Deleted is when its items were deleted (Retired).
	Deleted time.Time
	// Events is how many events its rebuild read from the event table.
	Events   int64
	Segments int
	// Builder holds a Building version while a rebuild runs, until
	// BuilderLease; empty when nobody holds it.
	Builder      string
	BuilderLease time.Time
	// BuiltBy is the builder that completed it, so that a retried
	// Complete recognises its own success.
	BuiltBy string
}

// Written reports whether the live projector writes the version.
func (v Version) Written() bool { return v.State.Written() }

// Registry lists the projection versions and which one queries read.
type Registry struct {
	Active   string
	Versions map[string]Version
	// Promotions counts promotions, rollbacks included.
	Promotions int64
	// Rev is the stored revision, kept by the store for its conditional
	// writes; transitions leave it alone.
	Rev int64
}

// Initial is the registry before any rebuild: version 1, active. An empty
// store means this.
func Initial() Registry {
	return Registry{Active: "1", Versions: map[string]Version{"1": {Name: "1", State: Active}}}
}

// Clone is a copy whose transitions leave r unchanged.
func (r Registry) Clone() Registry {
	r.Versions = maps.Clone(r.Versions)
	return r
}

// WriteSet is the versions the live projector writes, in name order.
func (r Registry) WriteSet() []string {
	var out []string
	for _, v := range r.Sorted() {
		if v.Written() {
			out = append(out, v.Name)
		}
	}
	return out
}

// Sorted lists the versions in numeric order.
func (r Registry) Sorted() []Version {
	names := slices.Collect(maps.Keys(r.Versions))
	slices.SortFunc(names, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return cmp.Or(cmp.Compare(x, y), cmp.Compare(a, b))
	})
	out := make([]Version, len(names))
	for i, n := range names {
		out[i] = r.Versions[n]
		out[i].Name = n
	}
	return out
}

// Next is the name of the next version.
func (r Registry) Next() string {
	n := 0
	for name := range r.Versions {
		if x, err := strconv.Atoi(name); err == nil && x > n {
			n = x
		}
	}
	return strconv.Itoa(n + 1)
}

// Get returns the named version.
func (r Registry) Get(name string) (Version, error) {
	v, ok := r.Versions[name]
	if !ok {
		return Version{}, fmt.Errorf("version %s: %w", name, ErrNoSuchVersion)
	}
	v.Name = name
	return v, nil
}

func (r *Registry) put(v Version) {
	if r.Versions == nil {
		r.Versions = map[string]Version{}
	}
	r.Versions[v.Name] = v
}

// StartRebuild adds a new Building version held by builder until
// now+lease, and returns its name. The version is written live from the
// moment the store holds it. A Building version builder already holds is
// returned as it is: the same start, retried.
func (r *Registry) StartRebuild(builder string, now time.Time, lease time.Duration, segments int) (string, error) {
	if builder == "" {
		return "", errors.New("start rebuild: no builder named")
	}
	for _, v := range r.Sorted() {
		if v.State == Building && v.Builder == builder {
			return v.Name, nil
		}
	}
	name := r.Next()
	r.put(Version{Name: name, State: Building, Created: now, Segments: max(segments, 1), Builder: builder, BuilderLease: now.Add(lease)})
	return name, nil
}

// Resume gives builder the newest Building version, when nobody holds it or
// its holder's lease ran out by now, and returns its name.
func (r *Registry) Resume(builder string, now time.Time, lease time.Duration) (string, error) {
	if builder == "" {
		return "", errors.New("resume rebuild: no builder named")
	}
	var v Version
	found := false
	for _, x := range r.Sorted() {
		if x.State == Building {
			v, found = x, true
		}
	}
	if !found {
		return "", ErrNothingToResume
	}
	if v.Builder != "" && v.Builder != builder && v.BuilderLease.After(now) {
		return "", fmt.Errorf("version %s: %w (its lease runs until %s)", v.Name, ErrBeingRebuilt, v.BuilderLease.UTC().Format(time.RFC3339))
	}
	v.Builder, v.BuilderLease = builder, now.Add(lease)
	r.put(v)
	return v.Name, nil
}

// holder returns the version when builder holds it, Building; otherwise
// an error wrapping ErrLeaseLost that says what happened to it.
func (r Registry) holder(name, builder string) (Version, error) {
	v, err := r.Get(name)
	if err != nil {
		return v, err
	}
	switch {
	case v.State != Building:
		return v, fmt.Errorf("version %s is %s, no longer being built: %w", name, v.State, ErrLeaseLost)
	case v.Builder != builder:
		return v, fmt.Errorf("version %s was taken over by another rebuild: %w", name, ErrLeaseLost)
	}
	return v, nil
}

// Heartbeat extends builder's lease on version to now+lease. It fails with
// ErrLeaseLost once the version is no longer Building or another builder
// took it over: the rebuild must stop.
func (r *Registry) Heartbeat(version, builder string, now time.Time, lease time.Duration) error {
	v, err := r.holder(version, builder)
	if err != nil {
		return err
	}
	v.BuilderLease = now.Add(lease)
	r.put(v)
	return nil
}

// Complete makes version Ready after its rebuild read events events: only
// from Building, only by the builder holding it, and only when unrepaired,
// the stream failures recorded and not yet repaired, is zero (otherwise the
// version could miss the records those failures skipped). It clears the
// lease. Completing again, once done by the same builder, changes nothing.
func (r *Registry) Complete(version, builder string, now time.Time, events int64, unrepaired int) error {
	if v, err := r.Get(version); err == nil && v.Written() && v.State != Building && builder != "" && v.BuiltBy == builder {
		return nil // completed by this builder already, and not retired since
	}
	v, err := r.holder(version, builder)
	if err != nil {
		return err
	}
	if unrepaired > 0 {
		return fmt.Errorf("version %s: %d %w", version, unrepaired, ErrUnrepaired)
	}
	v.State, v.Completed, v.Events = Ready, now, events
	v.Builder, v.BuilderLease, v.BuiltBy = "", time.Time{}, builder
	r.put(v)
	return nil
}

// Release gives up builder's lease on version, leaving it Building, so that
// a resumed rebuild can take it at once (an interrupted rebuild). It fails
// with ErrLeaseLost when the version moved on or another builder holds it;
// releasing a version nobody holds changes nothing.
func (r *Registry) Release(version, builder string) error {
	v, err := r.Get(version)
	if err != nil {
		return err
	}
	if v.State == Building && v.Builder == "" {
		return nil
	}
	if v, err = r.holder(version, builder); err != nil {
		return err
	}
	v.Builder, v.BuilderLease = "", time.Time{}
	r.put(v)
	return nil
}

// Promote makes version the one queries read, and returns the version that
// was active, now Superseded: still written live, so that it can be
// promoted back. Only a Ready or Superseded version can be promoted;
// promoting the active one changes nothing and returns "".
func (r *Registry) Promote(version string, now time.Time) (previous string, err error) {
	v, err := r.Get(version)
	if err != nil {
		return "", err
	}
	if r.Active == version {
		return "", nil
	}
	if v.State != Ready && v.State != Superseded {
		return "", fmt.Errorf("version %s is %s: %w; only a finished rebuild or a superseded version can be promoted", version, v.State, ErrNotReady)
	}
	r.Promotions++
	previous = r.Active
	if old, err := r.Get(previous); err == nil {
		old.State, old.Superseded, old.SupersededSeq = Superseded, now, r.Promotions
		r.put(old)
	}
	v.State, v.Promoted = Active, now
	r.put(v)
	r.Active = version
	return previous, nil
}

// Rollback promotes back the most recently superseded version, the way back
// after a bad promotion, and returns it and the version it replaces. It
// works for as long as a superseded version is kept written, that is until
// it is retired. Applied twice it rolls back twice.
func (r *Registry) Rollback(now time.Time) (to, from string, err error) {
	var best Version
	for _, v := range r.Sorted() {
		if v.State == Superseded && (best.Name == "" || v.SupersededSeq > best.SupersededSeq) {
			best = v
		}
	}
	if best.Name == "" {
		return "", "", ErrNothingToRollBack
	}
	from, err = r.Promote(best.Name, now)
	return best.Name, from, err
}

// Retire stops writing version and marks it Retiring, before its items are
// deleted. The active version cannot be retired. Retiring clears the
// builder, which fences a rebuild still running: its Heartbeat, Complete
// and Release fail from then on, so a retired version never becomes ready.
// As a courtesy a Building version whose lease is live by now is refused
// (ErrBeingRebuilt); with a clock far enough ahead that check passes, and
// the fencing still holds.
func (r *Registry) Retire(version string, now time.Time) error {
	v, err := r.Get(version)
	if err != nil {
		return err
	}
	switch {
	case r.Active == version || v.State == Active:
		return fmt.Errorf("version %s: %w; promote another first", version, ErrActive)
	case v.State == Building && v.Builder != "" && v.BuilderLease.After(now):
		return fmt.Errorf("version %s: %w; stop it first (its lease runs until %s)", version, ErrBeingRebuilt, v.BuilderLease.UTC().Format(time.RFC3339))
	}
	v.State, v.Builder, v.BuilderLease = Retiring, "", time.Time{}
	r.put(v)
	return nil
}

// Deleted records that a Retiring version's items were deleted: it becomes
// Retired. Recording it again changes nothing.
func (r *Registry) Deleted(version string, now time.Time) error {
	v, err := r.Get(version)
	if err != nil {
		return err
	}
	switch v.State {
	case Retired:
		return nil
	case Retiring:
	default:
		return fmt.Errorf("version %s is %s: %w", version, v.State, ErrNotRetiring)
	}
	v.State, v.Deleted = Retired, now
	r.put(v)
	return nil
}
