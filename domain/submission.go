package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Limits of the submission contract.
const (
	MaxBodyBytes = 16 << 10
	MaxVotes     = 5
	maxIDLen     = 64
)

var (
	idPattern             = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

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

type submissionJSON struct {
	VoterID    *string    `json:"voterId"`
	TitleID    *string    `json:"titleId"`
	Votes      []voteJSON `json:"votes"`
	OccurredAt *string    `json:"occurredAt"`
}

type voteJSON struct {
	Aspect *string `json:"aspect"`
	Choice *string `json:"choice"`
}

// DecodeSubmission parses and validates a request body. authVoter is the
// authenticated voter (the JWT subject) or empty: when set it is the voter,
// and a body voterId that differs is refused. Every failure is an *Error.
func DecodeSubmission(body []byte, catalog Catalog, authVoter string) (Submission, error) {
	if len(body) > MaxBodyBytes {
		return Submission{}, &Error{Code: CodeBodyTooLarge, Message: fmt.Sprintf("body is over %d bytes", MaxBodyBytes)}
	}
	var in submissionJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Submission{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Submission{}, &Error{Code: CodeInvalidJSON, Message: "body has data after the JSON object"}
	}

	var s Submission
	switch {
	case authVoter != "":
		s.VoterID = authVoter
		if in.VoterID != nil && strings.TrimSpace(*in.VoterID) != authVoter {
			return Submission{}, fieldError(CodeForbidden, "voterId", "voterId differs from the authenticated voter")
		}
	default:
		id, err := validID("voterId", in.VoterID)
		if err != nil {
			return Submission{}, err
		}
		s.VoterID = id
	}
	id, err := validID("titleId", in.TitleID)
	if err != nil {
		return Submission{}, err
	}
	s.TitleID = id

	switch {
	case in.Votes == nil:
		return Submission{}, fieldError(CodeMissingField, "votes", "votes is required")
	case len(in.Votes) == 0:
		return Submission{}, fieldError(CodeInvalidField, "votes", "votes must have 1 to %d entries", MaxVotes)
	case len(in.Votes) > MaxVotes:
		return Submission{}, fieldError(CodeInvalidField, "votes", "votes must have 1 to %d entries, got %d", MaxVotes, len(in.Votes))
	}
	seen := make(map[string]bool, len(in.Votes))
	for i, v := range in.Votes {
		field := fmt.Sprintf("votes[%d]", i)
		if v.Aspect == nil {
			return Submission{}, fieldError(CodeMissingField, field+".aspect", "aspect is required")
		}
		if v.Choice == nil {
			return Submission{}, fieldError(CodeMissingField, field+".choice", "choice is required")
		}
		aspect, choice, aspectOK, choiceOK := catalog.lookup(*v.Aspect, *v.Choice)
		if !aspectOK {
			return Submission{}, fieldError(CodeInvalidField, field+".aspect", "aspect must be one of: %s", catalog.aspectNames())
		}
		if !choiceOK {
			return Submission{}, fieldError(CodeInvalidField, field+".choice", "choice for %s must be one of: %s", aspect.Name, strings.Join(aspect.Choices, ", "))
		}
		if seen[aspect.Name] {
			return Submission{}, fieldError(CodeDuplicateAspect, field+".aspect", "aspect %s is voted on more than once", aspect.Name)
		}
		seen[aspect.Name] = true
		s.Votes = append(s.Votes, Choice{Aspect: aspect.Name, Choice: choice})
	}

	if in.OccurredAt != nil {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(*in.OccurredAt))
		if err != nil {
			return Submission{}, fieldError(CodeInvalidField, "occurredAt", "occurredAt must be an RFC 3339 time")
		}
		s.OccurredAt = t.UTC().Format(time.RFC3339Nano)
	}
	return s, nil
}

// ValidIdempotencyKey reports whether key may serve as a submission ID:
// 1 to 64 of A-Za-z0-9_-.
func ValidIdempotencyKey(key string) bool {
	return idempotencyKeyPattern.MatchString(key)
}

// ValidTitleID checks a title ID given outside a submission (a query path).
func ValidTitleID(id string) (string, error) {
	return validID("titleId", &id)
}

func validID(field string, v *string) (string, error) {
	if v == nil {
		return "", fieldError(CodeMissingField, field, "%s is required", field)
	}
	id := strings.TrimSpace(*v)
	if !idPattern.MatchString(id) {
		return "", fieldError(CodeInvalidField, field, "%s must be 1 to %d of A-Z a-z 0-9 . _ : -", field, maxIDLen)
	}
	return id, nil
}

// jsonError turns an encoding/json failure into a client error naming the
// field where the decoder can tell it.
func jsonError(err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &Error{Code: CodeInvalidJSON, Message: "body is not a valid JSON object"}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &Error{Code: CodeInvalidJSON, Message: "body must be a JSON object"}
		}
		return fieldError(CodeInvalidField, typ.Field, "%s must be a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError(CodeUnknownField, name, "unknown field %s", name)
	default:
		return &Error{Code: CodeInvalidJSON, Message: "body is not a valid JSON object"}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice":
		return "array"
	case "struct", "ptr":
		return "object"
	default:
		return goKind
	}
}
