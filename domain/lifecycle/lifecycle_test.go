package lifecycle_test

import (
	"errors"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"votes/domain/lifecycle"
)

var (
	t0    = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	lease = 30 * time.Second
)

const me = "me"

// start is a registry with version 2 in one state; version 1 is active
// unless version 2 is.
type start struct {
	name string
	v2   *lifecycle.Version // nil: no version 2
}

func (s start) registry() lifecycle.Registry {
	r := lifecycle.Initial()
	if s.v2 == nil {
		return r
	}
	v := *s.v2
	v.Name = "2"
	r.Versions["2"] = v
	if v.State == lifecycle.Active {
		r.Active = "2"
		r.Promotions = 1
		r.Versions["1"] = lifecycle.Version{Name: "1", State: lifecycle.Superseded, Superseded: t0.Add(-time.Hour), SupersededSeq: 1}
	}
	return r
}

var starts = []start{
	{"building, held by this builder", &lifecycle.Version{State: lifecycle.Building, Builder: me, BuilderLease: t0.Add(10 * time.Second)}},
	{"building, held by another builder", &lifecycle.Version{State: lifecycle.Building, Builder: "other", BuilderLease: t0.Add(10 * time.Second)}},
	{"building, lease expired", &lifecycle.Version{State: lifecycle.Building, Builder: "other", BuilderLease: t0.Add(-time.Second)}},
	{"building, released", &lifecycle.Version{State: lifecycle.Building}},
	{"ready", &lifecycle.Version{State: lifecycle.Ready, BuiltBy: "other", Events: 7}},
	{"active", &lifecycle.Version{State: lifecycle.Active, BuiltBy: "other", Events: 7}},
	{"superseded", &lifecycle.Version{State: lifecycle.Superseded, BuiltBy: "other", Events: 7, SupersededSeq: 1}},
	{"retiring", &lifecycle.Version{State: lifecycle.Retiring}},
	{"retired", &lifecycle.Version{State: lifecycle.Retired, Deleted: t0.Add(-time.Hour)}},
	{"missing", nil},
}

// The operations, all at t0, by builder "me" where a builder is named, on
// version 2 where a version is named. Each returns the version name it
// returns, if any.
var ops = []struct {
	name string
	do   func(r *lifecycle.Registry) (string, error)
}{
	{"StartRebuild", func(r *lifecycle.Registry) (string, error) { return r.StartRebuild(me, t0, lease, 4) }},
	{"Resume", func(r *lifecycle.Registry) (string, error) { return r.Resume(me, t0, lease) }},
	{"Heartbeat", func(r *lifecycle.Registry) (string, error) { return "", r.Heartbeat("2", me, t0, lease) }},
	{"Complete", func(r *lifecycle.Registry) (string, error) { return "", r.Complete("2", me, t0, 42, 0) }},
	{"Complete, 3 unrepaired", func(r *lifecycle.Registry) (string, error) { return "", r.Complete("2", me, t0, 42, 3) }},
	{"Release", func(r *lifecycle.Registry) (string, error) { return "", r.Release("2", me) }},
	{"Promote", func(r *lifecycle.Registry) (string, error) { return r.Promote("2", t0) }},
	{"Rollback", func(r *lifecycle.Registry) (string, error) { to, _, err := r.Rollback(t0); return to, err }},
	{"Retire", func(r *lifecycle.Registry) (string, error) { return "", r.Retire("2", t0) }},
	{"Deleted", func(r *lifecycle.Registry) (string, error) { return "", r.Deleted("2", t0) }},
}

// want is an operation's outcome: an error (and then nothing changed), or
// what it returned and version 2's state, builder and the active version
// afterwards. same: the registry is unchanged (a retried or idle
// transition).
type want struct {
	err     error
	ret     string
	state   lifecycle.State
	builder string
	active  string
	same    bool
}

func fails(err error) want { return want{err: err} }

var (
	B, R, A, S = lifecycle.Building, lifecycle.Ready, lifecycle.Active, lifecycle.Superseded
	Rg, Rd     = lifecycle.Retiring, lifecycle.Retired

	lost       = fails(lifecycle.ErrLeaseLost)
	notReady   = fails(lifecycle.ErrNotReady)
	noRollback = fails(lifecycle.ErrNothingToRollBack)
	noResume   = fails(lifecycle.ErrNothingToResume)
	notRetir   = fails(lifecycle.ErrNotRetiring)
	missing    = fails(lifecycle.ErrNoSuchVersion)
)

// matrix: starting state x operation -> outcome. Every cell is filled in.
var matrix = map[string]map[string]want{
	"building, held by this builder": {
		"StartRebuild":           {ret: "2", state: B, builder: me, active: "1", same: true},
		"Resume":                 {ret: "2", state: B, builder: me, active: "1"},
		"Heartbeat":              {state: B, builder: me, active: "1"},
		"Complete":               {state: R, active: "1"},
		"Complete, 3 unrepaired": fails(lifecycle.ErrUnrepaired),
		"Release":                {state: B, active: "1"},
		"Promote":                notReady,
		"Rollback":               noRollback,
		"Retire":                 fails(lifecycle.ErrBeingRebuilt),
		"Deleted":                notRetir,
	},
	"building, held by another builder": {
		"StartRebuild":           {ret: "3", state: B, builder: "other", active: "1"},
		"Resume":                 fails(lifecycle.ErrBeingRebuilt),
		"Heartbeat":              lost,
		"Complete":               lost,
		"Complete, 3 unrepaired": lost,
		"Release":                lost,
		"Promote":                notReady,
		"Rollback":               noRollback,
		"Retire":                 fails(lifecycle.ErrBeingRebuilt),
		"Deleted":                notRetir,
	},
	"building, lease expired": {
		"StartRebuild":           {ret: "3", state: B, builder: "other", active: "1"},
		"Resume":                 {ret: "2", state: B, builder: me, active: "1"},
		"Heartbeat":              lost,
		"Complete":               lost,
		"Complete, 3 unrepaired": lost,
		"Release":                lost,
		"Promote":                notReady,
		"Rollback":               noRollback,
		"Retire":                 {state: Rg, active: "1"},
		"Deleted":                notRetir,
	},
	"building, released": {
		"StartRebuild":           {ret: "3", state: B, active: "1"},
		"Resume":                 {ret: "2", state: B, builder: me, active: "1"},
		"Heartbeat":              lost,
		"Complete":               lost,
		"Complete, 3 unrepaired": lost,
		"Release":                {state: B, active: "1", same: true},
		"Promote":                notReady,
		"Rollback":               noRollback,
		"Retire":                 {state: Rg, active: "1"},
		"Deleted":                notRetir,
	},
	"ready": {
		"StartRebuild":           {ret: "3", state: R, active: "1"},
		"Resume":                 noResume,
		"Heartbeat":              lost,
		"Complete":               lost,
		"Complete, 3 unrepaired": lost,
		"Release":                lost,
		"Promote":                {ret: "1", state: A, active: "2"},
		"Rollback":               noRollback,
		"Retire":                 {state: Rg, active: "1"},
		"Deleted":                notRetir,
	},
	"active": {
		"StartRebuild":           {ret: "3", state: A, active: "2"},
		"Resume":                 noResume,
		"Heartbeat":              lost,
		"Complete":               lost,
		"Complete, 3 unrepaired": lost,
		"Release":                lost,
		"Promote":                {ret: "", state: A, active: "2", same: true},
		"Rollback":               {ret: "1", state: S, active: "1"},
		"Retire":                 fails(lifecycle.ErrActive),
		"Deleted":                notRetir,
	},
	"superseded": {
		"StartRebuild":           {ret: "3", state: S, active: "1"},
		"Resume":                 noResume,
		"Heartbeat":              lost,
		"Complete":               lost,
		"Complete, 3 unrepaired": lost,
		"Release":                lost,
		"Promote":                {ret: "1", state: A, active: "2"},
		"Rollback":               {ret: "2", state: A, active: "2"},
		"Retire":                 {state: Rg, active: "1"},
		"Deleted":                notRetir,
	},
	"retiring": {
		"StartRebuild":           {ret: "3", state: Rg, active: "1"},
		"Resume":                 noResume,
		"Heartbeat":              lost,
		"Complete":               lost,
		"Complete, 3 unrepaired": lost,
		"Release":                lost,
		"Promote":                notReady,
		"Rollback":               noRollback,
		"Retire":                 {state: Rg, active: "1", same: true},
		"Deleted":                {state: Rd, active: "1"},
	},
	"retired": {
		"StartRebuild":           {ret: "3", state: Rd, active: "1"},
		"Resume":                 noResume,
		"Heartbeat":              lost,
		"Complete":               lost,
		"Complete, 3 unrepaired": lost,
		"Release":                lost,
		"Promote":                notReady,
		"Rollback":               noRollback,
		"Retire":                 {state: Rg, active: "1"}, // deleting again finds what was left
		"Deleted":                {state: Rd, active: "1", same: true},
	},
	"missing": {
		"StartRebuild":           {ret: "2", state: B, builder: me, active: "1"},
		"Resume":                 noResume,
		"Heartbeat":              missing,
		"Complete":               missing,
		"Complete, 3 unrepaired": missing,
		"Release":                missing,
		"Promote":                missing,
		"Rollback":               noRollback,
		"Retire":                 missing,
		"Deleted":                missing,
	},
}

// TestEveryTransitionFromEveryState: given a registry with version 2 in each
// state and each operation, the result or the error. A refused operation
// changes nothing.
func TestEveryTransitionFromEveryState(t *testing.T) {
	for _, s := range starts {
		for _, op := range ops {
			w, ok := matrix[s.name][op.name]
			if !ok {
				t.Errorf("%s from %s: no expected outcome in the matrix", op.name, s.name)
				continue
			}
			t.Run(op.name+" from "+s.name, func(t *testing.T) {
				r := s.registry()
				ret, err := op.do(&r)
				if w.err != nil {
					if !errors.Is(err, w.err) {
						t.Fatalf("error %v, want %v", err, w.err)
					}
					if !reflect.DeepEqual(r, s.registry()) {
						t.Fatalf("refused, yet changed the registry:\n got  %+v\n from %+v", r, s.registry())
					}
					return
				}
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				v2 := r.Versions["2"]
				if ret != w.ret || v2.State != w.state || v2.Builder != w.builder || r.Active != w.active {
					t.Fatalf("returned %q, version 2 %s held by %q, active %s; want %q, %s held by %q, active %s",
						ret, v2.State, v2.Builder, r.Active, w.ret, w.state, w.builder, w.active)
				}
				if same := reflect.DeepEqual(r, s.registry()); same != w.same {
					t.Fatalf("registry unchanged: %v, want %v (%+v)", same, w.same, r)
				}
				if active := activeVersions(r); !slices.Equal(active, []string{r.Active}) {
					t.Fatalf("versions in state active: %v, registry's active %s", active, r.Active)
				}
			})
		}
	}
	if len(matrix) != len(starts) {
		t.Errorf("the matrix has %d starting states, the test %d", len(matrix), len(starts))
	}
}

func activeVersions(r lifecycle.Registry) []string {
	var out []string
	for _, v := range r.Sorted() {
		if v.State == lifecycle.Active {
			out = append(out, v.Name)
		}
	}
	return out
}

// TestWhatIsWritten: the live projector writes building, ready, active and
// superseded versions, and neither retiring nor retired ones.
func TestWhatIsWritten(t *testing.T) {
	for _, c := range []struct {
		s    lifecycle.State
		want bool
	}{{B, true}, {R, true}, {A, true}, {S, true}, {Rg, false}, {Rd, false}} {
		if got := c.s.Written(); got != c.want {
			t.Errorf("%s written: %v, want %v", c.s, got, c.want)
		}
	}
	r := lifecycle.Initial()
	for name, s := range map[string]lifecycle.State{"2": S, "3": Rg, "4": Rd, "10": B, "5": R} {
		r.Versions[name] = lifecycle.Version{Name: name, State: s}
	}
	if got := r.WriteSet(); !slices.Equal(got, []string{"1", "2", "5", "10"}) {
		t.Errorf("write set %v, want [1 2 5 10]", got)
	}
}

// TestALifeFromRebuildToRetirement walks a version through its whole life,
// with the times and counts each step records.
func TestALifeFromRebuildToRetirement(t *testing.T) {
	r := lifecycle.Initial()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	v, err := r.StartRebuild(me, at(0), lease, 8)
	if err != nil || v != "2" {
		t.Fatalf("start: %q %v", v, err)
	}
	if got := r.WriteSet(); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("write set while building: %v", got)
	}
	if err := r.Heartbeat("2", me, at(10), lease); err != nil || !r.Versions["2"].BuilderLease.Equal(at(40)) {
		t.Fatalf("heartbeat: %v, lease %s", err, r.Versions["2"].BuilderLease)
	}
	if err := r.Complete("2", me, at(20), 1000, 0); err != nil {
		t.Fatal(err)
	}
	if got := r.Versions["2"]; got.State != R || got.Events != 1000 || !got.Completed.Equal(at(20)) || got.Builder != "" || !got.BuilderLease.IsZero() || got.Segments != 8 || !got.Created.Equal(at(0)) {
		t.Fatalf("after complete: %+v", got)
	}
	if prev, err := r.Promote("2", at(30)); err != nil || prev != "1" {
		t.Fatalf("promote: %q %v", prev, err)
	}
	if one, two := r.Versions["1"], r.Versions["2"]; one.State != S || !one.Superseded.Equal(at(30)) || two.State != A || !two.Promoted.Equal(at(30)) {
		t.Fatalf("after promote: 1 %+v, 2 %+v", one, two)
	}
	if got := r.WriteSet(); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("write set after promote (superseded still written): %v", got)
	}
	if to, from, err := r.Rollback(at(40)); err != nil || to != "1" || from != "2" || r.Active != "1" || r.Versions["2"].State != S {
		t.Fatalf("rollback: to %q from %q, %v; %+v", to, from, err, r)
	}
	if _, err := r.Promote("2", at(50)); err != nil || r.Active != "2" {
		t.Fatalf("promote again after the rollback: %v", err)
	}
	if err := r.Retire("1", at(60)); err != nil {
		t.Fatal(err)
	}
	if got := r.WriteSet(); !slices.Equal(got, []string{"2"}) {
		t.Fatalf("write set once 1 is retiring: %v", got)
	}
	if _, _, err := r.Rollback(at(65)); !errors.Is(err, lifecycle.ErrNothingToRollBack) {
		t.Fatalf("rollback to a retiring version: %v", err)
	}
	if err := r.Deleted("1", at(70)); err != nil || r.Versions["1"].State != Rd || !r.Versions["1"].Deleted.Equal(at(70)) {
		t.Fatalf("deleted: %v, %+v", err, r.Versions["1"])
	}
	if err := r.Deleted("1", at(80)); err != nil || !r.Versions["1"].Deleted.Equal(at(70)) {
		t.Fatalf("deleted recorded again moved the time: %v, %+v", err, r.Versions["1"])
	}
	if _, err := r.Promote("1", at(90)); !errors.Is(err, lifecycle.ErrNotReady) {
		t.Fatalf("promote a retired version: %v", err)
	}
}

// TestRetiredDuringRebuildWithSkewedClock: the retiring machine's clock is
// five minutes ahead, so the builder's live lease looks expired and the
// retire is accepted. The builder is fenced all the same: its heartbeat
// fails, its Complete fails, and the version can never be promoted.
func TestRetiredDuringRebuildWithSkewedClock(t *testing.T) {
	r := lifecycle.Initial()
	builderClock := t0
	retirerClock := t0.Add(5 * time.Minute)
	v, err := r.StartRebuild(me, builderClock, lease, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Heartbeat(v, me, builderClock.Add(10*time.Second), lease); err != nil {
		t.Fatal(err)
	}
	// By the builder's clock the lease runs until t0+40s; by the retirer's
	// it ran out four minutes ago.
	if err := r.Retire(v, retirerClock); err != nil {
		t.Fatalf("retire with a clock ahead of the lease: %v", err)
	}
	if err := r.Heartbeat(v, me, builderClock.Add(20*time.Second), lease); !errors.Is(err, lifecycle.ErrLeaseLost) {
		t.Errorf("heartbeat after the retire: %v, want ErrLeaseLost", err)
	}
	if err := r.Complete(v, me, builderClock.Add(25*time.Second), 500, 0); !errors.Is(err, lifecycle.ErrLeaseLost) {
		t.Errorf("complete after the retire: %v, want ErrLeaseLost", err)
	}
	if err := r.Release(v, me); !errors.Is(err, lifecycle.ErrLeaseLost) {
		t.Errorf("release after the retire: %v, want ErrLeaseLost", err)
	}
	if _, err := r.Resume("other", retirerClock, lease); !errors.Is(err, lifecycle.ErrNothingToResume) {
		t.Errorf("another rebuild resumes the retired version: %v", err)
	}
	if _, err := r.Promote(v, builderClock.Add(30*time.Second)); !errors.Is(err, lifecycle.ErrNotReady) {
		t.Errorf("promote after the retire: %v, want ErrNotReady", err)
	}
	if err := r.Deleted(v, retirerClock.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := r.Complete(v, me, builderClock.Add(35*time.Second), 500, 0); !errors.Is(err, lifecycle.ErrLeaseLost) {
		t.Errorf("complete once the items are deleted: %v", err)
	}
	if _, err := r.Promote(v, builderClock.Add(40*time.Second)); !errors.Is(err, lifecycle.ErrNotReady) {
		t.Errorf("promote once the items are deleted: %v", err)
	}
	if got := r.Versions[v]; got.State != Rd || got.Written() || r.Active != "1" {
		t.Errorf("version %s ends %+v, active %s", v, got, r.Active)
	}
	// With the clocks agreeing, the same retire is refused while the lease is live.
	r2 := lifecycle.Initial()
	v2, _ := r2.StartRebuild(me, t0, lease, 4)
	if err := r2.Retire(v2, t0.Add(10*time.Second)); !errors.Is(err, lifecycle.ErrBeingRebuilt) {
		t.Errorf("retire within the lease: %v, want ErrBeingRebuilt", err)
	}
}

// TestRetriedTransitionsRecogniseTheirSuccess: the store reapplies a
// transition when it cannot tell whether its write was applied; applying it
// again must not start a second rebuild, fail a completed rebuild, or move
// a deletion time.
func TestRetriedTransitionsRecogniseTheirSuccess(t *testing.T) {
	r := lifecycle.Initial()
	v, _ := r.StartRebuild(me, t0, lease, 4)
	again, err := r.StartRebuild(me, t0.Add(time.Second), lease, 4)
	if err != nil || again != v || len(r.Versions) != 2 {
		t.Fatalf("start retried: %q %v, versions %v", again, err, r.Versions)
	}
	if err := r.Release(v, me); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(v, me); err != nil {
		t.Fatalf("release retried: %v", err)
	}
	if _, err := r.Resume(me, t0, lease); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Resume(me, t0.Add(time.Second), lease); err != nil || got != v {
		t.Fatalf("resume retried: %q %v", got, err)
	}
	if err := r.Complete(v, me, t0.Add(2*time.Second), 10, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Complete(v, me, t0.Add(3*time.Second), 10, 0); err != nil || !r.Versions[v].Completed.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("complete retried: %v, %+v", err, r.Versions[v])
	}
	if err := r.Complete(v, "other", t0.Add(3*time.Second), 10, 0); !errors.Is(err, lifecycle.ErrLeaseLost) {
		t.Fatalf("complete by a builder that did not complete it: %v", err)
	}
	if _, err := r.Promote(v, t0); err != nil {
		t.Fatal(err)
	}
	before := r.Clone()
	if prev, err := r.Promote(v, t0.Add(time.Second)); err != nil || prev != "" || !reflect.DeepEqual(r, before) {
		t.Fatalf("promote retried: %q %v", prev, err)
	}
}

// TestRollbackOrdersByPromotionNotByClock: version 2 was promoted on a
// machine whose clock runs ahead, version 3 later on one whose clock runs
// behind. Rollback goes back to 2, the version 3 replaced.
func TestRollbackOrdersByPromotionNotByClock(t *testing.T) {
	r := lifecycle.Initial()
	for _, name := range []string{"2", "3"} {
		r.Versions[name] = lifecycle.Version{Name: name, State: R}
	}
	if _, err := r.Promote("2", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Promote("3", t0); err != nil {
		t.Fatal(err)
	}
	to, from, err := r.Rollback(t0)
	if err != nil || to != "2" || from != "3" {
		t.Fatalf("rollback: to %q from %q, %v; want to 2 from 3", to, from, err)
	}
}

// TestStandardLibraryOnly keeps the lifecycle free of AWS and of the
// adapters: it is the domain's rule, whatever stores it.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "votes/domain/lifecycle").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		first, _, _ := strings.Cut(dep, "/")
		if strings.Contains(first, ".") || (first == "votes" && dep != "votes/domain/lifecycle") {
			t.Errorf("votes/domain/lifecycle depends on %s", dep)
		}
	}
}
