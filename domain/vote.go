package domain

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"
)

// SchemaVersion is the version of the queued submission messages this code
// writes. Readers accept every version listed in readableSchemas.
const SchemaVersion = 1

// EventSchema is the version of the event items this code writes. Version
// 1 held one vote per item; version 2 holds a submission's votes, one item
// per submission, so that a submission of five votes is one write of one
// item. Readers accept every version in readableEventSchemas: events are
// immutable, and a table keeps items of every version ever written.
const EventSchema = 2

var (
	readableSchemas      = map[int]bool{1: true}
	readableEventSchemas = map[int]bool{1: true, 2: true}
)

// ErrNewerVersion means an event or message has a schema version newer
// than this code understands. It is not poison: during a deploy the
// writers may run newer code than the readers, and a reader updated later
// will read it. Callers retry it for a while (errors.Is); the error is a
// *NewerVersionError.
var ErrNewerVersion = errors.New("schema version newer than this code understands")

// NewerVersionError is ErrNewerVersion with the version met and the
// versions this code reads of that kind of data, as "v1, v2".
type NewerVersionError struct {
	Version  int
	Readable string
}

func (e *NewerVersionError) Error() string {
	return fmt.Sprintf("schema version %d is newer than this code understands (%s)", e.Version, e.Readable)
}

// Is makes errors.Is(err, ErrNewerVersion) hold.
func (e *NewerVersionError) Is(target error) bool { return target == ErrNewerVersion }

// ReadableSchemas lists the message schema versions this code reads, as
// "v1, v2".
func ReadableSchemas() string { return versionList(readableSchemas) }

// ReadableEventSchemas lists the event schema versions this code reads.
func ReadableEventSchemas() string { return versionList(readableEventSchemas) }

func versionList(set map[int]bool) string {
	vs := slices.Sorted(maps.Keys(set))
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("v%d", v)
	}
	return strings.Join(out, ", ")
}

// CheckSchema says whether this code reads message schema version v: nil
// if it does, a *NewerVersionError if v is newer than every version it
// reads, and a plain error (poison) for an unknown older version.
func CheckSchema(v int) error { return checkVersion(readableSchemas, v) }

// CheckEventSchema is CheckSchema for an event item's version.
func CheckEventSchema(v int) error { return checkVersion(readableEventSchemas, v) }

func checkVersion(set map[int]bool, v int) error {
	if set[v] {
		return nil
	}
	if v > slices.Max(slices.Collect(maps.Keys(set))) {
		return &NewerVersionError{Version: v, Readable: versionList(set)}
	}
	return fmt.Errorf("unreadable schema version %d", v)
}

// TallyShards is how many cells a title's tally is split into. A voter's
// ballot always lives in one cell, chosen by hashing the title and voter, and
// every event of that ballot is stored under the cell's partition key, so one
// popular title spreads its writes over TallyShards DynamoDB partition keys.
// It is fixed: changing it re-homes ballots and needs a new projection.
const TallyShards = 64

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// VoteID derives a vote's ID from who voted, on what, in which submission and
// on which aspect: a retried submission gets the same IDs, and two voters
// (or two titles) never share one. It is 160 bits of SHA-256, base32.
func VoteID(voterID, titleID, submissionID, aspect string) string {
	h := sha256.New()
	for _, part := range []string{voterID, titleID, submissionID, aspect} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		h.Write(n[:])
		h.Write([]byte(part))
	}
	return idEncoding.EncodeToString(h.Sum(nil)[:20])
}

// Cell is one shard of a title's tally.
type Cell struct {
	TitleID string
	Shard   int
}

// CellOf gives the cell holding a voter's ballot on a title.
func CellOf(titleID, voterID string) Cell {
	h := fnv.New64a()
	h.Write([]byte(titleID))
	h.Write([]byte{0})
	h.Write([]byte(voterID))
	return Cell{TitleID: titleID, Shard: int(h.Sum64() % TallyShards)}
}

func (c Cell) String() string { return fmt.Sprintf("%s#%02d", c.TitleID, c.Shard) }

// VoteCast is the event appended to the event table for every accepted vote.
// Events are immutable; a voter's later vote on the same title and aspect
// supersedes an earlier one by RecordedAt, then by VoteID.
type VoteCast struct {
	Schema       int
	VoteID       string
	SubmissionID string
	VoterID      string
	TitleID      string
	Aspect       string
	Choice       string
	// RecordedAt is the receiver's clock in Unix nanoseconds when it accepted
	// the submission; it orders a voter's votes.
	RecordedAt int64
	// OccurredAt is the client's own time, kept for analysis only.
	OccurredAt string
}

// Cell is the tally cell the vote counts in.
func (v VoteCast) Cell() Cell { return CellOf(v.TitleID, v.VoterID) }

// After reports whether v supersedes o: it was recorded later, or at the
// same nanosecond with a greater vote ID.
func (v VoteCast) After(o VoteCast) bool {
	if v.RecordedAt != o.RecordedAt {
		return v.RecordedAt > o.RecordedAt
	}
	return v.VoteID > o.VoteID
}

// SameVote reports whether o is v delivered again: the same vote ID with the
// same content. The receive time may differ, as a retried submission is
// accepted again with a new time.
func (v VoteCast) SameVote(o VoteCast) bool {
	return v.VoteID == o.VoteID && v.VoterID == o.VoterID && v.TitleID == o.TitleID &&
		v.SubmissionID == o.SubmissionID && v.Aspect == o.Aspect && v.Choice == o.Choice
}

// Validate checks an event read back from storage or a queue: a readable
// schema, every field present, and a vote ID that matches its content.
func (v VoteCast) Validate() error {
	if err := CheckEventSchema(v.Schema); err != nil {
		return fmt.Errorf("vote %s: %w", v.VoteID, err)
	}
	switch {
	case v.VoterID == "" || v.TitleID == "" || v.SubmissionID == "" || v.Aspect == "" || v.Choice == "":
		return fmt.Errorf("vote %s: missing fields", v.VoteID)
	case v.RecordedAt <= 0:
		return fmt.Errorf("vote %s: no recorded time", v.VoteID)
	case v.VoteID != VoteID(v.VoterID, v.TitleID, v.SubmissionID, v.Aspect):
		return fmt.Errorf("vote %s: ID does not match its content", v.VoteID)
	}
	return nil
}

// Accepted is a submission the receiver took: the message it puts on the
// queue, with the submission ID, the receive time and every vote's ID.
type Accepted struct {
	Schema int `json:"v"`
	// SubmissionID is the client's Idempotency-Key (or one generated for
	// it), a dot, and the digest of the submission's votes (see Digest):
	// one key sent with two different contents names two submissions.
	SubmissionID string         `json:"submissionId"`
	VoterID      string         `json:"voterId"`
	TitleID      string         `json:"titleId"`
	ReceivedAt   int64          `json:"receivedAt"`
	OccurredAt   string         `json:"occurredAt,omitempty"`
	Votes        []AcceptedVote `json:"votes"`
}

// AcceptedVote is one vote of an accepted submission.
type AcceptedVote struct {
	VoteID string `json:"voteId"`
	Aspect string `json:"aspect"`
	Choice string `json:"choice"`
}

// Digest is a canonical hash of the submission's votes, 128 bits of
// SHA-256 in base32: the same votes in any order give the same digest, and
// other votes (another choice, one aspect more or less) another. Voter and
// title are not in it; every vote ID covers them already. Vote IDs are
// derived from it, so it is a stored contract: changing it would make a
// retry across a deploy a new submission.
func (s Submission) Digest() string {
	votes := slices.Clone(s.Votes)
	slices.SortFunc(votes, func(a, b Choice) int { return strings.Compare(a.Aspect, b.Aspect) })
	h := sha256.New()
	for _, v := range votes {
		for _, part := range []string{v.Aspect, v.Choice} {
			var n [4]byte
			binary.BigEndian.PutUint32(n[:], uint32(len(part)))
			h.Write(n[:])
			h.Write([]byte(part))
		}
	}
	return idEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Accept stamps a validated submission with its ID and receive time. key is
// the client's Idempotency-Key or one generated for it; the submission ID
// joins it to the digest of the votes. So the same key with the same votes
// is the same submission, with the same vote IDs, stored once; the same key
// with other votes is a new submission whose votes are all stored, and the
// one received later wins each aspect like any later vote: which of two
// different submissions wins is settled by their receive times, never by
// the order the processor stores them in.
func (s Submission) Accept(key string, receivedAt time.Time) Accepted {
	submissionID := key + "." + s.Digest() // a key has no dot: the split is unambiguous
	a := Accepted{
		Schema:       SchemaVersion,
		SubmissionID: submissionID,
		VoterID:      s.VoterID,
		TitleID:      s.TitleID,
		ReceivedAt:   receivedAt.UnixNano(),
		OccurredAt:   s.OccurredAt,
		Votes:        make([]AcceptedVote, len(s.Votes)),
	}
	for i, v := range s.Votes {
		a.Votes[i] = AcceptedVote{VoteID: VoteID(s.VoterID, s.TitleID, submissionID, v.Aspect), Aspect: v.Aspect, Choice: v.Choice}
	}
	return a
}

// VoteIDs lists the IDs of the submission's votes, in request order.
func (a Accepted) VoteIDs() []string {
	ids := make([]string, len(a.Votes))
	for i, v := range a.Votes {
		ids[i] = v.VoteID
	}
	return ids
}

// Events gives the VoteCast events the submission appends, together, as
// one event item of version EventSchema.
func (a Accepted) Events() []VoteCast {
	out := make([]VoteCast, len(a.Votes))
	for i, v := range a.Votes {
		out[i] = VoteCast{
			Schema:       EventSchema,
			VoteID:       v.VoteID,
			SubmissionID: a.SubmissionID,
			VoterID:      a.VoterID,
			TitleID:      a.TitleID,
			Aspect:       v.Aspect,
			Choice:       v.Choice,
			RecordedAt:   a.ReceivedAt,
			OccurredAt:   a.OccurredAt,
		}
	}
	return out
}

// DecodeAccepted reads a queued submission and checks every event in it. A
// failure here never goes away on retry, the message is poison, except
// ErrNewerVersion: a message of a newer schema, whose shape may differ in
// any other way, which newer code will read.
func DecodeAccepted(body []byte) (Accepted, error) {
	var head struct {
		Schema int `json:"v"`
	}
	if json.Unmarshal(body, &head) == nil {
		if err := CheckSchema(head.Schema); errors.Is(err, ErrNewerVersion) {
			return Accepted{}, fmt.Errorf("decode submission message: %w", err)
		}
	}
	var a Accepted
	if err := json.Unmarshal(body, &a); err != nil {
		return Accepted{}, fmt.Errorf("decode submission message: %w", err)
	}
	if err := CheckSchema(a.Schema); err != nil {
		return Accepted{}, fmt.Errorf("submission %s: %w", a.SubmissionID, err)
	}
	if len(a.Votes) == 0 || len(a.Votes) > MaxVotes {
		return Accepted{}, fmt.Errorf("submission %s: %d votes", a.SubmissionID, len(a.Votes))
	}
	for _, e := range a.Events() {
		if err := e.Validate(); err != nil {
			return Accepted{}, fmt.Errorf("submission %s: %w", a.SubmissionID, err)
		}
	}
	return a, nil
}

// Outcome says what appending an event to the event table did.
type Outcome int

// Outcomes of an append.
const (
	Appended  Outcome = iota // stored now
	Duplicate                // stored before, with the same content: nothing to do
	// Conflict: another vote is stored under the same ID; it stays and
	// this one is kept out. Vote IDs cover voter, title, key, aspect and
	// the submission's votes, so this is a hash collision, a bug, or a
	// message forged past the receiver: worth an alarm, never a client's
	// doing.
	Conflict
)

func (o Outcome) String() string {
	return [...]string{"appended", "duplicate", "conflict"}[o]
}
