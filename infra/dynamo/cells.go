package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/projections"
)

// Attributes of a tally cell item besides its key.
const (
	attrCellVersion = "ver"  // steps committed on the cell; absent before the first
	attrRedo        = "redo" // the last committed step's redo log, encoded by encodeRedo
	countPrefix     = "n_"   // n_<aspect>_<choice>

	// Attributes of the previous release's step protocol. A cell with a
	// step of that release in flight cannot be finished by this one. A
	// cell's first commit here marks it as in flight with a step of its
	// own, oldReleaseFence, whose lease never runs out: a projector of the
	// previous release still running finds the cell busy, waits its while
	// and gives the cell up (its records are retried), instead of writing
	// a step this release does not see.
	attrOldStepID     = "stepId"
	attrOldStepExpiry = "stepExpires"
	oldReleaseFence   = "~"
	fenceExpiry       = "9999999999999" // Unix ms, the year 2286
)

// ErrOldStep means a cell has a step of the previous release in flight,
// which this release cannot finish.
var ErrOldStep = errors.New("the cell has a step of the previous release in flight: finish it with the previous release, or rebuild a new version")

// CellStore keeps the tally cells of one projection version: one item per
// title and shard, holding counts as n_<aspect>_<choice> numbers, the
// number of steps committed on it and the last one's redo log.
type CellStore struct {
	client  *dynamodb.Client
	table   string
	version string
}

var _ projections.Cells = (*CellStore)(nil)

// NewCellStore keeps the cells of projection version in table.
func NewCellStore(client *dynamodb.Client, table, version string) *CellStore {
	return &CellStore{client: client, table: table, version: version}
}

func (s *CellStore) key(c domain.Cell) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: versionPrefix(s.version) + c.String()}}
}

// Read reads the cell's version and redo log with a strongly consistent
// read. A cell of the previous release with no step in flight reads as
// version 0 with no log; one with a step in flight is an ErrOldStep.
func (s *CellStore) Read(ctx context.Context, cell domain.Cell) (projections.CellState, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: s.key(cell), ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#ver, #redo, #sid"),
		ExpressionAttributeNames: map[string]string{"#ver": attrCellVersion, "#redo": attrRedo, "#sid": attrOldStepID},
	})
	if err != nil {
		return projections.CellState{}, fmt.Errorf("dynamodb: read cell %s: %w", cell, err)
	}
	return decodeCell(cell, out.Item)
}

// ReadAll reads the cells' versions and redo logs with strongly consistent
// reads, up to 100 in one BatchGetItem.
func (s *CellStore) ReadAll(ctx context.Context, cells []domain.Cell) (map[domain.Cell]projections.CellState, error) {
	byKey := make(map[string]domain.Cell, len(cells))
	keys := make([]map[string]types.AttributeValue, 0, len(cells))
	for _, c := range cells {
		k := s.key(c)
		pk := k[AttrPK].(*types.AttributeValueMemberS).Value
		if _, dup := byKey[pk]; dup {
			continue
		}
		byKey[pk] = c
		keys = append(keys, k)
	}
	items, err := batchGet(ctx, s.client, s.table, keys, true)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: read cells: %w", err)
	}
	out := make(map[domain.Cell]projections.CellState, len(cells))
	for _, c := range cells {
		out[c] = projections.CellState{}
	}
	for _, item := range items {
		pk, _ := item[AttrPK].(*types.AttributeValueMemberS)
		if pk == nil {
			return nil, errors.New("dynamodb: read cells: an item without its key")
		}
		c, ok := byKey[pk.Value]
		if !ok {
			return nil, fmt.Errorf("dynamodb: read cells: an item %q not asked for", pk.Value)
		}
		st, err := decodeCell(c, item)
		if err != nil {
			return nil, err
		}
		out[c] = st
	}
	return out, nil
}

func decodeCell(cell domain.Cell, item map[string]types.AttributeValue) (projections.CellState, error) {
	var st projections.CellState
	if sid, ok := item[attrOldStepID]; ok {
		if v, ok := sid.(*types.AttributeValueMemberS); !ok || v.Value != oldReleaseFence {
			return st, fmt.Errorf("dynamodb: cell %s: %w", cell, ErrOldStep)
		}
	}
	if v, ok := item[attrCellVersion].(*types.AttributeValueMemberN); ok {
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return st, fmt.Errorf("dynamodb: cell %s: version %q: %w", cell, v.Value, err)
		}
		st.Version = n
	}
	if v, ok := item[attrRedo].(*types.AttributeValueMemberS); ok {
		redo, err := decodeRedo(v.Value)
		if err != nil {
			return st, fmt.Errorf("dynamodb: cell %s: %w", cell, err)
		}
		st.Redo = redo
	}
	return st, nil
}

// Commit adds delta, sets the redo log and moves the version from expect
// to expect+1 in one UpdateItem, on condition the cell is at expect. When
// the condition fails it reads the cell: holding redo, the call had been
// applied (an SDK retry of it failed the condition), and that is a success.
func (s *CellStore) Commit(ctx context.Context, cell domain.Cell, expect int64, redo projections.Redo, delta projections.Counts) error {
	enc, err := encodeRedo(redo)
	if err != nil {
		return fmt.Errorf("dynamodb: commit on cell %s: %w", cell, err)
	}
	names := map[string]string{"#ver": attrCellVersion, "#redo": attrRedo}
	values := map[string]types.AttributeValue{
		":ver":  &types.AttributeValueMemberN{Value: strconv.FormatInt(expect+1, 10)},
		":redo": &types.AttributeValueMemberS{Value: enc},
	}
	var adds []string
	i := 0
	for aspect, m := range delta {
		for choice, n := range m {
			if n == 0 {
				continue
			}
			nk, vk := placeholder("#n", i), placeholder(":n", i)
			names[nk] = countPrefix + aspect + "_" + choice
			values[vk] = &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
			adds = append(adds, nk+" "+vk)
			i++
		}
	}
	set := "SET #ver = :ver, #redo = :redo"
	var cond string
	if expect == 0 {
		// The first commit: the cell is new, or a cell of the previous
		// release with no step in flight. It names the title and shard
		// (for listings) and fences off the previous release.
		set += ", #title = :title, #shard = :shard, #sid = :fence, #se = :never"
		names["#title"], names["#shard"], names["#sid"], names["#se"] = AttrTitleID, "shard", attrOldStepID, attrOldStepExpiry
		values[":title"] = &types.AttributeValueMemberS{Value: cell.TitleID}
		values[":shard"] = &types.AttributeValueMemberN{Value: strconv.Itoa(cell.Shard)}
		values[":fence"] = &types.AttributeValueMemberS{Value: oldReleaseFence}
		values[":never"] = &types.AttributeValueMemberN{Value: fenceExpiry}
		cond = "attribute_not_exists(#ver) AND attribute_not_exists(#sid)"
	} else {
		values[":expect"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(expect, 10)}
		cond = "#ver = :expect"
	}
	expr := set
	if len(adds) > 0 {
		expr = "ADD " + strings.Join(adds, ", ") + " " + set
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       s.key(cell),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err == nil {
		return nil
	}
	if !conditionFailed(err) {
		return fmt.Errorf("dynamodb: commit on cell %s at version %d: %w", cell, expect, err)
	}
	st, err := s.Read(ctx, cell)
	if err != nil {
		return err
	}
	if st.Redo.Step == redo.Step {
		return nil // an earlier try of this very call was applied
	}
	return fmt.Errorf("dynamodb: commit on cell %s at version %d, now at %d: %w", cell, expect, st.Version, projections.ErrCellMoved)
}

// A redo log is stored as one string, as small as it can be, since a
// write is billed on the larger of the item's sizes before and after it:
// the step ID, then (when the log has a trend, even an empty one) the
// trend's counts: minute, aspect, choice, cast and tally change per count
// (numbers in base 36); then a line per voter: the voter ID, the version,
// then aspect, choice, receive time (base 36) and vote ID per vote. Fields
// are separated by redoField. No field can hold either separator (IDs,
// aspects and choices are printable); the encoder refuses one that does.
const (
	redoLine  = "\n"
	redoField = "\x1f"
)

func encodeRedo(r projections.Redo) (string, error) {
	var b strings.Builder
	field := func(s string) error {
		if strings.Contains(s, redoLine) || strings.Contains(s, redoField) {
			return fmt.Errorf("encode redo log: %q holds a separator", s)
		}
		b.WriteString(redoField)
		b.WriteString(s)
		return nil
	}
	if strings.Contains(r.Step, redoLine) {
		return "", fmt.Errorf("encode redo log: step %q holds a separator", r.Step)
	}
	b.WriteString(r.Step)
	if r.Trend != nil {
		t, err := encodeTrend(r.Trend)
		if err != nil {
			return "", err
		}
		b.WriteString(redoField)
		b.WriteString(t)
	}
	for _, e := range r.Entries {
		b.WriteString(redoLine)
		if strings.Contains(e.VoterID, redoLine) || strings.Contains(e.VoterID, redoField) {
			return "", errors.New("encode redo log: a voter ID holds a separator")
		}
		b.WriteString(e.VoterID)
		if err := field(strconv.FormatInt(e.Version, 10)); err != nil {
			return "", err
		}
		for _, v := range e.Votes {
			for _, f := range []string{v.Aspect, v.Choice, strconv.FormatInt(v.RecordedAt, 36), v.VoteID} {
				if err := field(f); err != nil {
					return "", err
				}
			}
		}
	}
	return b.String(), nil
}

func decodeRedo(s string) (projections.Redo, error) {
	lines := strings.Split(s, redoLine)
	head := strings.Split(lines[0], redoField)
	r := projections.Redo{Step: head[0]}
	if len(head) > 1 {
		trend, err := decodeTrend(head[1:])
		if err != nil {
			return r, err
		}
		r.Trend = trend
	}
	for _, line := range lines[1:] {
		f := strings.Split(line, redoField)
		if len(f) < 2 || (len(f)-2)%4 != 0 {
			return r, fmt.Errorf("decode redo log: an entry of %d fields", len(f))
		}
		version, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return r, fmt.Errorf("decode redo log: version %q: %w", f[1], err)
		}
		e := projections.RedoEntry{VoterID: f[0], Version: version, Votes: make([]projections.Vote, 0, (len(f)-2)/4)}
		for v := f[2:]; len(v) > 0; v = v[4:] {
			at, err := strconv.ParseInt(v[2], 36, 64)
			if err != nil {
				return r, fmt.Errorf("decode redo log: time %q: %w", v[2], err)
			}
			e.Votes = append(e.Votes, projections.Vote{Aspect: v[0], Current: projections.Current{Choice: v[1], RecordedAt: at, VoteID: v[3]}})
		}
		r.Entries = append(r.Entries, e)
	}
	return r, nil
}

// encodeTrend is a trend as one string: per count, its minute, aspect,
// choice, votes cast and tally change (numbers in base 36), fields
// separated by redoField; the empty string for an empty trend. Keys are in
// order, so that a trend encodes the same every time.
func encodeTrend(t projections.Trend) (string, error) {
	keys := slices.SortedFunc(maps.Keys(t), func(a, b projections.TrendKey) int {
		return cmp.Or(cmp.Compare(a.Minute, b.Minute), strings.Compare(a.Aspect, b.Aspect), strings.Compare(a.Choice, b.Choice))
	})
	fields := make([]string, 0, 5*len(keys))
	for _, k := range keys {
		c := t[k]
		for _, f := range []string{k.Aspect, k.Choice} {
			if strings.Contains(f, redoLine) || strings.Contains(f, redoField) {
				return "", fmt.Errorf("encode trend: %q holds a separator", f)
			}
		}
		fields = append(fields, strconv.FormatInt(k.Minute, 36), k.Aspect, k.Choice, strconv.FormatInt(c.Cast, 36), strconv.FormatInt(c.Tally, 36))
	}
	return strings.Join(fields, redoField), nil
}

// decodeTrend reads a trend's fields (encodeTrend's string split at
// redoField): fields in fives, or one empty field for an empty trend.
func decodeTrend(f []string) (projections.Trend, error) {
	t := projections.Trend{}
	if len(f) == 1 && f[0] == "" {
		return t, nil
	}
	if len(f)%5 != 0 {
		return nil, fmt.Errorf("decode redo log: a trend of %d fields", len(f))
	}
	for ; len(f) > 0; f = f[5:] {
		var n [3]int64
		for i, x := range []string{f[0], f[3], f[4]} {
			v, err := strconv.ParseInt(x, 36, 64)
			if err != nil {
				return nil, fmt.Errorf("decode redo log: trend number %q: %w", x, err)
			}
			n[i] = v
		}
		t[projections.TrendKey{Minute: n[0], Aspect: f[1], Choice: f[2]}] = projections.TrendCount{Cast: n[1], Tally: n[2]}
	}
	return t, nil
}

// Tally sums a title's cells with eventually consistent reads.
func (s *CellStore) Tally(ctx context.Context, titleID string) (projections.Counts, error) {
	keys := make([]map[string]types.AttributeValue, domain.TallyShards)
	for i := range keys {
		keys[i] = s.key(domain.Cell{TitleID: titleID, Shard: i})
	}
	items, err := batchGet(ctx, s.client, s.table, keys, false)
	if err != nil {
		return nil, fmt.Errorf("tally %s: %w", titleID, err)
	}
	return sumCells(items), nil
}

func sumCells(items []map[string]types.AttributeValue) projections.Counts {
	out := projections.Counts{}
	for _, item := range items {
		out.Merge(CellCounts(item))
	}
	return out.Compact()
}

// CellCounts reads the counts of one tally cell item.
func CellCounts(item map[string]types.AttributeValue) projections.Counts {
	out := projections.Counts{}
	for name, av := range item {
		rest, ok := strings.CutPrefix(name, countPrefix)
		if !ok {
			continue
		}
		aspect, choice, ok := strings.Cut(rest, "_")
		n, isNum := av.(*types.AttributeValueMemberN)
		if !ok || !isNum {
			continue
		}
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			continue
		}
		out.Add(aspect, choice, v)
	}
	return out
}
