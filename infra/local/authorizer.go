package local

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"votes/internal/jwtkey"
)

// JWTConfig configures the local JWT authorizer. Exactly one of Key and
// JWKS is given.
type JWTConfig struct {
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

// Authorizer plays API Gateway's HTTP API JWT authorizer: it reads the
// token from the Authorization header (bare or after "Bearer "), checks
// its signature, iss, aud (or client_id), exp, nbf and iat, and gives the
// function the token's claims as API Gateway does.
//
// Where it differs from AWS: AWS takes only RSA keys, fetched from the
// issuer's jwks_uri; locally a key file or a JWKS file stands in for it,
// and an HMAC secret is allowed too, for tests and load runs. Premises: a
// token without exp is refused (AWS checks exp; we fail closed rather than
// take a token that never expires), and no clock leeway is given.
type Authorizer struct {
	issuer, audience string
	algs             []jose.SignatureAlgorithm
	key              any // []byte or *rsa.PublicKey; nil with a JWKS
	jwks             *jose.JSONWebKeySet
	now              func() time.Time
}

// NewAuthorizer checks the configuration and parses the key.
func NewAuthorizer(cfg JWTConfig) (*Authorizer, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("jwt: an issuer and an audience are required, as API Gateway requires them")
	}
	if (cfg.Key == nil) == (cfg.JWKS == nil) {
		return nil, errors.New("jwt: give either a key or a JWKS")
	}
	a := &Authorizer{issuer: cfg.Issuer, audience: cfg.Audience, now: cfg.Now}
	if a.now == nil {
		a.now = time.Now
	}
	if cfg.JWKS != nil {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(cfg.JWKS, &set); err != nil {
			return nil, fmt.Errorf("jwt: read JWKS: %w", err)
		}
		// As API Gateway, only RSA keys verify; others in the set (an EC
		// key an issuer also publishes) are left out, and a token naming one
		// is refused for naming no key.
		var usable jose.JSONWebKeySet
		for _, k := range set.Keys {
			if _, ok := k.Key.(*rsa.PublicKey); ok && k.Valid() && k.KeyID != "" {
				usable.Keys = append(usable.Keys, k)
			}
		}
		if len(usable.Keys) == 0 {
			return nil, errors.New("jwt: the JWKS has no RSA public key with a kid")
		}
		a.algs = []jose.SignatureAlgorithm{jose.RS256}
		set = usable
		a.jwks = &set
		return a, nil
	}
	key, alg, err := jwtkey.Parse(cfg.Key, false)
	if err != nil {
		return nil, err
	}
	a.key, a.algs = key, []jose.SignatureAlgorithm{alg}
	return a, nil
}

// Authorize verifies the Authorization header's token. It returns the
// authorizer's part of the event, or nil and why the token was refused
// (for the www-authenticate header, as API Gateway gives it).
func (a *Authorizer) Authorize(header string) (*events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription, string) {
	raw := strings.TrimSpace(header)
	if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	if raw == "" {
		return nil, "the token is missing"
	}
	tok, err := jwt.ParseSigned(raw, a.algs)
	if err != nil {
		return nil, "the token is not a signed JWT of an accepted algorithm"
	}
	key := a.key
	if a.jwks != nil {
		kid := tok.Headers[0].KeyID
		keys := a.jwks.Key(kid)
		if kid == "" || len(keys) == 0 {
			return nil, "the token's kid names no key of the JWKS"
		}
		key = keys[0].Key
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key, &std, &all); err != nil {
		return nil, "signature is invalid"
	}
	if std.Expiry == nil {
		return nil, "the token has no expiry"
	}
	expected := jwt.Expected{Issuer: a.issuer, Time: a.now()}
	if len(std.Audience) == 0 {
		if id, _ := all["client_id"].(string); id != a.audience {
			return nil, "the token does not have a valid audience"
		}
	} else {
		expected.AnyAudience = jwt.Audience{a.audience}
	}
	if err := std.ValidateWithLeeway(expected, 0); err != nil {
		switch {
		case errors.Is(err, jwt.ErrInvalidIssuer):
			return nil, "the token does not have a valid issuer"
		case errors.Is(err, jwt.ErrInvalidAudience):
			return nil, "the token does not have a valid audience"
		case errors.Is(err, jwt.ErrExpired):
			return nil, "the token has expired"
		default:
			return nil, "the token is not valid yet"
		}
	}
	claims := make(map[string]string, len(all))
	for name, v := range all {
		claims[name] = claimString(v)
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims, Scopes: scopes(all)}, ""
}

// claimString renders a claim as API Gateway does in
// requestContext.authorizer.jwt.claims, a map of strings: strings as they
// are, numbers in plain decimal, booleans as true or false, arrays as
// their elements between brackets, separated by spaces ("[a b]"), and
// objects as JSON.
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
