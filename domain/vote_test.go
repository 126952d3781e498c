package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"votes/domain"
)

var voteIDPattern = regexp.MustCompile(`^[a-z2-7]{32}$`)

func TestVoteIDDeterministic(t *testing.T) {
	a := domain.VoteID("alice", "tt1", "sub-1", "overall")
	b := domain.VoteID("alice", "tt1", "sub-1", "overall")
	if a != b {
		t.Fatalf("same input gave %q and %q", a, b)
	}
	if !voteIDPattern.MatchString(a) {
		t.Errorf("vote ID %q is not 32 characters of lower-case base32", a)
	}
}

func TestVoteIDDistinct(t *testing.T) {
	base := [4]string{"alice", "tt1", "sub-1", "overall"}
	id := func(p [4]string) string { return domain.VoteID(p[0], p[1], p[2], p[3]) }
	tests := []struct {
		name string
		in   [4]string
	}{
		{"other voter", [4]string{"bob", "tt1", "sub-1", "overall"}},
		{"other title", [4]string{"alice", "tt2", "sub-1", "overall"}},
		{"other submission", [4]string{"alice", "tt1", "sub-2", "overall"}},
		{"other aspect", [4]string{"alice", "tt1", "sub-1", "story"}},
		{"voter case", [4]string{"Alice", "tt1", "sub-1", "overall"}},
		{"voter and title swapped", [4]string{"tt1", "alice", "sub-1", "overall"}},
		// Moving characters across a boundary must not collide.
		{"voter|title boundary", [4]string{"alicet", "t1", "sub-1", "overall"}},
		{"title|submission boundary", [4]string{"alice", "tt1s", "ub-1", "overall"}},
		{"submission|aspect boundary", [4]string{"alice", "tt1", "sub-1o", "verall"}},
		{"empty voter, longer title", [4]string{"", "alicett1", "sub-1", "overall"}},
	}
	want := id(base)
	for _, tt := range tests {
		if got := id(tt.in); got == want {
			t.Errorf("%s: %v has the same ID as %v: %s", tt.name, tt.in, base, got)
		}
	}
	if domain.VoteID("ab", "c", "s", "a") == domain.VoteID("a", "bc", "s", "a") {
		t.Error(`("ab","c") and ("a","bc") share a vote ID`)
	}
	if domain.VoteID("a", "b", "", "") == domain.VoteID("a", "", "b", "") {
		t.Error("empty parts in different places share a vote ID")
	}
}

func TestCellOf(t *testing.T) {
	c := domain.CellOf("tt1", "alice")
	if c != domain.CellOf("tt1", "alice") {
		t.Fatal("CellOf is not stable")
	}
	if c.TitleID != "tt1" {
		t.Errorf("cell of title tt1 is on title %q", c.TitleID)
	}
	if want := fmt.Sprintf("tt1#%02d", c.Shard); c.String() != want {
		t.Errorf("String() = %q, want %q", c.String(), want)
	}
	shards := map[int]bool{}
	for i := range 5000 {
		c := domain.CellOf("tt-popular", fmt.Sprintf("voter-%d", i))
		if c.Shard < 0 || c.Shard >= domain.TallyShards {
			t.Fatalf("shard %d outside 0..%d", c.Shard, domain.TallyShards-1)
		}
		shards[c.Shard] = true
	}
	// One popular title must spread its ballots over every shard.
	if len(shards) != domain.TallyShards {
		t.Errorf("5000 voters on one title use %d of %d shards", len(shards), domain.TallyShards)
	}
	e := domain.VoteCast{VoterID: "alice", TitleID: "tt1"}
	if e.Cell() != c {
		t.Errorf("VoteCast.Cell() = %v, want CellOf = %v", e.Cell(), c)
	}
}

func TestCellString(t *testing.T) {
	tests := []struct {
		cell domain.Cell
		want string
	}{
		{domain.Cell{TitleID: "t", Shard: 0}, "t#00"},
		{domain.Cell{TitleID: "t", Shard: 7}, "t#07"},
		{domain.Cell{TitleID: "tt1", Shard: 63}, "tt1#63"},
	}
	for _, tt := range tests {
		if got := tt.cell.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.cell, got, tt.want)
		}
	}
}

func TestVoteCastAfter(t *testing.T) {
	tests := []struct {
		name string
		v, o domain.VoteCast
		want bool
	}{
		{"recorded later", domain.VoteCast{VoteID: "a", RecordedAt: 2}, domain.VoteCast{VoteID: "z", RecordedAt: 1}, true},
		{"recorded earlier", domain.VoteCast{VoteID: "z", RecordedAt: 1}, domain.VoteCast{VoteID: "a", RecordedAt: 2}, false},
		{"same time, greater ID", domain.VoteCast{VoteID: "b", RecordedAt: 5}, domain.VoteCast{VoteID: "a", RecordedAt: 5}, true},
		{"same time, smaller ID", domain.VoteCast{VoteID: "a", RecordedAt: 5}, domain.VoteCast{VoteID: "b", RecordedAt: 5}, false},
		{"itself", domain.VoteCast{VoteID: "a", RecordedAt: 5}, domain.VoteCast{VoteID: "a", RecordedAt: 5}, false},
	}
	for _, tt := range tests {
		if got := tt.v.After(tt.o); got != tt.want {
			t.Errorf("%s: After = %v, want %v", tt.name, got, tt.want)
		}
	}
	// A strict order: of two different votes exactly one is after the other.
	votes := []domain.VoteCast{
		{VoteID: "a", RecordedAt: 1}, {VoteID: "b", RecordedAt: 1}, {VoteID: "a", RecordedAt: 2}, {VoteID: "c", RecordedAt: 0},
	}
	for _, v := range votes {
		for _, o := range votes {
			if v == o {
				continue
			}
			if v.After(o) == o.After(v) {
				t.Errorf("%+v and %+v: After is %v both ways", v, o, v.After(o))
			}
		}
	}
}

func TestSameVote(t *testing.T) {
	v := validVote(t)
	if !v.SameVote(v) {
		t.Fatal("a vote is not the same as itself")
	}
	redelivered := v
	redelivered.RecordedAt++
	redelivered.OccurredAt = "2020-01-01T00:00:00Z"
	if !v.SameVote(redelivered) {
		t.Error("a vote received again at another time is not the same vote")
	}
	changes := map[string]func(*domain.VoteCast){
		"vote ID":    func(e *domain.VoteCast) { e.VoteID = "x" + e.VoteID[1:] },
		"voter":      func(e *domain.VoteCast) { e.VoterID = "bob" },
		"title":      func(e *domain.VoteCast) { e.TitleID = "tt2" },
		"submission": func(e *domain.VoteCast) { e.SubmissionID = "sub-2" },
		"aspect":     func(e *domain.VoteCast) { e.Aspect = "story" },
		"choice":     func(e *domain.VoteCast) { e.Choice = "down" },
	}
	for name, change := range changes {
		o := v
		change(&o)
		if v.SameVote(o) || o.SameVote(v) {
			t.Errorf("votes differing in %s are the same vote", name)
		}
	}
}

func TestVoteCastValidate(t *testing.T) {
	if err := validVote(t).Validate(); err != nil {
		t.Fatalf("valid vote: %v", err)
	}
	tests := map[string]func(*domain.VoteCast){
		"schema 0":            func(e *domain.VoteCast) { e.Schema = 0 },
		"schema 3":            func(e *domain.VoteCast) { e.Schema = domain.EventSchema + 1 },
		"no voter":            func(e *domain.VoteCast) { e.VoterID = "" },
		"no title":            func(e *domain.VoteCast) { e.TitleID = "" },
		"no submission":       func(e *domain.VoteCast) { e.SubmissionID = "" },
		"no aspect":           func(e *domain.VoteCast) { e.Aspect = "" },
		"no choice":           func(e *domain.VoteCast) { e.Choice = "" },
		"no recorded time":    func(e *domain.VoteCast) { e.RecordedAt = 0 },
		"negative time":       func(e *domain.VoteCast) { e.RecordedAt = -1 },
		"no vote ID":          func(e *domain.VoteCast) { e.VoteID = "" },
		"voter changed":       func(e *domain.VoteCast) { e.VoterID = "mallory" },
		"aspect changed":      func(e *domain.VoteCast) { e.Aspect = "story" },
		"vote ID of another":  func(e *domain.VoteCast) { e.VoteID = domain.VoteID("bob", e.TitleID, e.SubmissionID, e.Aspect) },
		"submission replaced": func(e *domain.VoteCast) { e.SubmissionID = "sub-other" },
	}
	for name, change := range tests {
		e := validVote(t)
		change(&e)
		if err := e.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, e)
		}
	}
}

func TestAcceptRoundTrip(t *testing.T) {
	sub, err := domain.DecodeSubmission([]byte(`{"voterId":"alice","titleId":"tt1","votes":[{"aspect":"Story","choice":"UP"},{"aspect":"overall","choice":"down"}],"occurredAt":"2024-03-01T10:00:00+02:00"}`), domain.DefaultCatalog(), "")
	if err != nil {
		t.Fatal(err)
	}
	receivedAt := time.Date(2024, 3, 1, 8, 0, 1, 500, time.UTC)
	a := sub.Accept("key-1", receivedAt)

	// The submission ID is the key, a dot and the digest of the votes:
	// base32 of the first 16 bytes of SHA-256 over the length-prefixed
	// aspect and choice of each vote, sorted by aspect (worked out apart
	// from this code). Vote IDs are stored: this value must not drift.
	const submissionID = "key-1.agef75vojx7rrzym7y5aikjmye"
	if a.SubmissionID != submissionID {
		t.Errorf("SubmissionID = %q, want %q", a.SubmissionID, submissionID)
	}
	wantIDs := []string{domain.VoteID("alice", "tt1", submissionID, "story"), domain.VoteID("alice", "tt1", submissionID, "overall")}
	if !reflect.DeepEqual(a.VoteIDs(), wantIDs) {
		t.Errorf("VoteIDs() = %v, want %v", a.VoteIDs(), wantIDs)
	}
	if again := sub.Accept("key-1", receivedAt.Add(time.Hour)); !reflect.DeepEqual(again.VoteIDs(), a.VoteIDs()) {
		t.Error("a retried submission with the same key got other vote IDs")
	}
	if other := sub.Accept("key-2", receivedAt); other.VoteIDs()[0] == a.VoteIDs()[0] {
		t.Error("another submission key gave the same vote ID")
	}

	wantEvents := []domain.VoteCast{
		{Schema: domain.EventSchema, VoteID: wantIDs[0], SubmissionID: submissionID, VoterID: "alice", TitleID: "tt1", Aspect: "story", Choice: "up", RecordedAt: receivedAt.UnixNano(), OccurredAt: "2024-03-01T08:00:00Z"},
		{Schema: domain.EventSchema, VoteID: wantIDs[1], SubmissionID: submissionID, VoterID: "alice", TitleID: "tt1", Aspect: "overall", Choice: "down", RecordedAt: receivedAt.UnixNano(), OccurredAt: "2024-03-01T08:00:00Z"},
	}
	if got := a.Events(); !reflect.DeepEqual(got, wantEvents) {
		t.Errorf("Events() = %+v\nwant %+v", got, wantEvents)
	}
	for _, e := range a.Events() {
		if err := e.Validate(); err != nil {
			t.Errorf("event of an accepted submission: %v", err)
		}
	}

	body, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	// The message is a contract with the processor: its field names matter.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"v", "submissionId", "voterId", "titleId", "receivedAt", "occurredAt", "votes"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("message %s has no field %q", body, name)
		}
	}
	got, err := domain.DecodeAccepted(body)
	if err != nil {
		t.Fatalf("DecodeAccepted: %v", err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Errorf("round trip: got %+v, want %+v", got, a)
	}
	if !reflect.DeepEqual(got.Events(), wantEvents) {
		t.Errorf("decoded events differ: %+v", got.Events())
	}
}

func TestAcceptWithoutOccurredAt(t *testing.T) {
	sub := domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}}
	body, err := json.Marshal(sub.Accept("s", time.Unix(1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "occurredAt") {
		t.Errorf("message without a client time carries occurredAt: %s", body)
	}
	got, err := domain.DecodeAccepted(body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Events()[0].OccurredAt != "" || got.Events()[0].RecordedAt != int64(time.Second) {
		t.Errorf("event %+v", got.Events()[0])
	}
}

func TestDecodeAcceptedRefuses(t *testing.T) {
	sub := domain.Submission{VoterID: "alice", TitleID: "tt1", Votes: []domain.Choice{{"overall", "up"}, {"story", "down"}}}
	good := sub.Accept("key-1", time.Unix(1700000000, 0))
	tests := []struct {
		name   string
		change func(a *domain.Accepted)
		raw    string // used instead of the changed message when set
	}{
		{name: "not JSON", raw: `Message Body`},
		{name: "JSON array", raw: `[]`},
		{name: "wrong type", raw: `{"v":"1"}`},
		{name: "empty object", raw: `{}`},
		{name: "tampered vote ID", change: func(a *domain.Accepted) { a.Votes[1].VoteID = strings.Repeat("a", 32) }},
		{name: "vote IDs swapped", change: func(a *domain.Accepted) { a.Votes[0].VoteID, a.Votes[1].VoteID = a.Votes[1].VoteID, a.Votes[0].VoteID }},
		{name: "voter changed", change: func(a *domain.Accepted) { a.VoterID = "mallory" }},
		{name: "title changed", change: func(a *domain.Accepted) { a.TitleID = "tt2" }},
		{name: "submission changed", change: func(a *domain.Accepted) { a.SubmissionID = "key-2" }},
		{name: "aspect changed", change: func(a *domain.Accepted) { a.Votes[0].Aspect = "acting" }},
		{name: "choice missing", change: func(a *domain.Accepted) { a.Votes[0].Choice = "" }},
		{name: "no receive time", change: func(a *domain.Accepted) { a.ReceivedAt = 0 }},
		{name: "schema 0", change: func(a *domain.Accepted) { a.Schema = 0 }},
		{name: "schema 2", change: func(a *domain.Accepted) { a.Schema = 2 }},
		{name: "no votes", change: func(a *domain.Accepted) { a.Votes = nil }},
		{name: "empty votes", change: func(a *domain.Accepted) { a.Votes = []domain.AcceptedVote{} }},
		{name: "six votes", change: func(a *domain.Accepted) {
			for _, aspect := range []string{"acting", "visuals", "soundtrack", "extra"} {
				a.Votes = append(a.Votes, domain.AcceptedVote{VoteID: domain.VoteID(a.VoterID, a.TitleID, a.SubmissionID, aspect), Aspect: aspect, Choice: "up"})
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.raw)
			if tt.raw == "" {
				a := good
				a.Votes = append([]domain.AcceptedVote(nil), good.Votes...)
				tt.change(&a)
				var err error
				if body, err = json.Marshal(a); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := domain.DecodeAccepted(body); err == nil {
				t.Errorf("DecodeAccepted(%s) accepted %+v", body, got)
			}
		})
	}
	// Five votes, every one consistent, is the most a message holds.
	five := good
	five.Votes = append([]domain.AcceptedVote(nil), good.Votes...)
	for _, aspect := range []string{"acting", "visuals", "soundtrack"} {
		five.Votes = append(five.Votes, domain.AcceptedVote{VoteID: domain.VoteID(five.VoterID, five.TitleID, five.SubmissionID, aspect), Aspect: aspect, Choice: "up"})
	}
	body, _ := json.Marshal(five)
	if _, err := domain.DecodeAccepted(body); err != nil {
		t.Errorf("five consistent votes: %v", err)
	}
}

// TestNewerSchemaIsNotPoison: a vote or message of a schema version newer
// than the code reads is told apart (it is retried, not dead-lettered),
// whatever else about its shape changed; an unknown older version is
// poison.
func TestNewerSchemaIsNotPoison(t *testing.T) {
	e := validVote(t)
	e.Schema = domain.EventSchema + 1
	err := e.Validate()
	var newer *domain.NewerVersionError
	if !errors.Is(err, domain.ErrNewerVersion) || !errors.As(err, &newer) || newer.Version != domain.EventSchema+1 {
		t.Errorf("vote of schema %d: %v, want ErrNewerVersion", e.Schema, err)
	}
	e.Schema = 0
	if err := e.Validate(); err == nil || errors.Is(err, domain.ErrNewerVersion) {
		t.Errorf("vote of schema 0: %v, want poison", err)
	}
	// Events of version 1 (one vote per item) stay readable: the table
	// keeps them for good.
	e.Schema = 1
	if err := e.Validate(); err != nil {
		t.Errorf("vote of schema 1: %v, want readable", err)
	}

	for body, wantNewer := range map[string]bool{
		`{"v":2,"submissionId":"s-1","voterId":"alice","titleId":"tt1","receivedAt":1,"votes":[{"voteId":"x","aspect":"story","choice":"up"}]}`: true,
		`{"v":7,"ballot":{"who":"alice","what":[["story","up"]]}}`:                                                                              true, // any other shape
		`{"v":0,"submissionId":"s-1","voterId":"alice","titleId":"tt1","receivedAt":1,"votes":[]}`:                                              false,
		`{"v":"2"}`: false,
		`{"v":2`:    false,
	} {
		_, err := domain.DecodeAccepted([]byte(body))
		if err == nil {
			t.Errorf("DecodeAccepted(%s) accepted it", body)
			continue
		}
		if got := errors.Is(err, domain.ErrNewerVersion); got != wantNewer {
			t.Errorf("DecodeAccepted(%s): %v; newer version %v, want %v", body, err, got, wantNewer)
		}
		if wantNewer && !strings.Contains(err.Error(), "is newer than this code understands (v1)") {
			t.Errorf("DecodeAccepted(%s): %q does not say which versions it reads", body, err)
		}
	}
}

func validVote(t *testing.T) domain.VoteCast {
	t.Helper()
	e := domain.VoteCast{
		Schema: domain.EventSchema, SubmissionID: "sub-1", VoterID: "alice", TitleID: "tt1",
		Aspect: "overall", Choice: "up", RecordedAt: 1700000000000000000,
	}
	e.VoteID = domain.VoteID(e.VoterID, e.TitleID, e.SubmissionID, e.Aspect)
	return e
}

// One Idempotency-Key is one submission only with the same votes: a retry
// keeps its vote IDs, other content under the key gets new ones on every
// aspect, so both are stored and the later receipt wins by time.
func TestAcceptSameKeyOtherContent(t *testing.T) {
	sub := func(votes ...domain.Choice) domain.Submission {
		return domain.Submission{VoterID: "alice", TitleID: "tt1", Votes: votes}
	}
	at := time.Unix(1700000000, 0)
	base := sub(domain.Choice{"story", "up"}, domain.Choice{"acting", "down"})
	ids := func(s domain.Submission) []string { return s.Accept("key-1", at).VoteIDs() }

	// The same votes in another order, at another time, with another client
	// time: the same submission.
	same := sub(domain.Choice{"acting", "down"}, domain.Choice{"story", "up"})
	same.OccurredAt = "2024-03-01T08:00:00Z"
	if got, want := same.Accept("key-1", at.Add(time.Minute)).VoteIDs(), []string{ids(base)[1], ids(base)[0]}; !reflect.DeepEqual(got, want) {
		t.Errorf("same votes reordered: IDs %v, want %v", got, want)
	}

	for name, other := range map[string]domain.Submission{
		"one choice changed":  sub(domain.Choice{"story", "up"}, domain.Choice{"acting", "up"}),
		"an aspect left out":  sub(domain.Choice{"story", "up"}),
		"an aspect added":     sub(domain.Choice{"story", "up"}, domain.Choice{"acting", "down"}, domain.Choice{"overall", "up"}),
		"the other changed":   sub(domain.Choice{"story", "down"}, domain.Choice{"acting", "down"}),
		"all choices changed": sub(domain.Choice{"story", "down"}, domain.Choice{"acting", "up"}),
	} {
		if other.Digest() == base.Digest() {
			t.Errorf("%s: same digest %s", name, base.Digest())
		}
		for _, id := range ids(other) {
			if slices.Contains(ids(base), id) {
				t.Errorf("%s: vote ID %s is shared with the first content, even on an unchanged aspect", name, id)
			}
		}
	}
}
