package domain

// ParseRFC3339 exposes the occurredAt parser to the tests that hold it to
// time.Parse.
var ParseRFC3339 = parseRFC3339
