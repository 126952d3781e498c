package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
)

// EventStore appends vote events to the event table, each once: a
// conditional put on the vote ID, under the partition key of the vote's
// tally cell.
type EventStore struct {
	client *dynamodb.Client
	table  string
}

// NewEventStore uses table through client.
func NewEventStore(client *dynamodb.Client, table string) *EventStore {
	return &EventStore{client: client, table: table}
}

// Append stores e unless its vote ID is stored already. A redelivered
// duplicate is Duplicate; a different vote under the same ID is Conflict. It
// is safe to retry after any error, including one raised after DynamoDB
// applied the write.
func (s *EventStore) Append(ctx context.Context, e domain.VoteCast) (domain.Outcome, error) {
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     EventItem(e),
		ConditionExpression:      aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": AttrVoteID},
	})
	if err == nil {
		return domain.Appended, nil
	}
	if !conditionFailed(err) {
		return 0, fmt.Errorf("dynamodb: append vote %s: %w", e.VoteID, err)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            eventKey(e),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("dynamodb: read stored vote %s: %w", e.VoteID, err)
	}
	stored, err := DecodeEvent(out.Item)
	if err != nil {
		return domain.Conflict, nil
	}
	if stored.SameVote(e) {
		return domain.Duplicate, nil
	}
	return domain.Conflict, nil
}

func eventKey(e domain.VoteCast) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrCell:   &types.AttributeValueMemberS{Value: e.Cell().String()},
		AttrVoteID: &types.AttributeValueMemberS{Value: e.VoteID},
	}
}

// EventItem is the event table item of e.
func EventItem(e domain.VoteCast) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		AttrCell:         &types.AttributeValueMemberS{Value: e.Cell().String()},
		AttrVoteID:       &types.AttributeValueMemberS{Value: e.VoteID},
		AttrSchema:       &types.AttributeValueMemberN{Value: strconv.Itoa(e.Schema)},
		AttrSubmissionID: &types.AttributeValueMemberS{Value: e.SubmissionID},
		AttrVoterID:      &types.AttributeValueMemberS{Value: e.VoterID},
		AttrTitleID:      &types.AttributeValueMemberS{Value: e.TitleID},
		AttrAspect:       &types.AttributeValueMemberS{Value: e.Aspect},
		AttrChoice:       &types.AttributeValueMemberS{Value: e.Choice},
		AttrRecordedAt:   &types.AttributeValueMemberN{Value: strconv.FormatInt(e.RecordedAt, 10)},
	}
	if e.OccurredAt != "" {
		item[AttrOccurredAt] = &types.AttributeValueMemberS{Value: e.OccurredAt}
	}
	return item
}

// DecodeEvent reads an event table item and validates it.
func DecodeEvent(item map[string]types.AttributeValue) (domain.VoteCast, error) {
	return DecodeEventFields(func(name string) (string, bool) {
		switch v := item[name].(type) {
		case *types.AttributeValueMemberS:
			return v.Value, true
		case *types.AttributeValueMemberN:
			return v.Value, true
		}
		return "", false
	})
}

// DecodeEventFields builds an event from a lookup of its attributes' string
// or number values, and validates it. Stream consumers, which see other
// attribute types than the SDK's, decode through it too. The schema version
// is read first: an event of a version newer than this code reads gives an
// error wrapping domain.ErrNewerVersion, whatever its other attributes hold.
func DecodeEventFields(get func(name string) (string, bool)) (domain.VoteCast, error) {
	if v, ok := get(AttrSchema); ok {
		if n, err := strconv.Atoi(v); err == nil {
			if err := domain.CheckSchema(n); errors.Is(err, domain.ErrNewerVersion) {
				return domain.VoteCast{}, err
			}
		}
	}
	var e domain.VoteCast
	var missing []string
	str := func(name string) string {
		v, ok := get(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	}
	e.VoteID = str(AttrVoteID)
	schema := str(AttrSchema)
	e.SubmissionID = str(AttrSubmissionID)
	e.VoterID = str(AttrVoterID)
	e.TitleID = str(AttrTitleID)
	e.Aspect = str(AttrAspect)
	e.Choice = str(AttrChoice)
	recorded := str(AttrRecordedAt)
	e.OccurredAt, _ = get(AttrOccurredAt)
	if len(missing) > 0 {
		return domain.VoteCast{}, fmt.Errorf("event %s: missing attributes %v", e.VoteID, missing)
	}
	var err error
	if e.Schema, err = strconv.Atoi(schema); err != nil {
		return domain.VoteCast{}, fmt.Errorf("event %s: schema %q: %w", e.VoteID, schema, err)
	}
	if e.RecordedAt, err = strconv.ParseInt(recorded, 10, 64); err != nil {
		return domain.VoteCast{}, fmt.Errorf("event %s: recordedAt %q: %w", e.VoteID, recorded, err)
	}
	if err := e.Validate(); err != nil {
		return domain.VoteCast{}, err
	}
	return e, nil
}

// Load writes events with BatchWriteItem, 25 to a call, retrying the
// items DynamoDB leaves unprocessed: a fixture loader, not an append.
// It writes unconditionally (an event already stored is overwritten,
// with itself when its vote ID is stored already, since vote IDs follow
// from content), and on kumo BatchWriteItem emits no stream records, so
// only a rebuild folds what it writes.
func (s *EventStore) Load(ctx context.Context, events []domain.VoteCast) error {
	for start := 0; start < len(events); start += 25 {
		reqs := make([]types.WriteRequest, 0, 25)
		for _, e := range events[start:min(start+25, len(events))] {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: EventItem(e)}})
		}
		pending := map[string][]types.WriteRequest{s.table: reqs}
		for attempt := 0; len(pending[s.table]) > 0; attempt++ {
			if attempt > 0 {
				if err := batchRetry.Wait(ctx, attempt); err != nil {
					return fmt.Errorf("dynamodb: load events into %s: %w", s.table, err)
				}
			}
			out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("dynamodb: load events into %s: %w", s.table, err)
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}
