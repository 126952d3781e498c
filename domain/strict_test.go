package domain_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"votes/domain"
)

// Catalog names are ASCII, so only ASCII letters fold: the Kelvin sign
// U+212A, which strings.ToLower turns into "k", names no aspect or choice.
func TestDecodeSubmissionFoldsASCIIOnly(t *testing.T) {
	catalog, err := domain.ParseCatalog("kids=ok|no")
	if err != nil {
		t.Fatal(err)
	}
	got, err := domain.DecodeSubmission([]byte(`{"voterId":"v","titleId":"t","votes":[{"aspect":"KIDS","choice":"oK"}]}`), catalog, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []domain.Choice{{Aspect: "kids", Choice: "ok"}}; !reflect.DeepEqual(got.Votes, want) {
		t.Errorf("votes %+v, want %+v", got.Votes, want)
	}
	for _, tt := range []struct{ body, field string }{
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"\u212Aids","choice":"ok"}]}`, "votes[0].aspect"},
		{`{"voterId":"v","titleId":"t","votes":[{"aspect":"kids","choice":"o\u212A"}]}`, "votes[0].choice"},
	} {
		_, err := domain.DecodeSubmission([]byte(tt.body), catalog, "")
		if de := asDomainError(t, err); de.Code != domain.CodeInvalidField || de.Field != tt.field {
			t.Errorf("%s: got %v, want %s on %s", tt.body, de, domain.CodeInvalidField, tt.field)
		}
	}
}

// Where RFC 3339 and time.Parse agree, the parser gives time.Parse's
// instant; where they differ, it follows the RFC.
func TestParseRFC3339MatchesTimeParse(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		at := time.Unix(rapid.Int64Range(-62135596800+86400, 253402300799-86400).Draw(t, "unix"), rapid.Int64Range(0, 999999999).Draw(t, "nanos"))
		zone := time.FixedZone("", rapid.IntRange(-23*60-59, 23*60+59).Draw(t, "offsetMinutes")*60)
		s := at.In(zone).Format(time.RFC3339Nano)

		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("time.Parse(%q): %v", s, err)
		}
		got, ok := domain.ParseRFC3339(s)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("ParseRFC3339(%q) = %v, %v; want %v in UTC", s, got, ok, want)
		}
		// Lower-case T and Z are the same time (RFC 3339 section 5.6).
		if got, ok := domain.ParseRFC3339(strings.ToLower(s)); !ok || !got.Equal(want) {
			t.Fatalf("ParseRFC3339(%q) = %v, %v; want %v", strings.ToLower(s), got, ok, want)
		}
		// A comma before the fraction is not RFC 3339, though time.Parse
		// takes it.
		if i := strings.IndexByte(s, '.'); i > 0 {
			comma := s[:i] + "," + s[i+1:]
			if _, ok := domain.ParseRFC3339(comma); ok {
				t.Fatalf("ParseRFC3339(%q) accepted a comma fraction", comma)
			}
		}
	})
}

func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{
		"2024-03-01T10:00:00Z", "2024-03-01T10:00:00.5+02:00", "2016-12-31T23:59:60Z", "2024-03-01t10:00:00z",
		"2024-03-01T10:00:00,5Z", "2024-02-30T00:00:00Z", "0000-01-01T00:00:00-23:59", "9999-12-31T23:59:59.999999999Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := domain.ParseRFC3339(s)
		want, err := time.Parse(time.RFC3339Nano, s)
		switch {
		case ok && err == nil && !got.Equal(want):
			t.Fatalf("ParseRFC3339(%q) = %v, time.Parse gives %v", s, got, want)
		case ok && got.Location() != time.UTC:
			t.Fatalf("ParseRFC3339(%q) = %v, not in UTC", s, got)
		// time.Parse refuses lower-case t and z and second 60, the RFC
		// allows them; nothing else may pass here and fail there.
		// (time.Parse is laxer elsewhere: a comma fraction, a one-digit hour.)
		case ok && err != nil && !strings.ContainsAny(s, "tz") && !strings.Contains(s, ":60"):
			t.Fatalf("ParseRFC3339(%q) accepted what time.Parse refuses: %v", s, err)
		}
	})
}

func TestVoterKey(t *testing.T) {
	id64 := strings.Repeat("v", 64)
	tests := []struct {
		subject, want string // want "" for a refusal
	}{
		{"alice", "alice"},
		{"248289761001", "248289761001"},
		{"a-z_0.9:x", "a-z_0.9:x"},
		{id64, id64},
		// Worked out apart from this code: "h:" and the lower-case,
		// unpadded base32 of the subject's SHA-256.
		{"auth0|5f7c8ec7c33c6c004bbafe82", "h:igveq6eh4pcfygnsisfs6a3fklyawldy4i4unu4qu7uen5vnldqq"},
		{"alice@example.com", "h:76gzqgp4byjl6djerexelgd6esncrxhig2ufzlla4khkvkgg3f3a"},
		// A voter ID that looks hashed is hashed, so no subject can take
		// the voter ID another hashes to.
		{"h:x", "h:k2m3pyguuvahncwambpae53ifswy3wqvf2agkkxgjhtlchwssqfq"},
		{"", ""},
		{"   ", ""},
		{"a\x00b", ""},
		{"a\nb", ""},
		{"\x7f", ""},
		{"a\u0085", ""}, // a C1 control
		{"\xff\xfe", ""},
		{strings.Repeat("s", 1025), ""},
	}
	for _, tt := range tests {
		got, err := domain.VoterKey(tt.subject)
		if tt.want == "" {
			if de := asDomainError(t, err); de.Code != domain.CodeUnauthorized {
				t.Errorf("VoterKey(%q): code %q, want %s", tt.subject, de.Code, domain.CodeUnauthorized)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("VoterKey(%q) = %q, %v; want %q", tt.subject, got, err, tt.want)
		}
	}
	// Whatever an identity provider's subjects look like, up to 1 KiB, they
	// are voters with IDs that fit a DynamoDB key, one per subject.
	seen := map[string]string{}
	for _, sub := range []string{strings.Repeat("v", 65), "a b", "a/b#c", "zoë", "user\u202egnp.exe", strings.Repeat("é", 512), strings.Repeat("s", 1024)} {
		got, err := domain.VoterKey(sub)
		if err != nil {
			t.Errorf("VoterKey(%.20q…): %v", sub, err)
			continue
		}
		if !hashedVoter.MatchString(got) {
			t.Errorf("VoterKey(%.20q…) = %q, not a hashed voter ID", sub, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%.20q and %.20q are both voter %s", sub, other, got)
		}
		seen[got] = sub
	}
}

// FuzzDuplicateMember holds the byte scanner to json.Decoder's tokens, a
// second reading of the same JSON: both must find the same first
// duplicate, at the same path, or none.
func FuzzDuplicateMember(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":"\"a\"","c":0}]},"d":[]}`, `{"voterId":"x","voter\u0049d":"y"}`,
		`{"a":"}","b":"{\"a\":1,\"a\":1}"}`, "{\"\xff\":1,\"\xfe\":2}", `[{"a":1},{"a":1},{"b":[{},{"x":1,"x":1}]}]`,
		`{"votes":[{"aspect":"story","choice":"up","choice":"down"}]}`, `"a"`, `{}`, `[[],[[]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		gotPath, gotDup := domain.DuplicateMember(body)
		wantPath, wantDup := tokenDuplicate(t, body)
		if gotPath != wantPath || gotDup != wantDup {
			t.Fatalf("DuplicateMember(%q) = %q, %v; tokens say %q, %v", body, gotPath, gotDup, wantPath, wantDup)
		}
	})
}

// tokenDuplicate finds the first duplicate member name with json.Decoder's
// token stream.
func tokenDuplicate(t *testing.T, body []byte) (string, bool) {
	type frame struct {
		path    string
		object  bool
		wantKey bool
		names   map[string]bool
		key     string
		index   int
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*frame
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		switch {
		case !f.object:
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		case f.path == "":
			return f.key
		default:
			return f.path + "." + f.key
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("token of valid JSON %q: %v", body, err)
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.object && f.wantKey {
				if name, ok := tok.(string); ok {
					f.key, f.wantKey = name, false
					if f.names[name] {
						return child(), true
					}
					f.names[name] = true
					continue
				}
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{path: child(), object: true, wantKey: true, names: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{path: child()})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			return "", false
		}
		if f := stack[len(stack)-1]; f.object {
			f.wantKey = true
		} else {
			f.index++
		}
	}
}
