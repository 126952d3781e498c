package domain

// ParseRFC3339 exposes the occurredAt parser to the tests that hold it to
// time.Parse.
var ParseRFC3339 = parseRFC3339

// DuplicateMember exposes the duplicate-name scanner to its differential
// fuzz test.
var DuplicateMember = duplicateMember
