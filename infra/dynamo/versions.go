package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// States of a projection version.
const (
	StateBuilding = "building" // a rebuild is filling it; the live projector writes it too
	StateReady    = "ready"    // rebuilt and kept current by the live projector; can be promoted
	StateActive   = "active"   // queries read it
	StateRetiring = "retiring" // its items are being deleted
	StateRetired  = "retired"  // no longer written nor read
)

// Version is one projection version in the registry.
type Version struct {
	Name      string    `dynamodbav:"-"`
	State     string    `dynamodbav:"state"`
	Created   time.Time `dynamodbav:"created"`
	Completed time.Time `dynamodbav:"completed,omitempty"`
	Promoted  time.Time `dynamodbav:"promoted,omitempty"`
	// Events is how many events the rebuild read from the event table.
	Events   int64 `dynamodbav:"events"`
	Segments int   `dynamodbav:"segments"`
	// Builder holds the version while a rebuild runs, until BuilderLease.
	Builder      string    `dynamodbav:"builder,omitempty"`
	BuilderLease time.Time `dynamodbav:"builderLease,omitempty"`
}

// Written reports whether the live projector writes the version.
func (v Version) Written() bool {
	return v.State == StateActive || v.State == StateBuilding || v.State == StateReady
}

// Registry lists the projection versions and which one queries read.
type Registry struct {
	Active   string             `dynamodbav:"active"`
	Versions map[string]Version `dynamodbav:"versions"`
	Rev      int64              `dynamodbav:"rev"`
}

// WriteSet is the versions the live projector writes, in name order.
func (r Registry) WriteSet() []string {
	var out []string
	for name, v := range r.Versions {
		if v.Written() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Sorted lists the versions in numeric order.
func (r Registry) Sorted() []Version {
	names := slices.Collect(maps.Keys(r.Versions))
	slices.SortFunc(names, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
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

// The registry is one item of the tallies table; no cell key starts with '_'.
const registryKey = "_registry"

// DefaultRegistry is what an empty table means: version 1, active.
func DefaultRegistry() Registry {
	return Registry{Active: "1", Versions: map[string]Version{"1": {State: StateActive}}}
}

// Registries keeps the registry of projection versions in the tallies table.
type Registries struct {
	client *dynamodb.Client
	table  string
}

// NewRegistries keeps the registry in table.
func NewRegistries(client *dynamodb.Client, table string) *Registries {
	return &Registries{client: client, table: table}
}

// Load reads the registry; consistent reads see every update made before.
func (r *Registries) Load(ctx context.Context, consistent bool) (Registry, error) {
	out, err := r.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(r.table), ConsistentRead: aws.Bool(consistent),
		Key: map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: registryKey}},
	})
	if err != nil {
		return Registry{}, fmt.Errorf("dynamodb: read version registry from %s: %w", r.table, err)
	}
	if out.Item == nil {
		return DefaultRegistry(), nil
	}
	var reg Registry
	if err := attributevalue.UnmarshalMap(out.Item, &reg); err != nil {
		return Registry{}, fmt.Errorf("decode version registry: %w", err)
	}
	if reg.Versions == nil {
		reg.Versions = map[string]Version{}
	}
	return reg, nil
}

// Update applies change to the registry and stores it, retrying on
// concurrent updates. An error from change is returned as it is.
func (r *Registries) Update(ctx context.Context, change func(*Registry) error) (Registry, error) {
	for {
		reg, err := r.Load(ctx, true)
		if err != nil {
			return Registry{}, err
		}
		prev := reg.Rev
		reg.Versions = maps.Clone(reg.Versions)
		if err := change(&reg); err != nil {
			return Registry{}, err
		}
		reg.Rev = prev + 1
		item, err := attributevalue.MarshalMap(reg)
		if err != nil {
			return Registry{}, fmt.Errorf("encode version registry: %w", err)
		}
		item[AttrPK] = &types.AttributeValueMemberS{Value: registryKey}
		in := &dynamodb.PutItemInput{TableName: aws.String(r.table), Item: item, ExpressionAttributeNames: map[string]string{"#rev": "rev"}}
		if prev == 0 {
			in.ConditionExpression = aws.String("attribute_not_exists(#rev)")
		} else {
			in.ConditionExpression = aws.String("#rev = :rev")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":rev": &types.AttributeValueMemberN{Value: strconv.FormatInt(prev, 10)}}
		}
		_, err = r.client.PutItem(ctx, in)
		if err == nil {
			return reg, nil
		}
		if !conditionFailed(err) {
			return Registry{}, fmt.Errorf("dynamodb: update version registry: %w", err)
		}
		// Another update came first, or an earlier try of this one was
		// applied: read again and reapply, which the changes tolerate.
	}
}

// WriteSet is the versions the live projector writes now, read consistently
// so that a version a rebuild just added is written from the next batch on.
func (r *Registries) WriteSet(ctx context.Context) ([]string, error) {
	reg, err := r.Load(ctx, true)
	if err != nil {
		return nil, err
	}
	return reg.WriteSet(), nil
}

// Active is the version queries read.
func (r *Registries) Active(ctx context.Context) (string, error) {
	reg, err := r.Load(ctx, false)
	if err != nil {
		return "", err
	}
	return reg.Active, nil
}

// ErrNoSuchVersion is returned for a version the registry does not list.
var ErrNoSuchVersion = errors.New("no such projection version")
