// Package metering counts what the pipeline asks of AWS, from middleware on
// the real SDK clients: requests by service and action, the billable units
// DynamoDB and SQS charge for them, and writes per DynamoDB partition key.
// Prices turn the counts into dollars.
package metering

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// Meter counts SDK calls. Its zero value is not usable: use New.
type Meter struct {
	hashKeys map[string]string // table -> partition key attribute

	mu         sync.Mutex
	requests   map[string]int64   // "Service Action" -> calls
	wcu        float64            // DynamoDB write request units
	rcu        float64            // DynamoDB read request units
	sqsUnits   int64              // SQS requests, one per started 64 KiB of payload
	keys       map[string]float64 // "table key" -> write units
	tables     map[string]float64 // table -> write units
	tableReads map[string]float64 // table -> read units
	// updated is the size each item had after the last UpdateItem seen on
	// it, as updateSize reckons it: an update is billed on the larger of
	// the item before and after it. It describes the tables, not what was
	// counted, so Reset keeps it.
	updated map[string]int
}

// New counts calls; hashKeys names each table's partition key attribute,
// so that writes can be counted per partition key.
func New(hashKeys map[string]string) *Meter {
	m := &Meter{hashKeys: hashKeys, updated: map[string]int{}}
	m.Reset()
	return m
}

// Reset forgets everything counted.
func (m *Meter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests, m.keys, m.tables, m.tableReads = map[string]int64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	m.wcu, m.rcu, m.sqsUnits = 0, 0, 0
}

// APIOption adds the meter to an SDK client's middleware stack.
func (m *Meter) APIOption(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("votesMeter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			m.record(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), in.Parameters, out.Result)
			return out, md, err
		}), middleware.After)
}

// record counts one call: the request, then what it is billed, by the
// kind of call. The caller's middleware runs it after the call returned, so
// output is the answer when there was one.
func (m *Meter) record(service, action string, input, output any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[service+" "+action]++
	switch {
	case m.countWrites(input):
	case m.countReads(input, output):
	case service == "SQS":
		m.sqsUnits += sqsUnits(input, output)
	}
}

// countWrites adds the write units of a DynamoDB write, and reports whether
// input was one. A transaction costs twice the units of its items, and its
// condition checks cost two read units each.
func (m *Meter) countWrites(input any) bool {
	switch in := input.(type) {
	case *dynamodb.PutItemInput:
		m.write(*in.TableName, in.Item, itemSize(in.Item), 1)
	case *dynamodb.UpdateItemInput:
		size := updateSize(in.Key, in.ExpressionAttributeValues)
		k := *in.TableName + " " + keyString(in.Key)
		before := m.updated[k]
		m.updated[k] = size
		m.write(*in.TableName, in.Key, max(size, before), 1)
	case *dynamodb.DeleteItemInput:
		m.write(*in.TableName, in.Key, itemSize(in.Key), 1)
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				m.write(*it.Put.TableName, it.Put.Item, itemSize(it.Put.Item), 2)
			case it.Update != nil:
				m.write(*it.Update.TableName, it.Update.Key, updateSize(it.Update.Key, it.Update.ExpressionAttributeValues), 2)
			case it.Delete != nil:
				m.write(*it.Delete.TableName, it.Delete.Key, itemSize(it.Delete.Key), 2)
			case it.ConditionCheck != nil:
				m.rcu += 2
			}
		}
	case *dynamodb.BatchWriteItemInput:
		for table, reqs := range in.RequestItems {
			for _, r := range reqs {
				if r.PutRequest != nil {
					m.write(table, r.PutRequest.Item, itemSize(r.PutRequest.Item), 1)
				} else if r.DeleteRequest != nil {
					m.write(table, r.DeleteRequest.Key, itemSize(r.DeleteRequest.Key), 1)
				}
			}
		}
	default:
		return false
	}
	return true
}

// read adds units read from table.
func (m *Meter) read(table string, units float64) {
	m.rcu += units
	m.tableReads[table] += units
}

// updateSize is the size of the item an update leaves, as far as the
// update shows it: the key and what the update sets. Our updated items
// (tally cells) are mostly what their last update set: counts, version and
// the last step's redo log, which each update replaces; counts the update
// does not touch are left out, a few dozen bytes.
func updateSize(key, values map[string]types.AttributeValue) int {
	return itemSize(key) + itemSize(values)
}

// countReads adds the read units of a DynamoDB read, and reports whether
// input was one. GetItem and BatchGetItem are billed per item, a scan or a
// query on the size of all it returned.
func (m *Meter) countReads(input, output any) bool {
	switch in := input.(type) {
	case *dynamodb.GetItemInput:
		size := 0
		if out, ok := output.(*dynamodb.GetItemOutput); ok && out != nil {
			size = itemSize(out.Item)
		}
		m.read(aws.ToString(in.TableName), readUnits(size, in.ConsistentRead))
	case *dynamodb.BatchGetItemInput:
		if out, ok := output.(*dynamodb.BatchGetItemOutput); ok && out != nil {
			for table, ka := range in.RequestItems {
				m.read(table, batchGetUnits(ka, out.Responses[table], out.UnprocessedKeys[table]))
			}
		}
	case *dynamodb.ScanInput:
		var items []map[string]types.AttributeValue
		if out, ok := output.(*dynamodb.ScanOutput); ok && out != nil {
			items = out.Items
		}
		m.read(aws.ToString(in.TableName), readUnits(itemsSize(items), in.ConsistentRead))
	case *dynamodb.QueryInput:
		var items []map[string]types.AttributeValue
		if out, ok := output.(*dynamodb.QueryOutput); ok && out != nil {
			items = out.Items
		}
		m.read(aws.ToString(in.TableName), readUnits(itemsSize(items), in.ConsistentRead))
	default:
		return false
	}
	return true
}

// batchGetUnits is one table's part of a BatchGetItem: each item found is
// billed as a GetItem of it, and a key read and not found costs the minimum
// read, as in GetItem; keys left unprocessed cost nothing.
func batchGetUnits(ka types.KeysAndAttributes, found []map[string]types.AttributeValue, unprocessed types.KeysAndAttributes) float64 {
	u := 0.0
	for _, item := range found {
		u += readUnits(itemSize(item), ka.ConsistentRead)
	}
	missing := len(ka.Keys) - len(found) - len(unprocessed.Keys)
	return u + float64(max(missing, 0))*readUnits(0, ka.ConsistentRead)
}

// readUnits is what reading size bytes costs: one unit per started 4 KB
// when strongly consistent, half of that when eventually consistent (the
// default).
func readUnits(size int, consistent *bool) float64 {
	u := float64(units(size, 4096))
	if consistent == nil || !*consistent {
		u /= 2
	}
	return u
}

// sqsUnits is what an SQS call is billed: one request per started 64 KiB of
// the payload sent or received; any other call is one request.
func sqsUnits(input, output any) int64 {
	size := 0
	switch in := input.(type) {
	case *sqs.SendMessageInput:
		size = len(*in.MessageBody)
	case *sqs.SendMessageBatchInput:
		for _, e := range in.Entries {
			size += len(*e.MessageBody)
		}
	case *sqs.ReceiveMessageInput:
		if out, ok := output.(*sqs.ReceiveMessageOutput); ok && out != nil {
			for _, msg := range out.Messages {
				size += len(*msg.Body)
			}
		}
	}
	return int64(units(size, 64<<10))
}

// write counts a write of size bytes to the item's partition key, times
// factor (2 in a transaction).
func (m *Meter) write(table string, item map[string]types.AttributeValue, size, factor int) {
	wcu := float64(factor * units(size, 1024))
	m.wcu += wcu
	m.tables[table] += wcu
	if key, ok := m.hashKeys[table]; ok {
		if v, ok := item[key].(*types.AttributeValueMemberS); ok {
			m.keys[table+" "+v.Value] += wcu
		}
	}
}

// units is how many started blocks of size n bytes hold; at least one.
func units(n, block int) int {
	return max(1, (n+block-1)/block)
}

// keyString is an item's key as one string, to remember the item by.
func keyString(key map[string]types.AttributeValue) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(key)) {
		switch v := key[k].(type) {
		case *types.AttributeValueMemberS:
			fmt.Fprintf(&b, "%s=S%s\x00", k, v.Value)
		case *types.AttributeValueMemberN:
			fmt.Fprintf(&b, "%s=N%s\x00", k, v.Value)
		case *types.AttributeValueMemberB:
			fmt.Fprintf(&b, "%s=B%x\x00", k, v.Value)
		}
	}
	return b.String()
}

func itemsSize(items []map[string]types.AttributeValue) int {
	n := 0
	for _, item := range items {
		n += itemSize(item)
	}
	return n
}

// itemSize follows DynamoDB's item size rules: attribute names plus values.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(strings.TrimLeft(v.Value, "-0"))+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		return 21 * len(v.Value)
	case *types.AttributeValueMemberL:
		n := 3
		for _, x := range v.Value {
			n += 1 + valueSize(x)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, x := range v.Value {
			n += 1 + len(k) + valueSize(x)
		}
		return n
	}
	return 0
}

// Counts is a snapshot of what a Meter counted.
type Counts struct {
	Requests   map[string]int64
	WCU, RCU   float64
	TableWCU   map[string]float64 // write units by table; they add up to WCU
	TableRCU   map[string]float64 // read units of reads by table (not of transactions' condition checks)
	SQSUnits   int64
	HottestKey string  // table and partition key with the most write units
	HottestWCU float64 // its write units
}

// Snapshot copies the counts.
func (m *Meter) Snapshot() Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := Counts{Requests: maps.Clone(m.requests), WCU: m.wcu, RCU: m.rcu, SQSUnits: m.sqsUnits, TableWCU: maps.Clone(m.tables), TableRCU: maps.Clone(m.tableReads)}
	for k, w := range m.keys {
		if w > c.HottestWCU || (w == c.HottestWCU && k < c.HottestKey) {
			c.HottestKey, c.HottestWCU = k, w
		}
	}
	return c
}

// Actions lists "Service Action" keys in order.
func (c Counts) Actions() []string {
	return slices.Sorted(maps.Keys(c.Requests))
}

// Services sums the requests by service (the part of "Service Action"
// before the last space: "DynamoDB", "DynamoDB Streams", "SQS").
func (c Counts) Services() map[string]int64 {
	out := map[string]int64{}
	for action, n := range c.Requests {
		i := strings.LastIndexByte(action, ' ')
		out[action[:max(i, 0)]] += n
	}
	return out
}

// Total is every request counted.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c.Requests {
		n += v
	}
	return n
}

func (c Counts) String() string {
	return fmt.Sprintf("%d requests, %.0f WCU, %.1f RCU, %d SQS units", c.Total(), c.WCU, c.RCU, c.SQSUnits)
}
