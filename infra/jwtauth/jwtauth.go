// Package jwtauth verifies JSON Web Tokens as API Gateway's HTTP API JWT
// authorizer does. The local stack plays that authorizer with it, and the
// receiver verifies tokens with it itself where no authorizer stands in
// front (a function URL, ingest=url).
package jwtauth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"votes/handlers"
	"votes/internal/jwtkey"
)

// Refused is the error for a token the verifier refuses; its text is the
// reason, as API Gateway gives it in www-authenticate, and never holds the
// token. It wraps handlers.ErrInvalidToken.
type Refused struct{ Reason string }

func (r *Refused) Error() string { return r.Reason }

// Unwrap makes errors.Is(err, handlers.ErrInvalidToken) hold.
func (r *Refused) Unwrap() error { return handlers.ErrInvalidToken }

func refused(reason string) error { return &Refused{Reason: reason} }

// Config configures a verifier with keys at hand. Exactly one of Key and
// JWKS is given.
type Config struct {
	// Issuer must equal the token's iss claim.
	Issuer string
	// Audience must equal the token's aud claim, or one of its entries,
	// or the client_id claim when the token has no aud.
	Audience string
	// Key is an HMAC secret (HS256, at least 32 bytes; a final line break
	// is not part of it), or a PEM RSA public key, or a PEM RSA private
	// key whose public half is used (RS256).
	Key []byte
	// JWKS is a JSON Web Key Set, as an identity provider publishes at its
	// jwks_uri; a token must name one of its RSA keys in its kid header.
	JWKS []byte
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// keySource finds the key a token's kid names. An error that is not
// Refused means the keys could not be had.
type keySource interface {
	key(ctx context.Context, kid string) (any, error)
}

// Verifier checks tokens: the signature, iss, aud (or client_id when there
// is no aud), exp, nbf and iat, as API Gateway's JWT authorizer does.
// Premises where AWS documents nothing: a token without exp is refused (we
// fail closed rather than take a token that never expires), and no clock
// leeway is given. It is safe for concurrent use.
type Verifier struct {
	issuer, audience string
	algs             []jose.SignatureAlgorithm
	key              any       // a key at hand; nil when keys names one by kid
	keys             keySource // nil when key is given
	now              func() time.Time
}

var _ handlers.TokenVerifier = (*Verifier)(nil)

// New checks the configuration and parses the key or the key set.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("jwt: an issuer and an audience are required, as API Gateway requires them")
	}
	if (cfg.Key == nil) == (cfg.JWKS == nil) {
		return nil, errors.New("jwt: give either a key or a JWKS")
	}
	v := &Verifier{issuer: cfg.Issuer, audience: cfg.Audience, now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	if cfg.JWKS != nil {
		set, err := parseJWKS(cfg.JWKS)
		if err != nil {
			return nil, err
		}
		v.algs, v.keys = []jose.SignatureAlgorithm{jose.RS256}, set
		return v, nil
	}
	key, alg, err := jwtkey.Parse(cfg.Key, false)
	if err != nil {
		return nil, err
	}
	v.key, v.algs = key, []jose.SignatureAlgorithm{alg}
	return v, nil
}

// staticKeys is a key set given once.
type staticKeys map[string]*rsa.PublicKey

func (s staticKeys) key(_ context.Context, kid string) (any, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, refused("the token's kid names no key of the JWKS")
}

// parseJWKS keeps the set's RSA public keys that have a kid: as API
// Gateway, only RSA keys verify, and others in the set (an EC key an issuer
// also publishes) are left out, so a token naming one is refused for
// naming no key.
func parseJWKS(b []byte) (staticKeys, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("jwt: read JWKS: %w", err)
	}
	usable := staticKeys{}
	for _, k := range set.Keys {
		if pub, ok := k.Key.(*rsa.PublicKey); ok && k.Valid() && k.KeyID != "" {
			usable[k.KeyID] = pub
		}
	}
	if len(usable) == 0 {
		return nil, errors.New("jwt: the JWKS has no RSA public key with a kid")
	}
	return usable, nil
}

// Token is what a verified token says, as API Gateway's JWT authorizer
// passes it to a function.
type Token struct {
	// Claims are the token's claims as strings: strings as they are,
	// numbers in plain decimal, booleans as true or false, arrays as their
	// elements between brackets, separated by spaces ("[a b]"), objects as
	// JSON.
	Claims map[string]string
	// Scopes come from scope (space-separated) or scp (an array or a
	// string).
	Scopes []string
}

// Verify checks the token of an Authorization header's value (bare or
// after "Bearer ") and returns its claims; see handlers.TokenVerifier.
func (v *Verifier) Verify(ctx context.Context, authorization string) (map[string]string, error) {
	tok, err := v.Check(ctx, authorization)
	return tok.Claims, err
}

// Check is Verify, with the token's scopes as well.
func (v *Verifier) Check(ctx context.Context, authorization string) (Token, error) {
	raw := strings.TrimSpace(authorization)
	if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	if raw == "" {
		return Token{}, refused("the token is missing")
	}
	tok, err := jwt.ParseSigned(raw, v.algs)
	if err != nil {
		return Token{}, refused("the token is not a signed JWT of an accepted algorithm")
	}
	key := v.key
	if v.keys != nil {
		kid := tok.Headers[0].KeyID
		if kid == "" {
			return Token{}, refused("the token has no kid")
		}
		if key, err = v.keys.key(ctx, kid); err != nil {
			return Token{}, err
		}
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key, &std, &all); err != nil {
		return Token{}, refused("signature is invalid")
	}
	if std.Expiry == nil {
		return Token{}, refused("the token has no expiry")
	}
	expected := jwt.Expected{Issuer: v.issuer, Time: v.now()}
	if len(std.Audience) == 0 {
		if id, _ := all["client_id"].(string); id != v.audience {
			return Token{}, refused("the token does not have a valid audience")
		}
	} else {
		expected.AnyAudience = jwt.Audience{v.audience}
	}
	if err := std.ValidateWithLeeway(expected, 0); err != nil {
		switch {
		case errors.Is(err, jwt.ErrInvalidIssuer):
			return Token{}, refused("the token does not have a valid issuer")
		case errors.Is(err, jwt.ErrInvalidAudience):
			return Token{}, refused("the token does not have a valid audience")
		case errors.Is(err, jwt.ErrExpired):
			return Token{}, refused("the token has expired")
		default:
			return Token{}, refused("the token is not valid yet")
		}
	}
	claims := make(map[string]string, len(all))
	for name, v := range all {
		claims[name] = claimString(v)
	}
	return Token{Claims: claims, Scopes: scopes(all)}, nil
}

// claimString renders a claim as API Gateway does in
// requestContext.authorizer.jwt.claims.
func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = claimString(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// scopes are the token's scopes, from scope (space-separated) or scp (an
// array or a string).
func scopes(all map[string]any) []string {
	for _, name := range []string{"scope", "scp"} {
		switch v := all[name].(type) {
		case string:
			return strings.Fields(v)
		case []any:
			var out []string
			for _, e := range v {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
			return out
		}
	}
	return nil
}
