// Package storetest holds the contract suites every store of the projector
// passes: the DynamoDB stores on the emulator and the in-memory ones. The
// projector's exactness rests on exactly these conditional semantics.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"votes/domain"
	"votes/projections"
	"votes/projections/projectiontest"
)

// TallyCells is a cell store that can also sum a title's cells.
type TallyCells interface {
	projections.Cells
	Tally(ctx context.Context, titleID string) (projections.Counts, error)
}

func ballot(voter, title, sub string, version int64, choice string) projections.Ballot {
	b := projections.NewBallot(voter, title)
	b.Apply(projectiontest.Vote(voter, title, sub, "story", choice, version))
	b.Version = version
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
		next.Aspects["acting"] = projections.Current{Choice: "up", RecordedAt: 1764237600123456789, VoteID: "acting-vote"}
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
		if len(got) != 1 || !got["u1"].Same(next) {
			t.Fatalf("loaded %+v, want only u1 exactly as saved at version 2: %+v", got, next)
		}
	})
	t.Run("a late save of an older version is refused", func(t *testing.T) {
		s := newStore(t)
		v1 := ballot("u1", "t1", "a", 1, "up")
		v2 := ballot("u1", "t1", "b", 2, "down")
		for _, b := range []projections.Ballot{v1, v2} {
			if err := s.Save(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		// The first save, sent again late (an SDK retry, a paused writer):
		// it must not take the ballot back, nor pass for a retried call.
		if err := s.Save(ctx, v1); !errors.Is(err, projections.ErrStale) {
			t.Fatalf("version 1 saved again over version 2: %v, want ErrStale", err)
		}
		got, err := s.Load(ctx, "t1", []string{"u1"})
		if err != nil || !got["u1"].Same(v2) {
			t.Fatalf("after the late save: %+v, %v; want version 2 kept", got["u1"], err)
		}
	})
	t.Run("ballots of other titles and voters are apart", func(t *testing.T) {
		s := newStore(t)
		for _, b := range []projections.Ballot{ballot("u1", "t1", "a", 1, "up"), ballot("u1", "t2", "b", 1, "down"), ballot("u2", "t1", "c", 1, "down")} {
			if err := s.Save(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Load(ctx, "t1", []string{"u1", "u2", "u3"})
		if err != nil || len(got) != 2 || got["u1"].Aspects["story"].Choice != "up" || got["u2"].Aspects["story"].Choice != "down" {
			t.Fatalf("t1's ballots: %+v, %v; want u1 up and u2 down", got, err)
		}
	})
	t.Run("LoadAll reads what Load reads, over titles and past 100 ballots", func(t *testing.T) {
		s := newStore(t)
		var keys []projections.BallotKey
		for i := range 130 {
			title := fmt.Sprintf("t%d", i%3)
			voter := fmt.Sprintf("u%d", i)
			keys = append(keys, projections.BallotKey{TitleID: title, VoterID: voter})
			if i%4 == 0 {
				continue // no ballot
			}
			if err := s.Save(ctx, ballot(voter, title, "a", 1, []string{"up", "down"}[i%2])); err != nil {
				t.Fatal(err)
			}
			if i%5 == 0 {
				b := ballot(voter, title, "b", 2, "down")
				b.Apply(projectiontest.Vote(voter, title, "a", "story", "up", 1)) // a past vote
				if err := s.Save(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
		}
		keys = append(keys, keys[7]) // asked twice
		got, err := s.LoadAll(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, k := range keys[:130] {
			one, err := s.Load(ctx, k.TitleID, []string{k.VoterID})
			if err != nil {
				t.Fatal(err)
			}
			want, stored := one[k.VoterID]
			b, ok := got[k]
			if ok != stored || (ok && !b.Same(want)) {
				t.Fatalf("%+v: LoadAll %+v (%v), Load %+v (%v)", k, b, ok, want, stored)
			}
			if ok {
				n++
			}
		}
		if len(got) != n || n != 97 {
			t.Fatalf("LoadAll returned %d ballots, %d stored of those asked; want 97", len(got), n)
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

// redo makes a redo log of n entries, some with several aspects.
func redo(step string, n int) projections.Redo {
	r := projections.Redo{Step: step, Trend: projections.Trend{}}
	for i := range n {
		at := 1764237600000000000 + int64(i)*int64(time.Minute)/3
		votes := []projections.Vote{{Aspect: "story", Current: projections.Current{Choice: "up", RecordedAt: at, VoteID: domain.VoteID(fmt.Sprintf("voter-%d", i), "t1", "s", "story")}}}
		r.Trend[projections.TrendKey{Minute: projections.MinuteOf(at), Aspect: "story", Choice: "up"}] = projections.TrendCount{Cast: 1, Tally: 1}
		if i%3 == 0 {
			votes = append(votes, projections.Vote{Aspect: "acting", Current: projections.Current{Choice: "down", RecordedAt: 1, VoteID: domain.VoteID(fmt.Sprintf("voter-%d", i), "t1", "s", "acting")}})
			r.Trend[projections.TrendKey{Minute: 0, Aspect: "acting", Choice: "down"}] = projections.TrendCount{Cast: int64(i), Tally: -2}
		}
		r.Entries = append(r.Entries, projections.RedoEntry{VoterID: fmt.Sprintf("voter-%d", i), Version: int64(i + 1), Votes: votes})
	}
	return r
}

// TestCells checks a cell store; newStore gives an empty one each call.
func TestCells(t *testing.T, newStore func(t *testing.T) TallyCells) {
	ctx := context.Background()
	cell := domain.Cell{TitleID: "t1", Shard: 3}
	read := func(t *testing.T, s TallyCells, c domain.Cell) projections.CellState {
		t.Helper()
		st, err := s.Read(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	tally := func(t *testing.T, s TallyCells, title string, want projections.Counts, why string) {
		t.Helper()
		got, err := s.Tally(ctx, title)
		if err != nil || !got.Equal(want) {
			t.Fatalf("%s tally %v, %v; want %v (%s)", title, got, err, want, why)
		}
	}
	t.Run("a cell never written is at version 0", func(t *testing.T) {
		st := read(t, newStore(t), cell)
		if st.Version != 0 || len(st.Redo.Entries) != 0 || st.Redo.Step != "" {
			t.Fatalf("read of a new cell: %+v", st)
		}
	})
	t.Run("ReadAll reads what Read reads, past 100 cells", func(t *testing.T) {
		s := newStore(t)
		var cells []domain.Cell
		for i := range 130 {
			c := domain.Cell{TitleID: fmt.Sprintf("t%d", i/domain.TallyShards), Shard: i % domain.TallyShards}
			cells = append(cells, c)
			for v := range int64(i % 3) {
				if err := s.Commit(ctx, c, v, redo(fmt.Sprintf("%d-%d", i, v), int(v)+1), projections.Counts{"story": {"up": 1}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := s.ReadAll(ctx, append(cells, cells[5]))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(cells) {
			t.Fatalf("ReadAll of %d cells returned %d", len(cells), len(got))
		}
		for i, c := range cells {
			want := read(t, s, c)
			if st := got[c]; st.Version != int64(i%3) || st.Version != want.Version || !st.Redo.Equal(want.Redo) {
				t.Fatalf("%s: ReadAll %+v, Read %+v; want version %d", c, st, want, i%3)
			}
		}
	})
	t.Run("commits move the version on, once each", func(t *testing.T) {
		s := newStore(t)
		a := redo("a", 2)
		if err := s.Commit(ctx, cell, 0, a, projections.Counts{"story": {"up": 2}}); err != nil {
			t.Fatal(err)
		}
		if st := read(t, s, cell); st.Version != 1 || !st.Redo.Equal(a) {
			t.Fatalf("after the first commit: %+v; want version 1 holding a's redo log %+v", st, a)
		}
		if err := s.Commit(ctx, cell, 0, a, projections.Counts{"story": {"up": 2}}); err != nil {
			t.Fatalf("the commit sent again (a retried call the store applied): %v, want nil", err)
		}
		if err := s.Commit(ctx, cell, 0, redo("b", 1), projections.Counts{"story": {"up": 9}}); !errors.Is(err, projections.ErrCellMoved) {
			t.Fatalf("a commit computed at version 0 by another step: %v, want ErrCellMoved", err)
		}
		if err := s.Commit(ctx, cell, 5, redo("c", 1), projections.Counts{"story": {"up": 9}}); !errors.Is(err, projections.ErrCellMoved) {
			t.Fatalf("a commit at a version the cell never reached: %v, want ErrCellMoved", err)
		}
		if st := read(t, s, cell); st.Version != 1 || !st.Redo.Equal(a) {
			t.Fatalf("after refused commits: %+v; want version 1 and a's log", st)
		}
		d := redo("d", 1)
		if err := s.Commit(ctx, cell, 1, d, projections.Counts{"story": {"up": -1, "down": 1}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, cell, 0, a, projections.Counts{"story": {"up": 2}}); !errors.Is(err, projections.ErrCellMoved) {
			t.Fatalf("a's commit landing once more after d's: %v, want ErrCellMoved (the cell no longer holds a)", err)
		}
		other := domain.Cell{TitleID: "t1", Shard: 60}
		if err := s.Commit(ctx, other, 0, redo("e", 1), projections.Counts{"story": {"down": 3}, "acting": {"up": 1}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, domain.Cell{TitleID: "t2", Shard: 3}, 0, redo("f", 1), projections.Counts{"story": {"up": 5}}); err != nil {
			t.Fatal(err)
		}
		tally(t, s, "t1", projections.Counts{"story": {"up": 1, "down": 4}, "acting": {"up": 1}}, "each commit counted once, t2 apart")
		if st := read(t, s, cell); st.Version != 2 || !st.Redo.Equal(d) {
			t.Fatalf("cell %s: %+v; want version 2 holding d's log", cell, st)
		}
	})
	t.Run("a commit that moves no count still moves the version and the log", func(t *testing.T) {
		s := newStore(t)
		a := redo("a", 1)
		if err := s.Commit(ctx, cell, 0, a, projections.Counts{"story": {"up": 0}}); err != nil {
			t.Fatal(err)
		}
		if st := read(t, s, cell); st.Version != 1 || !st.Redo.Equal(a) {
			t.Fatalf("after a commit of zero counts: %+v; want version 1 holding its log", st)
		}
		tally(t, s, "t1", projections.Counts{}, "nothing counted")
	})
	t.Run("a long redo log round-trips exactly", func(t *testing.T) {
		s := newStore(t)
		long := redo("long", 100) // a batch's worth of voters on one cell
		if err := s.Commit(ctx, cell, 0, long, projections.Counts{"story": {"up": 100}, "acting": {"down": 34}}); err != nil {
			t.Fatal(err)
		}
		if st := read(t, s, cell); st.Version != 1 || !st.Redo.Equal(long) {
			t.Fatalf("read back %d entries at version %d; want the 100 committed, exactly", len(st.Redo.Entries), st.Version)
		}
		short := redo("short", 1)
		if err := s.Commit(ctx, cell, 1, short, nil); err != nil {
			t.Fatal(err)
		}
		if st := read(t, s, cell); !st.Redo.Equal(short) {
			t.Fatalf("after a shorter log: %+v; want it to replace the long one", st.Redo)
		}
	})
	t.Run("concurrent commits at one version: one wins", func(t *testing.T) {
		s := newStore(t)
		var mu sync.Mutex
		var won []int
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.Commit(ctx, cell, 0, redo(fmt.Sprintf("s%d", i), 1), projections.Counts{"story": {"up": int64(i + 1)}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, i)
				case !errors.Is(err, projections.ErrCellMoved):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("commits at version 0 that succeeded: %v, want one", won)
		}
		tally(t, s, "t1", projections.Counts{"story": {"up": int64(won[0] + 1)}}, "the winner's counts only")
		if st := read(t, s, cell); st.Version != 1 || st.Redo.Step != fmt.Sprintf("s%d", won[0]) {
			t.Fatalf("after the race: %+v; want version 1 holding the winner's log", st)
		}
	})
}
