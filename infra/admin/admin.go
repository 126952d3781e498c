// Package admin runs the engineers' operations on projection versions:
// rebuild a version from the event table while live traffic goes on,
// promote it, list, verify and retire versions. They work the same against
// the local stack and a deployed stage.
package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/infra/dynamo"
	"votes/projections"
)

// Admin operates on one deployment's tables.
type Admin struct {
	DB       *dynamodb.Client
	Tables   dynamo.Tables
	Registry *dynamo.Registries
	now      func() time.Time
}

// New operates on tables through db.
func New(db *dynamodb.Client, tables dynamo.Tables) *Admin {
	return &Admin{DB: db, Tables: tables, Registry: dynamo.NewRegistries(db, tables.Tallies), now: time.Now}
}

// CheckTables fails with a clear error when a table is missing.
func (a *Admin) CheckTables(ctx context.Context) error {
	for _, t := range []string{a.Tables.Events, a.Tables.Ballots, a.Tables.Tallies} {
		if _, err := a.DB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t)}); err != nil {
			var nf *types.ResourceNotFoundException
			if errors.As(err, &nf) {
				return fmt.Errorf("table %s does not exist: is the stage deployed, or votes dev running?", t)
			}
			return fmt.Errorf("dynamodb: describe table %s: %w", t, err)
		}
	}
	return nil
}

// EventCount is DynamoDB's estimate of the event table's size (refreshed
// about every six hours in AWS), or -1 when unknown.
func (a *Admin) EventCount(ctx context.Context) int64 {
	out, err := a.DB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(a.Tables.Events)})
	if err != nil || out.Table.ItemCount == nil {
		return -1
	}
	return *out.Table.ItemCount
}

// Errors callers branch on.
var (
	ErrNotReady        = errors.New("version is not ready")
	ErrBeingRebuilt    = errors.New("version is being rebuilt by another process")
	ErrNothingToResume = errors.New("no interrupted rebuild to resume")
	ErrActive          = errors.New("version is active")
)

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
func (a *Admin) Rebuild(ctx context.Context, o RebuildOptions) (RebuildResult, error) {
	if err := a.CheckTables(ctx); err != nil {
		return RebuildResult{}, err
	}
	me := randomID()
	lease := 30 * time.Second
	var version string
	var segments int
	_, err := a.Registry.Update(ctx, func(r *dynamo.Registry) error {
		now := a.now()
		if o.Resume {
			version = ""
			for _, v := range r.Sorted() {
				if v.State == dynamo.StateBuilding {
					version = v.Name
				}
			}
			if version == "" {
				return ErrNothingToResume
			}
		} else if version == "" || r.Versions[version].Builder != me {
			version = r.Next()
			r.Versions[version] = dynamo.Version{State: dynamo.StateBuilding, Created: now, Segments: max(o.Segments, 1)}
		}
		v := r.Versions[version]
		if v.Builder != "" && v.Builder != me && v.BuilderLease.After(now) {
			return fmt.Errorf("version %s: %w (its lease runs until %s)", version, ErrBeingRebuilt, v.BuilderLease.Format(time.RFC3339))
		}
		v.Builder, v.BuilderLease = me, now.Add(lease)
		segments = v.Segments
		r.Versions[version] = v
		return nil
	})
	if err != nil {
		return RebuildResult{}, err
	}
	res := RebuildResult{Version: version, Resumed: o.Resume, Segments: segments}

	// Hold the version while working; losing it stops the rebuild.
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
			case <-time.After(lease / 3):
			}
			if _, err := a.Registry.Update(ctx, func(r *dynamo.Registry) error {
				v := r.Versions[version]
				if v.Builder != me {
					return fmt.Errorf("version %s: lost the rebuild lease to another process", version)
				}
				v.BuilderLease = a.now().Add(lease)
				r.Versions[version] = v
				return nil
			}); err != nil && ctx.Err() == nil {
				cancel(err)
				return
			}
		}
	}()
	release := func(change func(*dynamo.Version)) error {
		_, err := a.Registry.Update(context.WithoutCancel(ctx), func(r *dynamo.Registry) error {
			v := r.Versions[version]
			if v.Builder != me {
				return nil
			}
			v.Builder, v.BuilderLease = "", time.Time{}
			change(&v)
			r.Versions[version] = v
			return nil
		})
		return err
	}

	cps := dynamo.NewCheckpointStore(a.DB, a.Tables.Tallies)
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
		Scanner:     dynamo.NewEventScanner(a.DB, a.Tables.Events, max(o.PageSize, 1)),
		Checkpoints: cps,
		Projector: projections.NewProjectorWith(
			dynamo.NewBallotStore(a.DB, a.Tables.Ballots, version),
			dynamo.NewCellStore(a.DB, a.Tables.Tallies, version),
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
			runErr = cause
		}
		return res, errors.Join(runErr, release(func(*dynamo.Version) {}))
	}
	err = release(func(v *dynamo.Version) {
		v.State, v.Completed, v.Events = dynamo.StateReady, a.now(), out.Events
	})
	return res, err
}

// Promote makes version the one queries read. It must be ready (a finished
// rebuild). The version that was active is retired: no longer written, its
// items kept until Retire.
func (a *Admin) Promote(ctx context.Context, version string) (previous string, err error) {
	_, err = a.Registry.Update(ctx, func(r *dynamo.Registry) error {
		v, ok := r.Versions[version]
		switch {
		case !ok:
			return fmt.Errorf("version %s: %w", version, dynamo.ErrNoSuchVersion)
		case r.Active == version:
			return nil // promoted already (or a retried update that was applied)
		case v.State != dynamo.StateReady:
			return fmt.Errorf("version %s is %s: %w; only a finished rebuild can be promoted", version, v.State, ErrNotReady)
		}
		previous = r.Active
		if old, ok := r.Versions[previous]; ok {
			old.State = dynamo.StateRetired
			r.Versions[previous] = old
		}
		v.State, v.Promoted = dynamo.StateActive, a.now()
		r.Versions[version] = v
		r.Active = version
		return nil
	})
	return previous, err
}

// VersionInfo is a version with what its cells count.
type VersionInfo struct {
	dynamo.Version
	Cells int   // tally cells stored
	Votes int64 // current votes counted, all titles and aspects
}

// Versions lists the versions with their counts, from a scan of the
// tallies table (small: one item per title and shard and version).
func (a *Admin) Versions(ctx context.Context) ([]VersionInfo, string, error) {
	reg, err := a.Registry.Load(ctx, true)
	if err != nil {
		return nil, "", err
	}
	cells := map[string]int{}
	votes := map[string]int64{}
	err = a.scanTable(ctx, a.Tables.Tallies, "", func(items []map[string]types.AttributeValue) error {
		for _, item := range items {
			pk, _ := item[dynamo.AttrPK].(*types.AttributeValueMemberS)
			if pk == nil || strings.HasPrefix(pk.Value, "_") {
				continue
			}
			version, _, _ := strings.Cut(pk.Value, "#")
			cells[version]++
			for _, m := range dynamo.CellCounts(item) {
				for _, n := range m {
					votes[version] += n
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	var out []VersionInfo
	for _, v := range reg.Sorted() {
		out = append(out, VersionInfo{Version: v, Cells: cells[v.Name], Votes: votes[v.Name]})
	}
	return out, reg.Active, nil
}

// Retire deletes a version's ballots, cells and checkpoints. The active
// version cannot be retired; a version being built stops being written.
func (a *Admin) Retire(ctx context.Context, version string, progress func(deleted int)) (int64, error) {
	_, err := a.Registry.Update(ctx, func(r *dynamo.Registry) error {
		v, ok := r.Versions[version]
		switch {
		case !ok:
			return fmt.Errorf("version %s: %w", version, dynamo.ErrNoSuchVersion)
		case r.Active == version:
			return fmt.Errorf("version %s: %w; promote another first", version, ErrActive)
		case v.State == dynamo.StateBuilding && v.Builder != "" && v.BuilderLease.After(a.now()):
			return fmt.Errorf("version %s: %w; stop it first", version, ErrBeingRebuilt)
		}
		v.State = dynamo.StateRetiring
		r.Versions[version] = v
		return nil
	})
	if err != nil {
		return 0, err
	}
	var deleted atomic.Int64
	for _, t := range []struct{ table, prefix string }{
		{a.Tables.Ballots, version + "#"}, {a.Tables.Tallies, version + "#"}, {a.Tables.Tallies, "_rebuild#" + version + "#"},
	} {
		err := a.scanTable(ctx, t.table, t.prefix, func(items []map[string]types.AttributeValue) error {
			n, err := a.deleteItems(ctx, t.table, items)
			deleted.Add(int64(n))
			if progress != nil {
				progress(n)
			}
			return err
		})
		if err != nil {
			return deleted.Load(), err
		}
	}
	_, err = a.Registry.Update(ctx, func(r *dynamo.Registry) error {
		v := r.Versions[version]
		v.State = dynamo.StateRetired
		r.Versions[version] = v
		return nil
	})
	return deleted.Load(), err
}

// scanTable scans table in 8 parallel segments, keeping items whose pk
// starts with prefix (all when empty), and hands each page to page.
func (a *Admin) scanTable(ctx context.Context, table, prefix string, page func([]map[string]types.AttributeValue) error) error {
	const segments = 8
	errs := make([]error, segments)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for seg := range segments {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := &dynamodb.ScanInput{TableName: aws.String(table), Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(segments), Limit: aws.Int32(5000)}
			if prefix != "" {
				in.FilterExpression = aws.String("begins_with(#pk, :prefix)")
				in.ExpressionAttributeNames = map[string]string{"#pk": dynamo.AttrPK}
				in.ExpressionAttributeValues = map[string]types.AttributeValue{":prefix": &types.AttributeValueMemberS{Value: prefix}}
			}
			p := dynamodb.NewScanPaginator(a.DB, in)
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					errs[seg] = fmt.Errorf("dynamodb: scan %s: %w", table, err)
					return
				}
				mu.Lock()
				err = page(out.Items)
				mu.Unlock()
				if err != nil {
					errs[seg] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (a *Admin) deleteItems(ctx context.Context, table string, items []map[string]types.AttributeValue) (int, error) {
	deleted := 0
	for start := 0; start < len(items); start += 25 {
		var reqs []types.WriteRequest
		for _, item := range items[start:min(start+25, len(items))] {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: map[string]types.AttributeValue{dynamo.AttrPK: item[dynamo.AttrPK]}}})
		}
		pending := map[string][]types.WriteRequest{table: reqs}
		for attempt := 0; len(pending[table]) > 0; attempt++ {
			if attempt > 0 {
				time.Sleep(time.Duration(min(attempt, 20)) * 50 * time.Millisecond)
			}
			out, err := a.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return deleted, fmt.Errorf("dynamodb: delete from %s: %w", table, err)
			}
			deleted += len(pending[table]) - len(out.UnprocessedItems[table])
			pending = out.UnprocessedItems
		}
	}
	return deleted, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
