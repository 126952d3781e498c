// Package domain holds the vote pipeline's language: submissions and their
// validation, vote events, the catalog of aspects and choices, and the errors
// a client can act on. It uses the standard library only and knows nothing of
// AWS or Lambda.
package domain
