package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain/lifecycle"
	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/internal/backoff"
)

// TestRegistryStoresEveryField: what a transition records is what the next
// reader sees, and an empty table is the initial registry.
func TestRegistryStoresEveryField(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	regs := dynamo.NewRegistries(f.clients.DynamoDB, f.tables.Tallies)
	got, err := regs.Load(ctx, true)
	if err != nil || !reflect.DeepEqual(got, lifecycle.Initial()) {
		t.Fatalf("empty table: %+v, %v; want the initial registry", got, err)
	}
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	want, err := regs.Update(ctx, func(r *lifecycle.Registry) error {
		r.Versions["2"] = lifecycle.Version{Name: "2", State: lifecycle.Superseded, Created: at, Completed: at.Add(time.Second),
			Promoted: at.Add(2 * time.Second), Superseded: at.Add(3 * time.Second), SupersededSeq: 4, Events: 99, Segments: 8, BuiltBy: "b1"}
		r.Versions["3"] = lifecycle.Version{Name: "3", State: lifecycle.Building, Created: at, Segments: 2, Builder: "b2", BuilderLease: at.Add(time.Minute)}
		r.Versions["4"] = lifecycle.Version{Name: "4", State: lifecycle.Retired, Created: at, Deleted: at.Add(time.Hour)}
		r.Promotions = 5
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = regs.Load(ctx, true)
	if err != nil || !reflect.DeepEqual(got, want) || got.Rev != 1 {
		t.Fatalf("stored %+v\nloaded %+v, %v", want, got, err)
	}
}

// TestRegistryReadsTheStoredFormat: a registry item as stored before the
// superseded state existed reads with the same states.
func TestRegistryReadsTheStoredFormat(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	version := func(state string) types.AttributeValue {
		return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"state": s(state), "created": s("2026-11-01T10:00:00Z"), "events": n("12"), "segments": n("4"),
		}}
	}
	if _, err := f.clients.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.tables.Tallies), Item: map[string]types.AttributeValue{
		dynamo.AttrPK: s("_registry"), "active": s("3"), "rev": n("7"),
		"versions": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"1": version("retired"), "2": version("retiring"), "3": version("active"), "4": version("ready"), "5": version("building"),
		}},
	}}); err != nil {
		t.Fatal(err)
	}
	reg, err := dynamo.NewRegistries(f.clients.DynamoDB, f.tables.Tallies).Load(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]lifecycle.State{"1": lifecycle.Retired, "2": lifecycle.Retiring, "3": lifecycle.Active, "4": lifecycle.Ready, "5": lifecycle.Building}
	for name, state := range want {
		if v := reg.Versions[name]; v.State != state || v.Name != name || v.Events != 12 || v.Segments != 4 {
			t.Errorf("version %s read as %+v, want %s", name, v, state)
		}
	}
	if reg.Active != "3" || reg.Rev != 7 || len(reg.Versions) != 5 {
		t.Errorf("registry read as %+v", reg)
	}
}

// TestRegistryUpdatesNeverLoseOneAnother: concurrent rebuild starts each
// get their own version, and a start whose response was lost after the put
// was applied is reapplied without adding a second version.
func TestRegistryUpdatesNeverLoseOneAnother(t *testing.T) {
	ctx := context.Background()
	flaky := faults.New(3)
	f := newFixture(t, flaky)
	regs := dynamo.NewRegistries(f.clients.DynamoDB, f.tables.Tallies)
	now := time.Now()

	const builders = 6
	names := make([]string, builders)
	var wg sync.WaitGroup
	for i := range builders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := regs.Update(ctx, func(r *lifecycle.Registry) error {
				var err error
				names[i], err = r.StartRebuild(fmt.Sprintf("b%d", i), now, time.Minute, 1)
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	reg, err := regs.Load(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, name := range names {
		if v := reg.Versions[name]; v.State != lifecycle.Building || v.Builder != fmt.Sprintf("b%d", i) || seen[name] {
			t.Errorf("builder b%d got version %q: %+v", i, name, v)
		}
		seen[name] = true
	}
	if len(reg.Versions) != builders+1 {
		t.Errorf("%d versions after %d starts, want %d", len(reg.Versions), builders, builders+1)
	}

	// The first put of the next start is applied and its answer lost.
	var puts atomic.Int64
	flaky.Set(0, 1, func(target, _ string) bool { return faults.Action(target, "PutItem") && puts.Add(1) == 1 })
	var name string
	if _, err := regs.Update(ctx, func(r *lifecycle.Registry) error {
		var err error
		name, err = r.StartRebuild("late", now, time.Minute, 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if flaky.FailedAfter.Load() != 1 {
		t.Fatalf("%d lost answers, want 1", flaky.FailedAfter.Load())
	}
	reg, err = regs.Load(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Versions) != builders+2 || reg.Versions[name].Builder != "late" {
		t.Errorf("after a start whose answer was lost: %d versions (want %d), %s held by %q", len(reg.Versions), builders+2, name, reg.Versions[name].Builder)
	}
}

// TestRegistryUpdateGivesUp: an update that loses to another every time
// stops after its policy's attempts with backoff.ErrExhausted, having
// stored nothing, instead of retrying for ever.
func TestRegistryUpdateGivesUp(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	regs := dynamo.NewRegistries(f.clients.DynamoDB, f.tables.Tallies)
	regs.Retry = backoff.Policy{Base: time.Millisecond, Attempts: 4}
	other := dynamo.NewRegistries(f.clients.DynamoDB, f.tables.Tallies)
	tries := 0
	_, err := regs.Update(ctx, func(r *lifecycle.Registry) error {
		tries++
		// Another writer updates the registry between this read and put.
		if _, err := other.Update(ctx, func(r *lifecycle.Registry) error { r.Promotions++; return nil }); err != nil {
			return err
		}
		r.Active = "lost"
		return nil
	})
	if !errors.Is(err, backoff.ErrExhausted) || tries != 4 {
		t.Fatalf("update losing every time: %v after %d tries, want ErrExhausted after 4", err, tries)
	}
	got, err := regs.Load(ctx, true)
	if err != nil || got.Active == "lost" || got.Promotions != 4 {
		t.Fatalf("registry after the lost update: %+v, %v", got, err)
	}
}
