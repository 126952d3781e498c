package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/projections"
)

// BallotStore keeps the ballots of one projection version.
type BallotStore struct {
	client  *dynamodb.Client
	table   string
	version string
}

var _ projections.Ballots = (*BallotStore)(nil)

// NewBallotStore keeps the ballots of projection version in table.
func NewBallotStore(client *dynamodb.Client, table, version string) *BallotStore {
	return &BallotStore{client: client, table: table, version: version}
}

// ballotItem is a ballot as stored. Items of the previous release also
// hold step, prev and fences, which are read past and dropped on the next
// save.
type ballotItem struct {
	PK      string                 `dynamodbav:"pk"`
	VoterID string                 `dynamodbav:"voterId"`
	TitleID string                 `dynamodbav:"titleId"`
	Version int64                  `dynamodbav:"ver"`
	Aspects map[string]currentItem `dynamodbav:"aspects"`
	// Past votes per aspect, newest first; absent when none.
	Past map[string][]currentItem `dynamodbav:"past,omitempty"`
}

type currentItem struct {
	Choice     string `dynamodbav:"c"`
	RecordedAt int64  `dynamodbav:"at"`
	VoteID     string `dynamodbav:"id"`
}

// The title comes before the voter: title IDs cannot hold '#', so the key
// stays unambiguous whatever an authenticated voter ID holds.
func (s *BallotStore) key(titleID, voterID string) string {
	return versionPrefix(s.version) + titleID + keySep + voterID
}

func (s *BallotStore) keyAV(titleID, voterID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: s.key(titleID, voterID)}}
}

// Load reads the ballots of voterIDs on titleID with strongly consistent reads.
func (s *BallotStore) Load(ctx context.Context, titleID string, voterIDs []string) (map[string]projections.Ballot, error) {
	keys := make([]map[string]types.AttributeValue, len(voterIDs))
	for i, v := range voterIDs {
		keys[i] = s.keyAV(titleID, v)
	}
	items, err := batchGet(ctx, s.client, s.table, keys, true)
	if err != nil {
		return nil, fmt.Errorf("load ballots on %s: %w", titleID, err)
	}
	out := make(map[string]projections.Ballot, len(items))
	for _, item := range items {
		b, err := decodeBallot(item)
		if err != nil {
			return nil, err
		}
		out[b.VoterID] = b
	}
	return out, nil
}

// LoadAll reads the ballots of keys with strongly consistent reads, up to
// 100 in one BatchGetItem.
func (s *BallotStore) LoadAll(ctx context.Context, keys []projections.BallotKey) (map[projections.BallotKey]projections.Ballot, error) {
	keys = slices.Compact(slices.SortedFunc(slices.Values(keys), func(a, b projections.BallotKey) int {
		return cmp.Or(cmp.Compare(a.TitleID, b.TitleID), cmp.Compare(a.VoterID, b.VoterID))
	}))
	avs := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		avs[i] = s.keyAV(k.TitleID, k.VoterID)
	}
	items, err := batchGet(ctx, s.client, s.table, avs, true)
	if err != nil {
		return nil, fmt.Errorf("load ballots: %w", err)
	}
	out := make(map[projections.BallotKey]projections.Ballot, len(items))
	for _, item := range items {
		b, err := decodeBallot(item)
		if err != nil {
			return nil, err
		}
		out[projections.BallotKey{TitleID: b.TitleID, VoterID: b.VoterID}] = b
	}
	return out, nil
}

func marshalBallot(pk string, b projections.Ballot) (map[string]types.AttributeValue, error) {
	item := ballotItem{
		PK: pk, VoterID: b.VoterID, TitleID: b.TitleID,
		Version: b.Version, Aspects: map[string]currentItem{},
	}
	for a, c := range b.Aspects {
		item.Aspects[a] = currentItem(c)
	}
	for a, past := range b.Past {
		if len(past) == 0 {
			continue
		}
		if item.Past == nil {
			item.Past = map[string][]currentItem{}
		}
		for _, c := range past {
			item.Past[a] = append(item.Past[a], currentItem(c))
		}
	}
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return nil, fmt.Errorf("marshal ballot: %w", err)
	}
	return av, nil
}

// Save writes b if the stored ballot is at b.Version-1 (none when
// b.Version is 1), with a conditional PutItem. When the condition fails it
// reads the ballot back: stored exactly as b, an earlier try of this call
// was applied, and that is a success; anything else is ErrStale.
func (s *BallotStore) Save(ctx context.Context, b projections.Ballot) error {
	// Errors name the title, not the ballot's key: it holds the voter ID,
	// and errors reach the logs.
	pk := s.key(b.TitleID, b.VoterID)
	av, err := marshalBallot(pk, b)
	if err != nil {
		return err
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: av}
	if b.Version <= 1 {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		in.ExpressionAttributeNames = map[string]string{"#pk": AttrPK}
	} else {
		in.ConditionExpression = aws.String("#ver = :prev")
		in.ExpressionAttributeNames = map[string]string{"#ver": "ver"}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":prev": &types.AttributeValueMemberN{Value: strconv.FormatInt(b.Version-1, 10)},
		}
	}
	_, err = s.client.PutItem(ctx, in)
	if err == nil {
		return nil
	}
	if !conditionFailed(err) {
		return fmt.Errorf("dynamodb: save a ballot on %s: %w", b.TitleID, err)
	}
	// Either an earlier try of this very call was applied, or the ballot moved on.
	out, gerr := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: s.keyAV(b.TitleID, b.VoterID), ConsistentRead: aws.Bool(true),
	})
	if gerr != nil {
		return fmt.Errorf("dynamodb: reread a ballot on %s: %w", b.TitleID, gerr)
	}
	if out.Item != nil {
		if stored, derr := decodeBallot(out.Item); derr == nil && stored.Same(b) {
			return nil
		}
	}
	return fmt.Errorf("dynamodb: save a ballot on %s at version %d: %w", b.TitleID, b.Version, projections.ErrStale)
}

func decodeBallot(item map[string]types.AttributeValue) (projections.Ballot, error) {
	var bi ballotItem
	if err := attributevalue.UnmarshalMap(item, &bi); err != nil {
		return projections.Ballot{}, fmt.Errorf("decode ballot: %w", err)
	}
	if bi.VoterID == "" || bi.TitleID == "" {
		return projections.Ballot{}, errors.New("decode ballot: no voter or title")
	}
	b := projections.Ballot{
		VoterID: bi.VoterID, TitleID: bi.TitleID, Version: bi.Version,
		Aspects: make(map[string]projections.Current, len(bi.Aspects)),
	}
	for a, c := range bi.Aspects {
		b.Aspects[a] = projections.Current(c)
	}
	for a, past := range bi.Past {
		if b.Past == nil {
			b.Past = map[string][]projections.Current{}
		}
		for _, c := range past {
			b.Past[a] = append(b.Past[a], projections.Current(c))
		}
	}
	return b, nil
}
