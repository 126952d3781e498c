package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of the submission contract.
const (
	MaxBodyBytes = 16 << 10
	MaxVotes     = 5
	maxIDLen     = 64
)

// matchID reports whether s is 1 to 64 characters, each a letter, a digit
// or one of extra: a loop, as the receiver runs it on every request.
func matchID(s, extra string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// Choice is one aspect voted on and the choice given, both lower case and
// taken from the catalog.
type Choice struct {
	Aspect string
	Choice string
}

// Submission is one viewer's votes on one title, validated and sanitised.
type Submission struct {
	VoterID    string
	TitleID    string
	Votes      []Choice
	OccurredAt string // RFC 3339 in UTC, or empty when the client gave none
}

// BodyTooLarge is the error of a body over MaxBodyBytes.
func BodyTooLarge() *Error {
	return &Error{Code: CodeBodyTooLarge, Message: fmt.Sprintf("body is over %d bytes", MaxBodyBytes)}
}

// DecodeSubmission parses and validates a request body. subject is the
// authenticated caller, the JWT sub claim as given, or empty where the route
// has no authorizer. With a subject the voter is VoterKey(subject), and a
// body voterId other than the subject itself is refused. Every failure is
// an *Error. Field names are exact: {"VoterID": …} is an unknown field, not
// voterId.
func DecodeSubmission(body []byte, catalog Catalog, subject string) (Submission, error) {
	if len(body) > MaxBodyBytes {
		return Submission{}, BodyTooLarge()
	}
	// A bad subject is the caller's identity, not the body's fault: it
	// comes first.
	var authVoter string
	if subject != "" {
		v, err := VoterKey(subject)
		if err != nil {
			return Submission{}, err
		}
		authVoter = v
	}
	in, err := decodeFields(body)
	if err != nil {
		return Submission{}, err
	}
	var s Submission
	if s.VoterID, err = voterOf(in.VoterID, subject, authVoter); err != nil {
		return Submission{}, err
	}
	if s.TitleID, err = validID("titleId", in.TitleID); err != nil {
		return Submission{}, err
	}
	if s.Votes, err = decodeVotes(in.Votes, catalog); err != nil {
		return Submission{}, err
	}
	if s.OccurredAt, err = occurredAt(in.OccurredAt); err != nil {
		return Submission{}, err
	}
	return s, nil
}

// submissionJSON is a body's members, each nil when absent.
type submissionJSON struct {
	VoterID, TitleID, OccurredAt *string
	Votes                        []json.RawMessage
}

// decodeFields reads body as one JSON object with no member twice and
// only the members a submission has, each of its JSON type.
func decodeFields(body []byte) (submissionJSON, error) {
	var in submissionJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return in, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return in, &Error{Code: CodeInvalidJSON, Message: "body has data after the JSON object"}
	}
	if top == nil {
		return in, &Error{Code: CodeInvalidJSON, Message: "body must be a JSON object"}
	}
	// encoding/json keeps the last of two members with one name, where a
	// proxy or a log reader in front may keep the first: refuse them all.
	if path, dup := duplicateMember(body); dup {
		return in, fieldError(CodeDuplicateField, path, "%s is given more than once", path)
	}
	if err := onlyFields(top, "", "voterId", "titleId", "votes", "occurredAt"); err != nil {
		return in, err
	}
	for _, f := range []struct {
		name string
		dst  any
		kind string
	}{{"voterId", &in.VoterID, "string"}, {"titleId", &in.TitleID, "string"}, {"occurredAt", &in.OccurredAt, "string"}, {"votes", &in.Votes, "array"}} {
		if raw, ok := top[f.name]; ok {
			if err := json.Unmarshal(raw, f.dst); err != nil {
				return in, fieldError(CodeInvalidField, f.name, "%s must be a JSON %s", f.name, f.kind)
			}
		}
	}
	return in, nil
}

// voterOf is the submission's voter: authVoter, the authenticated
// subject's key, when there is a subject (a body voterId must then name the
// same subject), or else the body's voterId.
func voterOf(bodyVoter *string, subject, authVoter string) (string, error) {
	if subject == "" {
		return validID("voterId", bodyVoter)
	}
	if bodyVoter != nil && *bodyVoter != subject && trimSpace(*bodyVoter) != subject {
		return "", fieldError(CodeVoterMismatch, "voterId", "voterId differs from the authenticated voter")
	}
	return authVoter, nil
}

// decodeVotes checks the votes against catalog: 1 to MaxVotes of them,
// each a known aspect and choice, no aspect twice.
func decodeVotes(votes []json.RawMessage, catalog Catalog) ([]Choice, error) {
	switch {
	case votes == nil:
		return nil, fieldError(CodeMissingField, "votes", "votes is required")
	case len(votes) == 0:
		return nil, fieldError(CodeInvalidField, "votes", "votes must have 1 to %d entries", MaxVotes)
	case len(votes) > MaxVotes:
		return nil, fieldError(CodeInvalidField, "votes", "votes must have 1 to %d entries, got %d", MaxVotes, len(votes))
	}
	seen := make(map[string]bool, len(votes))
	out := make([]Choice, 0, len(votes))
	for i, raw := range votes {
		field := "votes[" + strconv.Itoa(i) + "]"
		v, err := decodeVote(raw, field)
		if err != nil {
			return nil, err
		}
		if v.Aspect == nil {
			return nil, fieldError(CodeMissingField, field+".aspect", "aspect is required")
		}
		if v.Choice == nil {
			return nil, fieldError(CodeMissingField, field+".choice", "choice is required")
		}
		aspect, choice, aspectOK, choiceOK := catalog.lookup(*v.Aspect, *v.Choice)
		if !aspectOK {
			return nil, fieldError(CodeInvalidField, field+".aspect", "aspect must be one of: %s", catalog.aspectNames())
		}
		if !choiceOK {
			return nil, fieldError(CodeInvalidField, field+".choice", "choice for %s must be one of: %s", aspect.Name, strings.Join(aspect.Choices, ", "))
		}
		if seen[aspect.Name] {
			return nil, fieldError(CodeDuplicateAspect, field+".aspect", "aspect %s is voted on more than once", aspect.Name)
		}
		seen[aspect.Name] = true
		out = append(out, Choice{Aspect: aspect.Name, Choice: choice})
	}
	return out, nil
}

// occurredAt is the client's time of the vote in UTC, or "" when it gave none.
func occurredAt(raw *string) (string, error) {
	if raw == nil {
		return "", nil
	}
	t, ok := parseRFC3339(trimSpace(*raw))
	if !ok {
		return "", fieldError(CodeInvalidField, "occurredAt", "occurredAt must be an RFC 3339 date-time such as 2024-03-01T10:00:00.5+02:00")
	}
	if t.Year() < 1 || t.Year() > 9999 {
		return "", fieldError(CodeInvalidField, "occurredAt", "occurredAt must be between years 0001 and 9999 in UTC")
	}
	return t.Format(time.RFC3339Nano), nil
}

type voteJSON struct {
	Aspect, Choice *string
}

// decodeVote decodes one entry of votes, named field in errors.
func decodeVote(raw json.RawMessage, field string) (voteJSON, *Error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return voteJSON{}, fieldError(CodeInvalidField, field, "%s must be a JSON object", field)
	}
	if err := onlyFields(m, field+".", "aspect", "choice"); err != nil {
		return voteJSON{}, err
	}
	var v voteJSON
	for name, dst := range map[string]**string{"aspect": &v.Aspect, "choice": &v.Choice} {
		if raw, ok := m[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return voteJSON{}, fieldError(CodeInvalidField, field+"."+name, "%s.%s must be a JSON string", field, name)
			}
		}
	}
	return v, nil
}

// onlyFields refuses a member whose name is not one of names, exactly.
func onlyFields(m map[string]json.RawMessage, prefix string, names ...string) *Error {
	var unknown []string
	for k := range m {
		if !slices.Contains(names, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fieldError(CodeUnknownField, prefix+unknown[0], "unknown field %s%s", prefix, unknown[0])
}

// ValidIdempotencyKey reports whether key may serve as a submission ID:
// 1 to 64 of A-Za-z0-9_-.
func ValidIdempotencyKey(key string) bool {
	return matchID(key, "_-")
}

// ValidTitleID checks a title ID given outside a submission (a query path).
func ValidTitleID(id string) (string, error) {
	return validID("titleId", &id)
}

// ValidVoterID checks a voter ID given outside a submission (a support
// lookup).
func ValidVoterID(id string) (string, error) {
	return validID("voterId", &id)
}

func validID(field string, v *string) (string, error) {
	if v == nil {
		return "", fieldError(CodeMissingField, field, "%s is required", field)
	}
	id := trimSpace(*v)
	if !matchID(id, "._:-") {
		return "", fieldError(CodeInvalidField, field, "%s must be 1 to %d of A-Z a-z 0-9 . _ : -", field, maxIDLen)
	}
	return id, nil
}

// jsonError turns an encoding/json failure of the whole body into a client
// error.
func jsonError(err error) *Error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return &Error{Code: CodeInvalidJSON, Message: "body must be a JSON object"}
	}
	return &Error{Code: CodeInvalidJSON, Message: "body is not a valid JSON object"}
}
