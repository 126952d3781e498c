package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/projections"
)

var _ projections.TitleCells = (*CellStore)(nil)

// ReadTitle reads every cell of titleID with one strongly consistent
// BatchGetItem of its 64 keys (64 read units at most: what a title index
// entry's resync costs), with each cell's version, counts and the latest
// vote of its last step.
func (s *CellStore) ReadTitle(ctx context.Context, titleID string) (map[int]projections.CellSnapshot, error) {
	keys := make([]map[string]types.AttributeValue, domain.TallyShards)
	byPK := map[string]domain.Cell{}
	for i := range keys {
		c := domain.Cell{TitleID: titleID, Shard: i}
		keys[i] = s.key(c)
		byPK[keys[i][AttrPK].(*types.AttributeValueMemberS).Value] = c
	}
	items, err := batchGet(ctx, s.client, s.table, keys, true)
	if err != nil {
		return nil, fmt.Errorf("read cells of %s: %w", titleID, err)
	}
	out := make(map[int]projections.CellSnapshot, len(items))
	for _, item := range items {
		pk, _ := item[AttrPK].(*types.AttributeValueMemberS)
		if pk == nil {
			continue
		}
		c, ok := byPK[pk.Value]
		if !ok {
			continue
		}
		st, err := decodeCell(c, item)
		if err != nil {
			return nil, err
		}
		out[c.Shard] = projections.CellSnapshot{Version: st.Version, Counts: CellCounts(item), LastVoteAt: st.Redo.LastVoteAt()}
	}
	return out, nil
}
