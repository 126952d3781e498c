// Package storetest holds the contract suites every store of the projector
// passes: the DynamoDB stores on the emulator and the in-memory ones. The
// projector's exactness rests on exactly these conditional semantics.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"votes/domain"
	"votes/projections"
	"votes/projections/projectiontest"
)

// TallyCells is a cell store that can also sum a title's cells.
type TallyCells interface {
	projections.Cells
	Tally(ctx context.Context, titleID string) (projections.Counts, error)
}

func ballot(voter, title, step string, version int64, choice string) projections.Ballot {
	b := projections.NewBallot(voter, title)
	b.Apply(projectiontest.Vote(voter, title, fmt.Sprintf("s%d", version), "story", choice, version))
	b.Version, b.Step, b.Prev = version, step, map[string]string{"story": ""}
	return b
}

// TestBallots checks a ballot store; newStore gives an empty one each call.
func TestBallots(t *testing.T, newStore func(t *testing.T) projections.Ballots) {
	ctx := context.Background()
	t.Run("a voter with no ballot is absent", func(t *testing.T) {
		got, err := newStore(t).Load(ctx, "t1", []string{"u1"})
		if err != nil || len(got) != 0 {
			t.Fatalf("load of an empty store: %v, %v", got, err)
		}
	})
	t.Run("versions guard saves, and a repeated save succeeds", func(t *testing.T) {
		s := newStore(t)
		b := ballot("u1", "t1", "a", 1, "up")
		if err := s.Save(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, b); err != nil {
			t.Fatalf("saving the stored ballot again (a retried call) must succeed: %v", err)
		}
		if err := s.Save(ctx, ballot("u1", "t1", "b", 1, "down")); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("a second writer creating the same ballot: %v, want ErrStale", err)
		}
		if err := s.Save(ctx, ballot("u1", "t1", "c", 3, "down")); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("a save skipping a version: %v, want ErrStale", err)
		}
		next := ballot("u1", "t1", "d", 2, "down")
		next.Prev = map[string]string{"story": "up"}
		if err := s.Save(ctx, next); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, ballot("u1", "t1", "e", 2, "up")); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("a save at a version taken by another step: %v, want ErrStale", err)
		}
		got, err := s.Load(ctx, "t1", []string{"u1", "u2"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got["u1"].Version != 2 || got["u1"].Step != "d" || got["u1"].Aspects["story"].Choice != "down" || got["u1"].Prev["story"] != "up" {
			t.Fatalf("loaded %+v, want u1 at version 2, story down, changed from up by step d", got)
		}
	})
	t.Run("a fence refuses its step's saves, and only its", func(t *testing.T) {
		s := newStore(t)
		sealed := ballot("u1", "t1", "", 1, "up")
		sealed.Fences = []string{"x"}
		if err := s.Save(ctx, sealed); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, ballot("u1", "t1", "x", 2, "down")); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("save by a fenced step: %v, want ErrStale", err)
		}
		other := ballot("u1", "t1", "y", 2, "down")
		other.Fences = []string{"x"}
		if err := s.Save(ctx, other); err != nil {
			t.Fatalf("save by another step: %v", err)
		}
		got, err := s.Load(ctx, "t1", []string{"u1"})
		if err != nil || !slices.Equal(got["u1"].Fences, []string{"x"}) {
			t.Fatalf("fences after the save: %+v, %v; want the fence kept", got["u1"].Fences, err)
		}
	})
	t.Run("two seals of one ballot for different steps: the second is stale", func(t *testing.T) {
		s := newStore(t)
		if err := s.Save(ctx, ballot("u1", "t1", "z", 1, "up")); err != nil {
			t.Fatal(err)
		}
		sealW := ballot("u1", "t1", "z", 2, "up")
		sealW.Fences = []string{"w"}
		sealX := sealW
		sealX.Fences = []string{"x"}
		if err := s.Save(ctx, sealW); err != nil {
			t.Fatal(err)
		}
		// Same version, same step, other fence: not a retry of the stored
		// write. Taking it for one would leave step x unfenced.
		if err := s.Save(ctx, sealX); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("a seal for x over a seal for w at the same version: %v, want ErrStale", err)
		}
		if err := s.Save(ctx, sealW); err != nil {
			t.Fatalf("the stored seal saved again (a retried call): %v", err)
		}
	})
	t.Run("create stores the new and names the existing", func(t *testing.T) {
		s := newStore(t)
		if err := s.Save(ctx, ballot("u3", "t1", "old", 1, "down")); err != nil {
			t.Fatal(err)
		}
		var bs []projections.Ballot
		for i := range 130 { // more than one DynamoDB transaction holds
			bs = append(bs, ballot(fmt.Sprintf("u%d", i), "t1", "new", 1, "up"))
		}
		existing, err := s.Create(ctx, bs)
		if err != nil || !slices.Equal(existing, []int{3}) {
			t.Fatalf("create: existing %v, %v; want [3]", existing, err)
		}
		voters := make([]string, len(bs))
		for i, b := range bs {
			voters[i] = b.VoterID
		}
		got, err := s.Load(ctx, "t1", voters)
		if err != nil || len(got) != len(bs) {
			t.Fatalf("loaded %d of %d ballots: %v", len(got), len(bs), err)
		}
		if got["u3"].Step != "old" || got["u7"].Step != "new" {
			t.Fatalf("u3 stamped %q (want old, untouched), u7 %q (want new)", got["u3"].Step, got["u7"].Step)
		}
	})
	t.Run("concurrent saves of one version: one wins", func(t *testing.T) {
		s := newStore(t)
		wins := 0
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Save(ctx, ballot("u1", "t1", fmt.Sprintf("step%d", i), 1, "up")); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent creations succeeded, want 1", wins)
		}
	})
}

// TestCells checks a cell store; newStore gives an empty one each call.
func TestCells(t *testing.T, newStore func(t *testing.T) TallyCells) {
	ctx := context.Background()
	cell := domain.Cell{TitleID: "t1", Shard: 3}
	t.Run("one step in flight, commits once", func(t *testing.T) {
		s := newStore(t)
		a := projections.Step{ID: "a", Voters: []string{"u1", "u2"}, Owner: "stream", Expires: 1234}
		if in, err := s.Begin(ctx, cell, a); err != nil || in != nil {
			t.Fatalf("begin on an idle cell: %v, %v", in, err)
		}
		if in, err := s.Begin(ctx, cell, a); err != nil || in != nil {
			t.Fatalf("beginning the step in flight again (a retried call): %v, %v", in, err)
		}
		in, err := s.Begin(ctx, cell, projections.Step{ID: "b", Voters: []string{"u3"}})
		if err != nil || in == nil || in.ID != "a" || !slices.Equal(in.Voters, a.Voters) || in.Owner != "stream" || in.Expires != 1234 {
			t.Fatalf("begin while a is in flight: %+v, %v; want step a as begun", in, err)
		}
		if err := s.Commit(ctx, cell, "b", projections.Counts{"story": {"up": 9}}); err != nil {
			t.Fatalf("commit of a step not in flight: %v, want nil and no change", err)
		}
		if err := s.Commit(ctx, cell, "a", projections.Counts{"story": {"up": 2, "down": -1}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, cell, "a", projections.Counts{"story": {"up": 2}}); err != nil {
			t.Fatalf("commit again (a retried call): %v", err)
		}
		other := domain.Cell{TitleID: "t1", Shard: 60}
		if in, err := s.Begin(ctx, other, projections.Step{ID: "c"}); err != nil || in != nil {
			t.Fatal(in, err)
		}
		if err := s.Commit(ctx, other, "c", projections.Counts{"story": {"down": 3}, "acting": {"up": 1}}); err != nil {
			t.Fatal(err)
		}
		elsewhere := domain.Cell{TitleID: "t2", Shard: 3}
		if in, err := s.Begin(ctx, elsewhere, projections.Step{ID: "d"}); err != nil || in != nil {
			t.Fatal(in, err)
		}
		if err := s.Commit(ctx, elsewhere, "d", projections.Counts{"story": {"up": 5}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Tally(ctx, "t1")
		want := projections.Counts{"story": {"up": 2, "down": 2}, "acting": {"up": 1}}
		if err != nil || !got.Equal(want) {
			t.Fatalf("tally %v, %v; want %v (each step counted once, t2 apart)", got, err, want)
		}
	})
	t.Run("a finished step never begins again", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Begin(ctx, cell, projections.Step{ID: "m"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, cell, "m", nil); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"m", "a"} {
			var order *projections.StepOrderError
			if in, err := s.Begin(ctx, cell, projections.Step{ID: id}); !errors.As(err, &order) || order.Last != "m" || in != nil {
				t.Fatalf("begin of %q after m finished: %v, %v; want a StepOrderError naming m", id, in, err)
			}
		}
		if in, err := s.Begin(ctx, cell, projections.Step{ID: "n"}); err != nil || in != nil {
			t.Fatalf("begin of a newer step: %v, %v", in, err)
		}
	})
	t.Run("concurrent begins: one wins, the others see it", func(t *testing.T) {
		s := newStore(t)
		var mu sync.Mutex
		won, saw := []string{}, map[string]bool{}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("s%d", i)
				in, err := s.Begin(ctx, cell, projections.Step{ID: id})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					t.Error(err)
				case in == nil:
					won = append(won, id)
				default:
					saw[in.ID] = true
				}
			}()
		}
		wg.Wait()
		if len(won) != 1 || len(saw) > 1 || (len(saw) == 1 && !saw[won[0]]) {
			t.Fatalf("won by %v, others saw %v; want one winner that all others saw", won, saw)
		}
	})
}
