package lifecycle_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"votes/domain/lifecycle"
)

// allowed is the lifecycle's graph: the states a version may be in after
// any operation, given its state before.
var allowed = map[lifecycle.State][]lifecycle.State{
	B:  {B, R, Rg},
	R:  {R, A, Rg},
	A:  {A, S},
	S:  {S, A, Rg},
	Rg: {Rg, Rd},
	Rd: {Rd, Rg},
}

// TestAnyHistoryKeepsTheLifecycle applies random operations by two
// builders and a promoting engineer, each with its own clock off by up to
// two minutes, and checks after every one: a refused operation changes
// nothing; one version is active; a version only moves along the
// lifecycle's edges; a version becomes ready only from building, by the
// builder holding it, with nothing unrepaired; and once retiring, a
// version is never written again.
func TestAnyHistoryKeepsTheLifecycle(t *testing.T) {
	applied := map[string]int{} // operations applied, over all cases
	defer func() { t.Logf("operations applied: %v", applied) }()
	rapid.Check(t, func(t *rapid.T) {
		r := lifecycle.Initial()
		now := t0
		builders := []string{"a", "b"}
		skew := map[string]time.Duration{}
		for _, who := range append(builders, "engineer") {
			skew[who] = time.Duration(rapid.IntRange(-120, 120).Draw(t, "skew of "+who)) * time.Second
		}
		fenced := map[string]bool{}
		steps := rapid.IntRange(1, 150).Draw(t, "steps")
		for range steps {
			now = now.Add(time.Duration(rapid.IntRange(0, 20).Draw(t, "seconds pass")) * time.Second)
			who := rapid.SampledFrom(builders).Draw(t, "builder")
			clock := now.Add(skew[who])
			eng := now.Add(skew["engineer"])
			// The three newest versions, where the action is, and one
			// that does not exist.
			sorted := r.Sorted()
			names := append(sorted[max(len(sorted)-3, 0):], lifecycle.Version{Name: "99"})
			version := rapid.SampledFrom(names).Draw(t, "version").Name
			unrepaired := rapid.SampledFrom([]int{0, 0, 0, 2}).Draw(t, "unrepaired")
			op := rapid.SampledFrom([]string{"start", "resume", "heartbeat", "heartbeat", "complete", "complete", "complete",
				"release", "promote", "promote", "rollback", "retire", "deleted"}).Draw(t, "operation")

			before := r.Clone()
			var err error
			switch op {
			case "start":
				_, err = r.StartRebuild(who, clock, lease, 2)
			case "resume":
				_, err = r.Resume(who, clock, lease)
			case "heartbeat":
				err = r.Heartbeat(version, who, clock, lease)
			case "complete":
				err = r.Complete(version, who, clock, 10, unrepaired)
			case "release":
				err = r.Release(version, who)
			case "promote":
				_, err = r.Promote(version, eng)
			case "rollback":
				_, _, err = r.Rollback(eng)
			case "retire":
				err = r.Retire(version, eng)
			case "deleted":
				err = r.Deleted(version, eng)
			}
			what := fmt.Sprintf("%s of %s by %s (unrepaired %d)", op, version, who, unrepaired)
			if err != nil {
				if !reflect.DeepEqual(r, before) {
					t.Fatalf("%s refused (%v), yet changed the registry", what, err)
				}
				continue
			}
			applied[op]++
			if got := activeVersions(r); len(got) != 1 || got[0] != r.Active {
				t.Fatalf("after %s: versions in state active %v, registry's active %s", what, got, r.Active)
			}
			for _, v := range r.Sorted() {
				old, existed := before.Versions[v.Name]
				switch {
				case !existed && (v.State != B || v.Builder != who):
					t.Fatalf("after %s: new version %s is %s held by %q", what, v.Name, v.State, v.Builder)
				case existed && !slices.Contains(allowed[old.State], v.State):
					t.Fatalf("after %s: version %s went from %s to %s", what, v.Name, old.State, v.State)
				case existed && old.State != R && v.State == R && (op != "complete" || old.Builder != who || unrepaired != 0):
					t.Fatalf("after %s: version %s became ready (it was held by %q)", what, v.Name, old.Builder)
				case v.State != B && v.Builder != "":
					t.Fatalf("after %s: version %s is %s and still held by %q", what, v.Name, v.State, v.Builder)
				case fenced[v.Name] && v.Written():
					t.Fatalf("after %s: version %s was retired, and is %s again", what, v.Name, v.State)
				}
				if v.State == Rg || v.State == Rd {
					fenced[v.Name] = true
				}
			}
		}
	})
}
