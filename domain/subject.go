package domain

import (
	"crypto/sha256"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSubjectBytes bounds an identity provider's subject (a JWT sub claim).
// OpenID Connect allows 255 ASCII characters; some providers use e-mail
// addresses or URLs, so the bound is generous, but a subject is never stored
// as given when it is longer than a voter ID.
const MaxSubjectBytes = 1 << 10

// hashedVoterPrefix starts every voter ID derived from a subject by hashing.
// A subject that is a voter ID with this prefix is hashed too, so that no
// subject can name the voter another subject hashes to.
const hashedVoterPrefix = "h:"

// VoterKey gives the voter ID of an authenticated subject. A subject that is
// itself a voter ID (1 to 64 of A-Za-z0-9._:-) is the voter. Any other,
// such as "auth0|5f7c…", an e-mail address, or one longer than 64 bytes, is
// "h:" and the base32 SHA-256 of its bytes (54 characters): the same subject
// is always the same voter, and DynamoDB keys stay short whatever the
// identity provider sends. Only a subject that cannot be one is refused,
// with CodeUnauthorized: empty, over MaxSubjectBytes, not UTF-8, or holding
// a control character.
func VoterKey(subject string) (string, error) {
	switch {
	case subject == "" || trimSpace(subject) == "":
		return "", &Error{Code: CodeUnauthorized, Message: "the token names no subject"}
	case len(subject) > MaxSubjectBytes:
		return "", &Error{Code: CodeUnauthorized, Message: "the token's subject is over 1024 bytes"}
	case !utf8.ValidString(subject) || strings.ContainsFunc(subject, unicode.IsControl):
		return "", &Error{Code: CodeUnauthorized, Message: "the token's subject holds control characters or is not UTF-8"}
	case matchID(subject, "._:-") && !strings.HasPrefix(subject, hashedVoterPrefix):
		return subject, nil
	}
	sum := sha256.Sum256([]byte(subject))
	return hashedVoterPrefix + idEncoding.EncodeToString(sum[:]), nil
}
