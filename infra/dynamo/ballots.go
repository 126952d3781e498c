package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

type ballotItem struct {
	PK      string                 `dynamodbav:"pk"`
	VoterID string                 `dynamodbav:"voterId"`
	TitleID string                 `dynamodbav:"titleId"`
	Version int64                  `dynamodbav:"ver"`
	Step    string                 `dynamodbav:"step"`
	Aspects map[string]currentItem `dynamodbav:"aspects"`
	Prev    map[string]string      `dynamodbav:"prev,omitempty"`
	Fences  []string               `dynamodbav:"fences,stringset,omitempty"`
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

// Create stores new ballots in transactions of up to 100 puts, each on
// condition that the ballot does not exist. A transaction cancelled by
// existing ballots is retried without them; their indexes are returned.
func (s *BallotStore) Create(ctx context.Context, bs []projections.Ballot) ([]int, error) {
	var existing []int
	for start := 0; start < len(bs); start += 100 {
		chunk := make([]int, 0, 100)
		for i := start; i < min(start+100, len(bs)); i++ {
			chunk = append(chunk, i)
		}
		for len(chunk) > 0 {
			items := make([]types.TransactWriteItem, len(chunk))
			for j, i := range chunk {
				av, err := marshalBallot(s.key(bs[i].TitleID, bs[i].VoterID), bs[i])
				if err != nil {
					return nil, err
				}
				items[j] = types.TransactWriteItem{Put: &types.Put{
					TableName: aws.String(s.table), Item: av,
					ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
					ExpressionAttributeNames: map[string]string{"#pk": AttrPK},
				}}
			}
			_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
				TransactItems:      items,
				ClientRequestToken: aws.String(createToken(bs, chunk)),
			})
			if err == nil {
				break
			}
			var tc *types.TransactionCanceledException
			if !errors.As(err, &tc) || len(tc.CancellationReasons) != len(chunk) {
				return nil, fmt.Errorf("dynamodb: create %d ballots: %w", len(chunk), err)
			}
			var rest []int
			for j, r := range tc.CancellationReasons {
				switch aws.ToString(r.Code) {
				case "ConditionalCheckFailed":
					existing = append(existing, chunk[j])
				case "None", "":
					rest = append(rest, chunk[j])
				default:
					return nil, fmt.Errorf("dynamodb: create %d ballots: %s: %w", len(chunk), aws.ToString(r.Code), err)
				}
			}
			chunk = rest
		}
	}
	slices.Sort(existing)
	return existing, nil
}

// createToken makes the transaction idempotent for the SDK's own retries:
// the same ballots, stamped by the same step, give the same token.
func createToken(bs []projections.Ballot, chunk []int) string {
	h := sha256.New()
	for _, i := range chunk {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", bs[i].Step, bs[i].TitleID, bs[i].VoterID)
	}
	return hex.EncodeToString(h.Sum(nil))[:36]
}

func marshalBallot(pk string, b projections.Ballot) (map[string]types.AttributeValue, error) {
	item := ballotItem{
		PK: pk, VoterID: b.VoterID, TitleID: b.TitleID,
		Version: b.Version, Step: b.Step, Aspects: map[string]currentItem{}, Prev: b.Prev, Fences: b.Fences,
	}
	for a, c := range b.Aspects {
		item.Aspects[a] = currentItem{Choice: c.Choice, RecordedAt: c.RecordedAt, VoteID: c.VoteID}
	}
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return nil, fmt.Errorf("marshal ballot: %w", err)
	}
	return av, nil
}

// Save writes b if the stored ballot is at b.Version-1.
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
		in.ConditionExpression = aws.String("#ver = :prev AND NOT contains(#fences, :step)")
		in.ExpressionAttributeNames = map[string]string{"#ver": "ver", "#fences": "fences"}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{
			":prev": &types.AttributeValueMemberN{Value: strconv.FormatInt(b.Version-1, 10)},
			":step": &types.AttributeValueMemberS{Value: b.Step},
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
		VoterID: bi.VoterID, TitleID: bi.TitleID, Version: bi.Version, Step: bi.Step, Fences: bi.Fences,
		Aspects: make(map[string]projections.Current, len(bi.Aspects)), Prev: bi.Prev,
	}
	for a, c := range bi.Aspects {
		b.Aspects[a] = projections.Current{Choice: c.Choice, RecordedAt: c.RecordedAt, VoteID: c.VoteID}
	}
	return b, nil
}
