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

// idPattern is the contract's ID shape, written out again so that a change
// to the code's own pattern shows up here.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// hashedVoter is the shape of a voter ID hashed from a subject: "h:" and
// 256 bits in base32.
var hashedVoter = regexp.MustCompile(`^h:[a-z2-7]{52}$`)

// clientCodes are the codes DecodeSubmission may give.
var clientCodes = map[string]bool{
	domain.CodeInvalidJSON:     true,
	domain.CodeUnknownField:    true,
	domain.CodeMissingField:    true,
	domain.CodeInvalidField:    true,
	domain.CodeDuplicateAspect: true,
	domain.CodeDuplicateField:  true,
	domain.CodeBodyTooLarge:    true,
	domain.CodeVoterMismatch:   true,
	domain.CodeUnauthorized:    true,
}

func TestDecodeSubmissionAccepts(t *testing.T) {
	id64 := strings.Repeat("a", 64)
	tests := []struct {
		name string
		body string
		auth string
		want domain.Submission
	}{
		{
			name: "one vote",
			body: `{"voterId":"alice","titleId":"tt0111161","votes":[{"aspect":"overall","choice":"up"}]}`,
			want: domain.Submission{VoterID: "alice", TitleID: "tt0111161", Votes: []domain.Choice{{Aspect: "overall", Choice: "up"}}},
		},
		{
			name: "every aspect, request order kept",
			body: `{"voterId":"v","titleId":"t","votes":[
				{"aspect":"soundtrack","choice":"down"},{"aspect":"overall","choice":"up"},
				{"aspect":"visuals","choice":"up"},{"aspect":"acting","choice":"down"},{"aspect":"story","choice":"up"}]}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{
				{"soundtrack", "down"}, {"overall", "up"}, {"visuals", "up"}, {"acting", "down"}, {"story", "up"},
			}},
		},
		{
			name: "IDs trimmed",
			body: `{"voterId":"  alice\t","titleId":"\n tt1 ","votes":[{"aspect":"story","choice":"down"}]}`,
			want: domain.Submission{VoterID: "alice", TitleID: "tt1", Votes: []domain.Choice{{"story", "down"}}},
		},
		{
			name: "IDs of every allowed character and 64 long",
			body: `{"voterId":"A-z_0.9:x","titleId":"` + id64 + `","votes":[{"aspect":"overall","choice":"up"}]}`,
			want: domain.Submission{VoterID: "A-z_0.9:x", TitleID: id64, Votes: []domain.Choice{{"overall", "up"}}},
		},
		{
			name: "aspect and choice folded to lower case",
			body: `{"voterId":"v","titleId":"t","votes":[{"aspect":"OVERALL","choice":"Up"},{"aspect":"Story","choice":"DOWN"}]}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}, {"story", "down"}}},
		},
		{
			name: "occurredAt normalised to UTC",
			body: `{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":"2024-03-01T10:00:00+02:00"}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}, OccurredAt: "2024-03-01T08:00:00Z"},
		},
		{
			name: "occurredAt with fraction and spaces",
			body: `{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":" 2024-03-01T08:00:00.250Z "}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}, OccurredAt: "2024-03-01T08:00:00.25Z"},
		},
		{
			name: "occurredAt a leap second, folded into the next day",
			body: `{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":"2016-12-31T23:59:60Z"}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}, OccurredAt: "2017-01-01T00:00:00Z"},
		},
		{
			name: "occurredAt a leap second with an offset and a fraction",
			body: `{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":"2016-12-31T18:59:60.5-05:00"}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}, OccurredAt: "2017-01-01T00:00:00.5Z"},
		},
		{
			name: "occurredAt with lower-case t and z",
			body: `{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":"2024-02-29t08:00:00.000000001z"}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}, OccurredAt: "2024-02-29T08:00:00.000000001Z"},
		},
		{
			name: "occurredAt fraction beyond nanoseconds dropped",
			body: `{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":"2024-03-01T08:00:00.1234567899-00:00"}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}, OccurredAt: "2024-03-01T08:00:00.123456789Z"},
		},
		{
			name: "members named with escapes are the same names",
			body: `{"voter\u0049d":"v","titleId":"t","vot\u0065s":[{"aspect":"overall","choice":"up"}]}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}},
		},
		{
			name: "occurredAt null is no time",
			body: `{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":null}`,
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}},
		},
		{
			name: "trailing whitespace",
			body: "{\"voterId\":\"v\",\"titleId\":\"t\",\"votes\":[{\"aspect\":\"overall\",\"choice\":\"up\"}]}\r\n\t ",
			want: domain.Submission{VoterID: "v", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}},
		},
		{
			name: "authenticated voter, no voterId in body",
			body: `{"titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`,
			auth: "sub-123",
			want: domain.Submission{VoterID: "sub-123", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}},
		},
		{
			name: "authenticated voter, voterId null",
			body: `{"voterId":null,"titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`,
			auth: "sub-123",
			want: domain.Submission{VoterID: "sub-123", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}},
		},
		{
			name: "authenticated voter, same voterId after trimming",
			body: `{"voterId":" sub-123 ","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`,
			auth: "sub-123",
			want: domain.Submission{VoterID: "sub-123", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}},
		},
		{
			name: "authenticated voter outside the ID pattern is a hash of the subject",
			body: `{"titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`,
			auth: "auth0|5f7c8ec7c33c6c004bbafe82",
			want: domain.Submission{VoterID: "h:igveq6eh4pcfygnsisfs6a3fklyawldy4i4unu4qu7uen5vnldqq", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}},
		},
		{
			name: "a hashed subject may be named in the body as given",
			body: `{"voterId":"auth0|5f7c8ec7c33c6c004bbafe82","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`,
			auth: "auth0|5f7c8ec7c33c6c004bbafe82",
			want: domain.Submission{VoterID: "h:igveq6eh4pcfygnsisfs6a3fklyawldy4i4unu4qu7uen5vnldqq", TitleID: "t", Votes: []domain.Choice{{"overall", "up"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.DecodeSubmission([]byte(tt.body), domain.DefaultCatalog(), tt.auth)
			if err != nil {
				t.Fatalf("DecodeSubmission: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeSubmissionRefuses(t *testing.T) {
	vote := `{"aspect":"overall","choice":"up"}`
	withVotes := func(votes ...string) string {
		return `{"voterId":"v","titleId":"t","votes":[` + strings.Join(votes, ",") + `]}`
	}
	tests := []struct {
		name  string
		body  string
		auth  string
		code  string
		field string
	}{
		{name: "empty body", body: ``, code: domain.CodeInvalidJSON},
		{name: "whitespace only", body: " \n", code: domain.CodeInvalidJSON},
		{name: "syntax error", body: `{"voterId":`, code: domain.CodeInvalidJSON},
		{name: "not an object", body: `[1,2]`, code: domain.CodeInvalidJSON},
		{name: "a string", body: `"votes"`, code: domain.CodeInvalidJSON},
		{name: "trailing object", body: withVotes(vote) + `{}`, code: domain.CodeInvalidJSON},
		{name: "trailing garbage", body: withVotes(vote) + `x`, code: domain.CodeInvalidJSON},
		{name: "trailing brace", body: withVotes(vote) + `}`, code: domain.CodeInvalidJSON},
		{name: "unknown top-level field", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"admin":true}`, code: domain.CodeUnknownField, field: "admin"},
		{name: "unknown vote field", body: withVotes(`{"aspect":"overall","choice":"up","weight":9}`), code: domain.CodeUnknownField, field: "votes[0].weight"},
		{name: "voterId not a string", body: `{"voterId":7,"titleId":"t","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "voterId"},
		{name: "votes not an array", body: `{"voterId":"v","titleId":"t","votes":{"aspect":"overall"}}`, code: domain.CodeInvalidField, field: "votes"},
		{name: "vote not an object", body: withVotes(`"overall"`), code: domain.CodeInvalidField, field: "votes[0]"},
		{name: "second vote's choice not a string", body: withVotes(`{"aspect":"overall","choice":"up"},{"aspect":"story","choice":7}`), code: domain.CodeInvalidField, field: "votes[1].choice"},
		{name: "field names are exact", body: `{"VOTERID":"v","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeUnknownField, field: "VOTERID"},
		{name: "vote field names are exact", body: withVotes(`{"Aspect":"overall","choice":"up"}`), code: domain.CodeUnknownField, field: "votes[0].Aspect"},
		{name: "occurredAt before year 1 in UTC", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"0000-01-01T00:30:00+01:00"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt after year 9999 in UTC", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"9999-12-31T23:59:59-01:00"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt not a string", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":1700000000}`, code: domain.CodeInvalidField, field: "occurredAt"},

		{name: "voterId missing", body: `{"titleId":"t","votes":[` + vote + `]}`, code: domain.CodeMissingField, field: "voterId"},
		{name: "voterId null", body: `{"voterId":null,"titleId":"t","votes":[` + vote + `]}`, code: domain.CodeMissingField, field: "voterId"},
		{name: "voterId empty", body: `{"voterId":"","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "voterId"},
		{name: "voterId blank", body: `{"voterId":"   ","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "voterId"},
		{name: "voterId 65 long", body: `{"voterId":"` + strings.Repeat("v", 65) + `","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "voterId"},
		{name: "voterId with a space inside", body: `{"voterId":"a b","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "voterId"},
		{name: "voterId with a hash", body: `{"voterId":"a#b","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "voterId"},
		{name: "voterId not ASCII", body: `{"voterId":"zoë","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "voterId"},
		{name: "titleId missing", body: `{"voterId":"v","votes":[` + vote + `]}`, code: domain.CodeMissingField, field: "titleId"},
		{name: "titleId null", body: `{"voterId":"v","titleId":null,"votes":[` + vote + `]}`, code: domain.CodeMissingField, field: "titleId"},
		{name: "titleId with a hash", body: `{"voterId":"v","titleId":"t#01","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "titleId"},
		{name: "titleId with a slash", body: `{"voterId":"v","titleId":"a/b","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "titleId"},
		{name: "titleId 65 long", body: `{"voterId":"v","titleId":"` + strings.Repeat("t", 65) + `","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "titleId"},

		{name: "votes missing", body: `{"voterId":"v","titleId":"t"}`, code: domain.CodeMissingField, field: "votes"},
		{name: "votes null", body: `{"voterId":"v","titleId":"t","votes":null}`, code: domain.CodeMissingField, field: "votes"},
		{name: "votes empty", body: withVotes(), code: domain.CodeInvalidField, field: "votes"},
		{name: "six votes", body: withVotes(
			`{"aspect":"overall","choice":"up"}`, `{"aspect":"story","choice":"up"}`, `{"aspect":"acting","choice":"up"}`,
			`{"aspect":"visuals","choice":"up"}`, `{"aspect":"soundtrack","choice":"up"}`, `{"aspect":"overall","choice":"down"}`,
		), code: domain.CodeInvalidField, field: "votes"},
		{name: "vote null", body: withVotes(`null`), code: domain.CodeInvalidField, field: "votes[0]"},
		{name: "aspect missing", body: withVotes(vote, `{"choice":"up"}`), code: domain.CodeMissingField, field: "votes[1].aspect"},
		{name: "aspect null", body: withVotes(`{"aspect":null,"choice":"up"}`), code: domain.CodeMissingField, field: "votes[0].aspect"},
		{name: "choice missing", body: withVotes(vote, `{"aspect":"story"}`), code: domain.CodeMissingField, field: "votes[1].choice"},
		{name: "choice null", body: withVotes(`{"aspect":"story","choice":null}`), code: domain.CodeMissingField, field: "votes[0].choice"},
		{name: "aspect unknown", body: withVotes(vote, `{"aspect":"popcorn","choice":"up"}`), code: domain.CodeInvalidField, field: "votes[1].aspect"},
		{name: "aspect empty", body: withVotes(`{"aspect":"","choice":"up"}`), code: domain.CodeInvalidField, field: "votes[0].aspect"},
		{name: "choice unknown", body: withVotes(`{"aspect":"overall","choice":"sideways"}`), code: domain.CodeInvalidField, field: "votes[0].choice"},
		{name: "choice of another aspect's kind", body: withVotes(`{"aspect":"overall","choice":"overall"}`), code: domain.CodeInvalidField, field: "votes[0].choice"},
		{name: "duplicate aspect", body: withVotes(vote, `{"aspect":"overall","choice":"down"}`), code: domain.CodeDuplicateAspect, field: "votes[1].aspect"},
		{name: "duplicate aspect differing in case", body: withVotes(`{"aspect":"story","choice":"up"}`, vote, `{"aspect":"STORY","choice":"up"}`), code: domain.CodeDuplicateAspect, field: "votes[2].aspect"},

		{name: "duplicate voterId", body: `{"voterId":"a","voterId":"b","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeDuplicateField, field: "voterId"},
		{name: "duplicate voterId, the same value", body: `{"voterId":"a","titleId":"t","voterId":"a","votes":[` + vote + `]}`, code: domain.CodeDuplicateField, field: "voterId"},
		{name: "duplicate voterId spelled with an escape", body: `{"voterId":"a","titleId":"t","votes":[` + vote + `],"voter\u0049d":"b"}`, code: domain.CodeDuplicateField, field: "voterId"},
		{name: "duplicate votes", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"votes":[{"aspect":"story","choice":"up"}]}`, code: domain.CodeDuplicateField, field: "votes"},
		{name: "duplicate occurredAt", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":null,"occurredAt":"2024-03-01T08:00:00Z"}`, code: domain.CodeDuplicateField, field: "occurredAt"},
		{name: "duplicate choice in a vote", body: withVotes(vote, `{"aspect":"story","choice":"up","choice":"down"}`), code: domain.CodeDuplicateField, field: "votes[1].choice"},
		{name: "duplicate aspect member in a vote", body: withVotes(`{"aspect":"story","aspect":"acting","choice":"up"}`), code: domain.CodeDuplicateField, field: "votes[0].aspect"},
		{name: "duplicate inside an unknown member", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"x":[1,{"a":1,"b":{},"a":2}]}`, code: domain.CodeDuplicateField, field: "x[1].a"},
		{name: "a member in two sibling objects is no duplicate, a bad field still is", body: withVotes(vote, `{"aspect":"story","choice":"up"}`, `{"aspect":"acting","choice":"up","x":{}}`), code: domain.CodeUnknownField, field: "votes[2].x"},
		{name: "Kelvin sign is not k", body: withVotes(`{"aspect":"overall","choice":"up"}`, `{"aspect":"stor\u212a","choice":"up"}`), code: domain.CodeInvalidField, field: "votes[1].aspect"},
		{name: "dotless i does not fold", body: withVotes(`{"aspect":"v\u0130suals","choice":"up"}`), code: domain.CodeInvalidField, field: "votes[0].aspect"},
		{name: "long s is not s", body: withVotes(`{"aspect":"\u017ftory","choice":"up"}`), code: domain.CodeInvalidField, field: "votes[0].aspect"},
		{name: "no-break space is not trimmed", body: withVotes(`{"aspect":"story\u00a0","choice":"up"}`), code: domain.CodeInvalidField, field: "votes[0].aspect"},
		{name: "no-break space around a voterId", body: `{"voterId":"\u00a0v","titleId":"t","votes":[` + vote + `]}`, code: domain.CodeInvalidField, field: "voterId"},

		{name: "occurredAt not a time", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"yesterday"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt without zone", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T10:00:00"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt date only", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt impossible day", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-02-30T00:00:00Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt with a comma fraction", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T08:00:00,5Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt with an empty fraction", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T08:00:00.Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt second 60 outside a day's last minute", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2016-12-31T12:00:60Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt second 60 at 23:59 local but not UTC", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2016-12-31T23:59:60+01:00"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt second 61", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2016-12-31T23:59:61Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt hour 24", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T24:00:00Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt with a space for T", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01 08:00:00Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt offset without colon", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T08:00:00+0200"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt offset hour 24", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T08:00:00+24:00"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt offset minute 60", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T08:00:00+01:60"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt 29 February of a common year", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2023-02-29T08:00:00Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt one-digit month", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-3-01T08:00:00Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt five-digit year", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"+2024-03-01T08:00:00Z"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt zone letter other than Z", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T08:00:00A"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt trailing data", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":"2024-03-01T08:00:00Zx"}`, code: domain.CodeInvalidField, field: "occurredAt"},
		{name: "occurredAt empty", body: `{"voterId":"v","titleId":"t","votes":[` + vote + `],"occurredAt":""}`, code: domain.CodeInvalidField, field: "occurredAt"},

		{name: "authenticated voter differs from body", body: `{"voterId":"mallory","titleId":"t","votes":[` + vote + `]}`, auth: "alice", code: domain.CodeVoterMismatch, field: "voterId"},
		{name: "authenticated voter differs in case", body: `{"voterId":"Alice","titleId":"t","votes":[` + vote + `]}`, auth: "alice", code: domain.CodeVoterMismatch, field: "voterId"},
		{name: "authenticated voter, body voterId empty", body: `{"voterId":"","titleId":"t","votes":[` + vote + `]}`, auth: "alice", code: domain.CodeVoterMismatch, field: "voterId"},
		{name: "authenticated voter, body names the hashed voter ID", body: `{"voterId":"h:igveq6eh4pcfygnsisfs6a3fklyawldy4i4unu4qu7uen5vnldqq","titleId":"t","votes":[` + vote + `]}`, auth: "auth0|5f7c8ec7c33c6c004bbafe82", code: domain.CodeVoterMismatch, field: "voterId"},
		{name: "subject with a control character", body: `{"titleId":"t","votes":[` + vote + `]}`, auth: "alice\x00", code: domain.CodeUnauthorized},
		{name: "subject over 1 KiB, body fine", body: `{"titleId":"t","votes":[` + vote + `]}`, auth: strings.Repeat("s", 1025), code: domain.CodeUnauthorized},
		{name: "a bad subject comes before a bad body", body: `{"titleId":`, auth: "a\nb", code: domain.CodeUnauthorized},
		{name: "authenticated voter does not excuse a bad title", body: `{"titleId":"","votes":[` + vote + `]}`, auth: "alice", code: domain.CodeInvalidField, field: "titleId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.DecodeSubmission([]byte(tt.body), domain.DefaultCatalog(), tt.auth)
			de := asDomainError(t, err)
			if de.Code != tt.code || de.Field != tt.field {
				t.Errorf("got code %q field %q (%v), want code %q field %q", de.Code, de.Field, err, tt.code, tt.field)
			}
			if de.Message == "" {
				t.Error("error has no message")
			}
			if !reflect.DeepEqual(got, domain.Submission{}) {
				t.Errorf("a refused submission came back non-zero: %+v", got)
			}
		})
	}
}

func TestDecodeSubmissionBodyLimit(t *testing.T) {
	body := `{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`
	atLimit := body + strings.Repeat(" ", domain.MaxBodyBytes-len(body))
	if len(atLimit) != 16<<10 {
		t.Fatalf("test body is %d bytes, want 16 KiB", len(atLimit))
	}
	if _, err := domain.DecodeSubmission([]byte(atLimit), domain.DefaultCatalog(), ""); err != nil {
		t.Errorf("body of exactly 16 KiB: %v", err)
	}
	de := asDomainError(t, func() error {
		_, err := domain.DecodeSubmission([]byte(atLimit+" "), domain.DefaultCatalog(), "")
		return err
	}())
	if de.Code != domain.CodeBodyTooLarge {
		t.Errorf("body of 16 KiB + 1: got %v, want %s", de, domain.CodeBodyTooLarge)
	}
	// Too large wins over anything else wrong with the body.
	de = asDomainError(t, func() error {
		_, err := domain.DecodeSubmission([]byte(strings.Repeat("x", 17<<10)), domain.DefaultCatalog(), "")
		return err
	}())
	if de.Code != domain.CodeBodyTooLarge {
		t.Errorf("17 KiB of garbage: got %v, want %s", de, domain.CodeBodyTooLarge)
	}
}

func TestDecodeSubmissionCustomCatalog(t *testing.T) {
	catalog, err := domain.ParseCatalog("overall=one|two|three;ending=happy|sad")
	if err != nil {
		t.Fatal(err)
	}
	got, err := domain.DecodeSubmission([]byte(`{"voterId":"v","titleId":"t","votes":[{"aspect":"ENDING","choice":"Sad"},{"aspect":"overall","choice":"THREE"}]}`), catalog, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Choice{{"ending", "sad"}, {"overall", "three"}}
	if !slices.Equal(got.Votes, want) {
		t.Errorf("votes %+v, want %+v", got.Votes, want)
	}
	// An aspect of the default catalog is unknown to this one.
	_, err = domain.DecodeSubmission([]byte(`{"voterId":"v","titleId":"t","votes":[{"aspect":"story","choice":"up"}]}`), catalog, "")
	if de := asDomainError(t, err); de.Code != domain.CodeInvalidField || de.Field != "votes[0].aspect" {
		t.Errorf("aspect outside the catalog: got %v", de)
	}
	if de := asDomainError(t, err); !strings.Contains(de.Message, "overall") || !strings.Contains(de.Message, "ending") {
		t.Errorf("message %q does not list the catalog's aspects", de.Message)
	}
}

func TestValidIdempotencyKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"Retry_2", true},
		{strings.Repeat("k", 64), true},
		{"", false},
		{strings.Repeat("k", 65), false},
		{"a.b", false}, // dots are allowed in IDs, not in keys
		{"a:b", false},
		{"a b", false},
		{" a", false},
		{"a#b", false},
		{"ключ", false},
	}
	for _, tt := range tests {
		if got := domain.ValidIdempotencyKey(tt.key); got != tt.want {
			t.Errorf("ValidIdempotencyKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestValidTitleID(t *testing.T) {
	tests := []struct {
		in, want string
		code     string
	}{
		{in: "tt0111161", want: "tt0111161"},
		{in: " tt1 ", want: "tt1"},
		{in: "", code: domain.CodeInvalidField},
		{in: "a/b", code: domain.CodeInvalidField},
		{in: strings.Repeat("t", 65), code: domain.CodeInvalidField},
	}
	for _, tt := range tests {
		got, err := domain.ValidTitleID(tt.in)
		if tt.code == "" {
			if err != nil || got != tt.want {
				t.Errorf("ValidTitleID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if de := asDomainError(t, err); de.Code != tt.code || de.Field != "titleId" {
			t.Errorf("ValidTitleID(%q): got %v, want %s on titleId", tt.in, de, tt.code)
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *domain.Error
		want string
	}{
		{&domain.Error{Code: "invalid_field", Message: "bad", Field: "votes[0].aspect"}, "invalid_field: bad (votes[0].aspect)"},
		{&domain.Error{Code: "invalid_json", Message: "bad"}, "invalid_json: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func asDomainError(t *testing.T, err error) *domain.Error {
	t.Helper()
	if err == nil {
		t.Fatal("got no error")
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *domain.Error", err, err)
	}
	return de
}

func FuzzDecodeSubmission(f *testing.F) {
	seeds := []struct {
		body string
		auth string
	}{
		{`{"voterId":"alice","titleId":"tt0111161","votes":[{"aspect":"overall","choice":"up"}]}`, ""},
		{`{"voterId":" Alice ","titleId":"t.1:x_y-z","votes":[{"aspect":"STORY","choice":"Down"},{"aspect":"acting","choice":"up"}],"occurredAt":"2024-03-01T10:00:00.5+02:00"}`, ""},
		{`{"titleId":"t","votes":[{"aspect":"visuals","choice":"up"},{"aspect":"soundtrack","choice":"down"},{"aspect":"overall","choice":"up"},{"aspect":"story","choice":"up"},{"aspect":"acting","choice":"up"}]}`, "sub-1"},
		{`{"voterId":"x","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`, "sub-1"},
		{`{"voterId":"auth0|x","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`, "auth0|x"},
		{`{"titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`, "h:abc"},
		{`{"titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`, "a\x00b"},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"},{"aspect":"overall","choice":"down"}]}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[]}`, ""},
		{`{"voterId":"v","titleId":"t","votes":null,"occurredAt":null}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[null]}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":1}]}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"extra":1}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]} {}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":"0000-01-01T00:00:00Z"}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":"0000-01-01T00:30:00+01:00"}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}],"occurredAt":"9999-12-31T23:59:59-01:00"}`, ""},
		{`{"voterId":"` + strings.Repeat("v", 65) + `"}`, ""},
		{`[]`, ""},
		{`null`, ""},
		{``, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]`, ""},
		{`{"voterId":"a","voterId":"b","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`, ""},
		{`{"voterId":"a","titleId":"t","votes":[{"aspect":"overall","choice":"up","choice":"down"}],"x\u0041":[{"a":1,"a":2}]}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"\u212Aids","choice":"up"}],"occurredAt":"2016-12-31T23:59:60z"}`, ""},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"story","choice":"up"}],"occurredAt":"2016-12-31t23:59:59,5Z"}`, ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.auth)
	}
	catalog := domain.DefaultCatalog()
	f.Fuzz(func(t *testing.T, body []byte, auth string) {
		s, err := domain.DecodeSubmission(body, catalog, auth)
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) {
				t.Fatalf("error %v is a %T, not a *domain.Error", err, err)
			}
			if !clientCodes[de.Code] {
				t.Fatalf("error code %q is not a client code", de.Code)
			}
			if de.Message == "" {
				t.Fatalf("error %q has no message", de.Code)
			}
			return
		}
		if err := submissionInvariants(s, catalog, auth); err != nil {
			t.Fatalf("accepted %q as %+v: %v", body, s, err)
		}
		// A sanitised submission decodes to itself.
		again, err := domain.DecodeSubmission(encodeSubmission(t, s), catalog, "")
		if err != nil {
			t.Fatalf("sanitised %+v does not decode again: %v", s, err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("sanitised %+v decodes again as %+v", s, again)
		}
	})
}

func submissionInvariants(s domain.Submission, catalog domain.Catalog, auth string) error {
	switch {
	case auth == "":
	case idPattern.MatchString(auth) && !strings.HasPrefix(auth, "h:"):
		if s.VoterID != auth {
			return fmt.Errorf("voter %q, authenticated as %q", s.VoterID, auth)
		}
	case !hashedVoter.MatchString(s.VoterID):
		return fmt.Errorf("voter %q for subject %q is not a hash of it", s.VoterID, auth)
	}
	if !idPattern.MatchString(s.VoterID) {
		return fmt.Errorf("voterId %q does not match the pattern", s.VoterID)
	}
	if !idPattern.MatchString(s.TitleID) {
		return fmt.Errorf("titleId %q does not match the pattern", s.TitleID)
	}
	if n := len(s.Votes); n < 1 || n > domain.MaxVotes {
		return fmt.Errorf("%d votes", n)
	}
	seen := map[string]bool{}
	for _, v := range s.Votes {
		if seen[v.Aspect] {
			return fmt.Errorf("aspect %q twice", v.Aspect)
		}
		seen[v.Aspect] = true
		if v.Aspect != strings.ToLower(v.Aspect) || v.Choice != strings.ToLower(v.Choice) {
			return fmt.Errorf("vote %+v not lower case", v)
		}
		i := slices.IndexFunc(catalog.Aspects(), func(a domain.Aspect) bool { return a.Name == v.Aspect })
		if i < 0 {
			return fmt.Errorf("aspect %q not in the catalog", v.Aspect)
		}
		if !slices.Contains(catalog.Aspects()[i].Choices, v.Choice) {
			return fmt.Errorf("choice %q not in the catalog for %s", v.Choice, v.Aspect)
		}
	}
	if s.OccurredAt != "" {
		at, err := time.Parse(time.RFC3339Nano, s.OccurredAt)
		if err != nil {
			return fmt.Errorf("occurredAt %q is not RFC 3339: %v", s.OccurredAt, err)
		}
		if at.Location() != time.UTC || !strings.HasSuffix(s.OccurredAt, "Z") {
			return fmt.Errorf("occurredAt %q is not in UTC", s.OccurredAt)
		}
	}
	return nil
}

func encodeSubmission(t *testing.T, s domain.Submission) []byte {
	t.Helper()
	type vote struct {
		Aspect string `json:"aspect"`
		Choice string `json:"choice"`
	}
	in := struct {
		VoterID    string  `json:"voterId"`
		TitleID    string  `json:"titleId"`
		Votes      []vote  `json:"votes"`
		OccurredAt *string `json:"occurredAt,omitempty"`
	}{VoterID: s.VoterID, TitleID: s.TitleID}
	for _, v := range s.Votes {
		in.Votes = append(in.Votes, vote{v.Aspect, v.Choice})
	}
	if s.OccurredAt != "" {
		in.OccurredAt = &s.OccurredAt
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
