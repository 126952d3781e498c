package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/faults"
	"votes/projections"
	"votes/projections/projectiontest"
	"votes/projections/storetest"
)

// TestOverlappingStreamInvocationsOnOneCell: two writers on one cell over
// the emulator, one held at each point of its step while the other runs
// whole steps (storetest.TestOverlappingWriters).
func TestOverlappingStreamInvocationsOnOneCell(t *testing.T) {
	storetest.TestOverlappingWriters(t, func(t *testing.T) (projections.Ballots, storetest.TallyCells) {
		f := newFixture(t, nil)
		return f.ballots, f.cells
	})
}

// TestOneCellWritePerStep: projecting a batch costs each cell it touches
// one write, one UpdateItem, however many of the cell's voters it changes
// and however many aspects they vote on; a batch delivered again costs no
// cell write at all. This is the tally's cost per step.
func TestOneCellWritePerStep(t *testing.T) {
	ctx := context.Background()
	counter := faults.New(0)
	var updates, otherCellWrites atomic.Int64
	f := newFixture(t, counter)
	counter.SetDecider(func(target, body string) faults.Fault {
		if !strings.Contains(body, `"TableName":"`+f.tables.Tallies+`"`) {
			return faults.None
		}
		switch {
		case faults.Action(target, "UpdateItem"):
			updates.Add(1)
		case faults.Action(target, "PutItem"), faults.Action(target, "TransactWriteItems"), faults.Action(target, "BatchWriteItem"), faults.Action(target, "DeleteItem"):
			otherCellWrites.Add(1)
		}
		return faults.None
	})
	voters := storetest.SameCellVoters("t1", 30)
	var batch []domain.VoteCast
	cells := map[domain.Cell]bool{}
	for i, v := range voters {
		sub := domain.Submission{VoterID: v, TitleID: "t1", Votes: []domain.Choice{{Aspect: "story", Choice: "up"}, {Aspect: "acting", Choice: "down"}}}
		batch = append(batch, sub.Accept(fmt.Sprint(i), time.Unix(0, int64(i+1))).Events()...)
		other := projectiontest.Vote(v, "t2", fmt.Sprint(i), "overall", "up", int64(i+1))
		batch = append(batch, other)
		cells[batch[0].Cell()], cells[other.Cell()] = true, true
	}
	p := projections.NewProjector(f.ballots, f.cells, 4)
	for round, want := range []int64{int64(len(cells)), 0} {
		updates.Store(0)
		if rep := p.Project(ctx, batch); len(rep.Failed) > 0 {
			t.Fatal(rep.Failed)
		}
		if updates.Load() != want || otherCellWrites.Load() != 0 {
			t.Errorf("round %d: %d UpdateItem calls and %d other writes on the tallies table for %d cells, want %d and 0",
				round, updates.Load(), otherCellWrites.Load(), len(cells), want)
		}
	}
	want := projections.Fold(batch)
	for _, title := range []string{"t1", "t2"} {
		if got, err := f.cells.Tally(ctx, title); err != nil || !got.Equal(want[title]) {
			t.Errorf("%s: tally %v, %v; fold %v", title, got, err, want[title])
		}
	}
}

// TestRedoLogStaysSmall: a cell write is billed per started KB of the
// larger of the item before and after it, and the item holds the last
// step's redo log: a single-aspect vote adds under 100 bytes to it.
func TestRedoLogStaysSmall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	var voters []string // IDs of a realistic length, in one cell
	for i := 0; len(voters) < 10; i++ {
		if v := fmt.Sprintf("u-%05d", i); domain.CellOf("tt0111161", v).Shard == 0 {
			voters = append(voters, v)
		}
	}
	for i, n := range []int{1, 10} {
		var batch []domain.VoteCast
		for j, v := range voters[:n] {
			batch = append(batch, projectiontest.Vote(v, "tt0111161", fmt.Sprintf("sub-%d-%d", i, j), "story", "up", 1764237600123456789))
		}
		if rep := projections.NewProjector(f.ballots, f.cells, 1).Project(ctx, batch); len(rep.Failed) > 0 {
			t.Fatal(rep.Failed)
		}
		out, err := f.clients.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(f.tables.Tallies)})
		if err != nil {
			t.Fatal(err)
		}
		largest := 0
		for _, item := range out.Items {
			if r, ok := item["redo"].(*types.AttributeValueMemberS); ok {
				largest = max(largest, len(r.Value))
			}
		}
		t.Logf("a step of %d single-aspect votes: redo log of %d bytes", len(batch), largest)
		if perVote := largest / len(batch); largest == 0 || perVote > 100 {
			t.Errorf("a step of %d single-aspect votes left a redo log of %d bytes (%d a vote), want under 100 a vote", len(batch), largest, perVote)
		}
	}
}

// TestCellsOfThePreviousRelease: a cell the previous release finished
// (counts and lastStep, no version) and its ballots (with step, prev and
// fences) are carried on: new votes count from them, the ballots lose the
// old fields, and from then on the previous release's Begin finds the cell
// busy with a step whose lease never runs out (so that release waits and
// gives the cell up, and cannot take the step over). A cell with the
// previous release's step in flight is refused with the fix named, and
// nothing is written to it.
func TestCellsOfThePreviousRelease(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	db := f.clients.DynamoDB
	voter := "u1"
	cell := domain.CellOf("t1", voter)
	pk := func(rest string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "1#" + rest}}
	}
	put := func(table string, item map[string]types.AttributeValue) {
		t.Helper()
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	// What the previous release left: u1 voted story up, counted.
	oldCell := pk(cell.String())
	oldCell["titleId"] = &types.AttributeValueMemberS{Value: "t1"}
	oldCell["shard"] = &types.AttributeValueMemberN{Value: fmt.Sprint(cell.Shard)}
	oldCell["n_story_up"] = &types.AttributeValueMemberN{Value: "1"}
	oldCell["lastStep"] = &types.AttributeValueMemberS{Value: "0000018f00000000abcdef01"}
	put(f.tables.Tallies, oldCell)
	old := projectiontest.Vote(voter, "t1", "s1", "story", "up", 1)
	oldBallot := pk("t1#" + voter)
	oldBallot["voterId"] = &types.AttributeValueMemberS{Value: voter}
	oldBallot["titleId"] = &types.AttributeValueMemberS{Value: "t1"}
	oldBallot["ver"] = &types.AttributeValueMemberN{Value: "3"}
	oldBallot["step"] = &types.AttributeValueMemberS{Value: "0000018f00000000abcdef01~sealed"}
	oldBallot["prev"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"story": &types.AttributeValueMemberS{Value: ""}}}
	oldBallot["fences"] = &types.AttributeValueMemberSS{Value: []string{"0000018e00000000abcdef01"}}
	oldBallot["aspects"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"story": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"c": &types.AttributeValueMemberS{Value: old.Choice}, "at": &types.AttributeValueMemberN{Value: "1"}, "id": &types.AttributeValueMemberS{Value: old.VoteID}}}}}
	put(f.tables.Ballots, oldBallot)

	changed := projectiontest.Vote(voter, "t1", "s2", "story", "down", 2)
	if rep := projections.NewProjector(f.ballots, f.cells, 1).Project(ctx, []domain.VoteCast{changed}); len(rep.Failed) > 0 {
		t.Fatal(rep.Failed)
	}
	want := projections.Fold([]domain.VoteCast{old, changed})["t1"]
	if got, err := f.cells.Tally(ctx, "t1"); err != nil || !got.Equal(want) {
		t.Fatalf("tally %v, %v; want %v", got, err, want)
	}
	item, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.tables.Ballots), Key: pk("t1#" + voter), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"step", "prev", "fences"} {
		if _, ok := item.Item[gone]; ok {
			t.Errorf("the ballot saved still holds the previous release's %q", gone)
		}
	}
	if v, _ := item.Item["ver"].(*types.AttributeValueMemberN); v == nil || v.Value != "4" {
		t.Errorf("ballot version %v, want 4 (one on from the previous release's 3)", item.Item["ver"])
	}
	// The previous release's Begin, as it sends it.
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(f.tables.Tallies), Key: pk(cell.String()),
		UpdateExpression:          aws.String("SET #sid = :sid"),
		ConditionExpression:       aws.String("attribute_not_exists(#sid) AND (attribute_not_exists(#last) OR #last < :sid)"),
		ExpressionAttributeNames:  map[string]string{"#sid": "stepId", "#last": "lastStep"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":sid": &types.AttributeValueMemberS{Value: "0000019000000000abcdef01"}},
	})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Errorf("the previous release's Begin on a cell this release wrote: %v, want refused", err)
	}
	cellItem, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.tables.Tallies), Key: pk(cell.String()), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	expires, _ := cellItem.Item["stepExpires"].(*types.AttributeValueMemberN)
	if expires == nil || len(expires.Value) < 13 || expires.Value <= fmt.Sprint(time.Now().AddDate(100, 0, 0).UnixMilli()) {
		t.Errorf("the step the previous release finds in flight expires at %v; want a lease that never runs out, so that it is never taken over", cellItem.Item["stepExpires"])
	}
	// This release goes on writing the cell.
	again := projectiontest.Vote(voter, "t1", "s4", "story", "up", 4)
	if rep := projections.NewProjector(f.ballots, f.cells, 1).Project(ctx, []domain.VoteCast{again}); len(rep.Failed) > 0 {
		t.Fatal(rep.Failed)
	}
	want = projections.Fold([]domain.VoteCast{old, changed, again})["t1"]
	if got, err := f.cells.Tally(ctx, "t1"); err != nil || !got.Equal(want) {
		t.Fatalf("tally after a second step %v, %v; want %v", got, err, want)
	}

	inflight := pk(domain.CellOf("t2", voter).String())
	inflight["n_story_up"] = &types.AttributeValueMemberN{Value: "5"}
	inflight["stepId"] = &types.AttributeValueMemberS{Value: "0000018f00000000abcdef02"}
	put(f.tables.Tallies, inflight)
	rep := projections.NewProjector(f.ballots, f.cells, 1).Project(ctx, []domain.VoteCast{projectiontest.Vote(voter, "t2", "s3", "story", "down", 3)})
	err = rep.Failed[domain.CellOf("t2", voter)]
	if !errors.Is(err, dynamo.ErrOldStep) || !strings.Contains(err.Error(), domain.CellOf("t2", voter).String()) || !strings.Contains(err.Error(), "rebuild a new version") {
		t.Fatalf("a cell with the previous release's step in flight: %v; want ErrOldStep naming the cell and the fix", err)
	}
	if got, err := f.cells.Tally(ctx, "t2"); err != nil || !got.Equal(projections.Counts{"story": {"up": 5}}) {
		t.Errorf("t2 tally %v, %v; want the cell left as it was", got, err)
	}
}
