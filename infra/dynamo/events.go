package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
)

// EventStore appends vote events to the event table, each submission's
// votes once: one conditional put of one item per submission, on its key,
// under the partition key of the voter's tally cell.
type EventStore struct {
	client *dynamodb.Client
	table  string
}

// NewEventStore uses table through client.
func NewEventStore(client *dynamodb.Client, table string) *EventStore {
	return &EventStore{client: client, table: table}
}

// Append stores votes, the events of one submission (one voter, one title,
// one receive time), as one item, unless it is stored already. A
// redelivered duplicate is Duplicate; other votes under the same key are
// Conflict. It is safe to retry after any error, including one raised
// after DynamoDB applied the write.
func (s *EventStore) Append(ctx context.Context, votes []domain.VoteCast) (domain.Outcome, error) {
	item, err := SubmissionItem(votes)
	if err != nil {
		return 0, err
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": AttrVoteID},
	})
	if err == nil {
		return domain.Appended, nil
	}
	id := item[AttrVoteID].(*types.AttributeValueMemberS).Value
	if !conditionFailed(err) {
		return 0, fmt.Errorf("dynamodb: append submission %s (vote %s): %w", votes[0].SubmissionID, id, err)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{AttrCell: item[AttrCell], AttrVoteID: item[AttrVoteID]},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("dynamodb: read stored submission %s (vote %s): %w", votes[0].SubmissionID, id, err)
	}
	stored, err := DecodeEvent(out.Item)
	if err != nil || !sameVotes(stored, votes) {
		return domain.Conflict, nil
	}
	return domain.Duplicate, nil
}

// sameVotes reports whether a and b are the same votes (SameVote), in any
// order.
func sameVotes(a, b []domain.VoteCast) bool {
	if len(a) != len(b) {
		return false
	}
	byID := make(map[string]domain.VoteCast, len(a))
	for _, v := range a {
		byID[v.VoteID] = v
	}
	for _, v := range b {
		if o, ok := byID[v.VoteID]; !ok || !o.SameVote(v) {
			return false
		}
	}
	return true
}

// SubmissionItem is the event table item of one submission's votes, at
// version domain.EventSchema: the fields they share once, and the votes as
// "aspect=choice" pairs sorted by aspect. Vote IDs follow from the rest
// (domain.VoteID), so they are not stored; the sort key is the least of
// them. votes must share submission, voter, title and receive time.
func SubmissionItem(votes []domain.VoteCast) (map[string]types.AttributeValue, error) {
	if len(votes) == 0 {
		return nil, errors.New("dynamodb: a submission item needs votes")
	}
	first := votes[0]
	pairs := make([]string, len(votes))
	id := first.VoteID
	for i, v := range votes {
		if v.SubmissionID != first.SubmissionID || v.VoterID != first.VoterID || v.TitleID != first.TitleID ||
			v.RecordedAt != first.RecordedAt || v.OccurredAt != first.OccurredAt {
			return nil, fmt.Errorf("dynamodb: vote %s is not of submission %s", v.VoteID, first.SubmissionID)
		}
		if strings.ContainsAny(v.Aspect+v.Choice, "=;") {
			return nil, fmt.Errorf("dynamodb: vote %s: aspect %q or choice %q holds = or ;", v.VoteID, v.Aspect, v.Choice)
		}
		pairs[i] = v.Aspect + "=" + v.Choice
		id = min(id, v.VoteID)
	}
	slices.Sort(pairs)
	item := map[string]types.AttributeValue{
		AttrCell:         &types.AttributeValueMemberS{Value: first.Cell().String()},
		AttrVoteID:       &types.AttributeValueMemberS{Value: id},
		AttrSchema:       &types.AttributeValueMemberN{Value: strconv.Itoa(domain.EventSchema)},
		AttrSubmissionID: &types.AttributeValueMemberS{Value: first.SubmissionID},
		AttrVoterID:      &types.AttributeValueMemberS{Value: first.VoterID},
		AttrTitleID:      &types.AttributeValueMemberS{Value: first.TitleID},
		AttrVotes:        &types.AttributeValueMemberS{Value: strings.Join(pairs, ";")},
		AttrRecordedAt:   &types.AttributeValueMemberN{Value: strconv.FormatInt(first.RecordedAt, 10)},
	}
	if first.OccurredAt != "" {
		item[AttrOccurredAt] = &types.AttributeValueMemberS{Value: first.OccurredAt}
	}
	return item, nil
}

// EventItem is the version 1 item of e, one vote per item: how the table
// stored votes before version 2, kept for tests and fixtures that must
// hold such items.
func EventItem(e domain.VoteCast) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		AttrCell:         &types.AttributeValueMemberS{Value: e.Cell().String()},
		AttrVoteID:       &types.AttributeValueMemberS{Value: e.VoteID},
		AttrSchema:       &types.AttributeValueMemberN{Value: "1"},
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

// DecodeEvent reads an event table item, of any version, into its votes
// and validates them.
func DecodeEvent(item map[string]types.AttributeValue) ([]domain.VoteCast, error) {
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

// DecodeEventFields builds an item's votes from a lookup of its
// attributes' string or number values, and validates them: one vote for a
// version 1 item, the submission's votes for version 2. Stream consumers,
// which see other attribute types than the SDK's, decode through it too.
// The schema version is read first: an item of a version newer than this
// code reads gives an error wrapping domain.ErrNewerVersion, whatever its
// other attributes hold.
func DecodeEventFields(get func(name string) (string, bool)) ([]domain.VoteCast, error) {
	if v, ok := get(AttrSchema); ok {
		if n, err := strconv.Atoi(v); err == nil {
			if err := domain.CheckEventSchema(n); errors.Is(err, domain.ErrNewerVersion) {
				return nil, err
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
	key := str(AttrVoteID)
	schema := str(AttrSchema)
	e.SubmissionID = str(AttrSubmissionID)
	e.VoterID = str(AttrVoterID)
	e.TitleID = str(AttrTitleID)
	recorded := str(AttrRecordedAt)
	e.OccurredAt, _ = get(AttrOccurredAt)
	var err error
	if e.Schema, err = strconv.Atoi(schema); err != nil && schema != "" {
		return nil, fmt.Errorf("event %s: schema %q: %w", key, schema, err)
	}
	var pairs []string
	if e.Schema == 1 {
		e.VoteID = key
		pairs = []string{str(AttrAspect) + "=" + str(AttrChoice)}
	} else {
		pairs = strings.Split(str(AttrVotes), ";")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("event %s: missing attributes %v", key, missing)
	}
	if e.RecordedAt, err = strconv.ParseInt(recorded, 10, 64); err != nil {
		return nil, fmt.Errorf("event %s: recordedAt %q: %w", key, recorded, err)
	}
	votes := make([]domain.VoteCast, 0, len(pairs))
	for _, p := range pairs {
		v := e
		var ok bool
		if v.Aspect, v.Choice, ok = strings.Cut(p, "="); !ok {
			return nil, fmt.Errorf("event %s: vote %q is not aspect=choice", key, p)
		}
		if e.Schema != 1 {
			v.VoteID = domain.VoteID(v.VoterID, v.TitleID, v.SubmissionID, v.Aspect)
		}
		if err := v.Validate(); err != nil {
			return nil, err
		}
		votes = append(votes, v)
	}
	if e.Schema != 1 {
		if err := checkSubmissionKey(key, votes); err != nil {
			return nil, err
		}
	}
	return votes, nil
}

// checkSubmissionKey holds a version 2 item to its sort key, the least of
// its vote IDs, and to one vote per aspect.
func checkSubmissionKey(key string, votes []domain.VoteCast) error {
	least := votes[0].VoteID
	aspects := map[string]bool{}
	for _, v := range votes {
		least = min(least, v.VoteID)
		if aspects[v.Aspect] {
			return fmt.Errorf("event %s: aspect %s voted twice", key, v.Aspect)
		}
		aspects[v.Aspect] = true
	}
	if least != key {
		return fmt.Errorf("event %s: key is not the least of its vote IDs (%s)", key, least)
	}
	return nil
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
			item, err := SubmissionItem([]domain.VoteCast{e})
			if err != nil {
				return err
			}
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
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
