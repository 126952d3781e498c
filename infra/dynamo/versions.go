package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain/lifecycle"
	"votes/internal/backoff"
)

// versionItem is how a lifecycle.Version is stored, inside the registry
// item. Attribute names and state strings are the registry's stored format.
type versionItem struct {
	State         string    `dynamodbav:"state"`
	Created       time.Time `dynamodbav:"created"`
	Completed     time.Time `dynamodbav:"completed,omitempty"`
	Promoted      time.Time `dynamodbav:"promoted,omitempty"`
	Superseded    time.Time `dynamodbav:"superseded,omitempty"`
	SupersededSeq int64     `dynamodbav:"supersededSeq,omitempty"`
	Deleted       time.Time `dynamodbav:"deleted,omitempty"`
	Events        int64     `dynamodbav:"events"`
	Segments      int       `dynamodbav:"segments"`
	Builder       string    `dynamodbav:"builder,omitempty"`
	BuilderLease  time.Time `dynamodbav:"builderLease,omitempty"`
	BuiltBy       string    `dynamodbav:"builtBy,omitempty"`
}

// registryItem is how a lifecycle.Registry is stored.
type registryItem struct {
	Active     string                 `dynamodbav:"active"`
	Versions   map[string]versionItem `dynamodbav:"versions"`
	Promotions int64                  `dynamodbav:"promotions,omitempty"`
	Rev        int64                  `dynamodbav:"rev"`
}

func toItem(r lifecycle.Registry) registryItem {
	out := registryItem{Active: r.Active, Versions: make(map[string]versionItem, len(r.Versions)), Promotions: r.Promotions, Rev: r.Rev}
	for name, v := range r.Versions {
		out.Versions[name] = versionItem{
			State: string(v.State), Created: v.Created, Completed: v.Completed, Promoted: v.Promoted,
			Superseded: v.Superseded, SupersededSeq: v.SupersededSeq, Deleted: v.Deleted,
			Events: v.Events, Segments: v.Segments, Builder: v.Builder, BuilderLease: v.BuilderLease, BuiltBy: v.BuiltBy,
		}
	}
	return out
}

func fromItem(it registryItem) lifecycle.Registry {
	out := lifecycle.Registry{Active: it.Active, Versions: make(map[string]lifecycle.Version, len(it.Versions)), Promotions: it.Promotions, Rev: it.Rev}
	for name, v := range it.Versions {
		out.Versions[name] = lifecycle.Version{
			Name: name, State: lifecycle.State(v.State), Created: v.Created, Completed: v.Completed, Promoted: v.Promoted,
			Superseded: v.Superseded, SupersededSeq: v.SupersededSeq, Deleted: v.Deleted,
			Events: v.Events, Segments: v.Segments, Builder: v.Builder, BuilderLease: v.BuilderLease, BuiltBy: v.BuiltBy,
		}
	}
	return out
}

// The registry is one item of the tallies table; no cell key starts with '_'.
const registryKey = internalPrefix + "registry"

// Registries keeps the registry of projection versions in the tallies table:
// storage only; the rules of a version's life are lifecycle's.
type Registries struct {
	client *dynamodb.Client
	table  string
	// Retry paces the attempts at an update that lost to a concurrent
	// one. Updates are rare (a command, a rebuild's heartbeat), so losing
	// 30 times in a row, the default, means something keeps rewriting
	// the registry.
	Retry backoff.Policy
}

// NewRegistries keeps the registry in table.
func NewRegistries(client *dynamodb.Client, table string) *Registries {
	return &Registries{client: client, table: table, Retry: backoff.Policy{Base: 10 * time.Millisecond, Max: time.Second, Attempts: 30}}
}

// Load reads the registry; consistent reads see every update made before.
// An empty table holds lifecycle.Initial.
func (r *Registries) Load(ctx context.Context, consistent bool) (lifecycle.Registry, error) {
	out, err := r.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(r.table), ConsistentRead: aws.Bool(consistent),
		Key: map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: registryKey}},
	})
	if err != nil {
		return lifecycle.Registry{}, fmt.Errorf("dynamodb: read version registry from %s: %w", r.table, err)
	}
	if out.Item == nil {
		return lifecycle.Initial(), nil
	}
	var it registryItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return lifecycle.Registry{}, fmt.Errorf("dynamodb: decode version registry from %s: %w", r.table, err)
	}
	return fromItem(it), nil
}

// Update applies change, typically one lifecycle transition, to the
// registry and stores it with a put conditional on the revision it read,
// so that two updates never both apply to the same revision. On a
// concurrent update, or when it cannot tell whether its put was applied,
// it reads the registry again and reapplies change: change must recognise
// its own earlier success (the lifecycle transitions do). An error from
// change is returned as it is and nothing is stored. It gives up, wrapping
// backoff.ErrExhausted, after Retry's attempts all lost to other
// updates, and when ctx ends.
func (r *Registries) Update(ctx context.Context, change func(*lifecycle.Registry) error) (lifecycle.Registry, error) {
	for attempt := 1; ; attempt++ {
		reg, err := r.Load(ctx, true)
		if err != nil {
			return lifecycle.Registry{}, err
		}
		prev := reg.Rev
		if err := change(&reg); err != nil {
			return lifecycle.Registry{}, err
		}
		reg.Rev = prev + 1
		item, err := attributevalue.MarshalMap(toItem(reg))
		if err != nil {
			return lifecycle.Registry{}, fmt.Errorf("dynamodb: encode version registry: %w", err)
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
			return lifecycle.Registry{}, fmt.Errorf("dynamodb: update version registry in %s: %w", r.table, err)
		}
		// Another update came first, or an earlier try of this one was
		// applied: read again and reapply, which the changes tolerate.
		if err := r.Retry.Wait(ctx, attempt); err != nil {
			return lifecycle.Registry{}, fmt.Errorf("dynamodb: update version registry in %s: %d attempts lost to concurrent updates: %w", r.table, attempt, err)
		}
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
