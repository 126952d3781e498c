package local

import (
	"context"
	"errors"

	"github.com/aws/aws-lambda-go/events"

	"votes/infra/jwtauth"
)

// JWTConfig configures the local JWT authorizer. Exactly one of Key and
// JWKS is given.
type JWTConfig = jwtauth.Config

// Authorizer plays API Gateway's HTTP API JWT authorizer: it reads the
// token from the Authorization header (bare or after "Bearer "), checks
// its signature, iss, aud (or client_id), exp, nbf and iat, and gives the
// function the token's claims as API Gateway does. The checks are
// jwtauth's, the ones the receiver makes itself behind a function URL.
//
// Where it differs from AWS: AWS takes only RSA keys, fetched from the
// issuer's jwks_uri; locally a key file or a JWKS file stands in for it,
// and an HMAC secret is allowed too, for tests and load runs. Premises: a
// token without exp is refused (AWS checks exp; we fail closed rather than
// take a token that never expires), and no clock leeway is given.
type Authorizer struct {
	verifier *jwtauth.Verifier
}

// NewAuthorizer checks the configuration and parses the key.
func NewAuthorizer(cfg JWTConfig) (*Authorizer, error) {
	v, err := jwtauth.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Authorizer{verifier: v}, nil
}

// Verifier is the authorizer's token verifier, for a receiver that checks
// tokens itself (ingest=url).
func (a *Authorizer) Verifier() *jwtauth.Verifier { return a.verifier }

// Authorize verifies the Authorization header's token. It returns the
// authorizer's part of the event, or nil and why the token was refused
// (for the www-authenticate header, as API Gateway gives it).
func (a *Authorizer) Authorize(header string) (*events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription, string) {
	// The keys are at hand: nothing to wait for, nothing to cancel.
	tok, err := a.verifier.Check(context.Background(), header)
	if err != nil {
		var r *jwtauth.Refused
		if errors.As(err, &r) {
			return nil, r.Reason
		}
		return nil, "the token cannot be checked"
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: tok.Claims, Scopes: tok.Scopes}, ""
}
