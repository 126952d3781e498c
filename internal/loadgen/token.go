package loadgen

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"votes/internal/jwtkey"
)

// TokenSource gives a bearer token naming a voter. It is called from many
// workers at once.
type TokenSource interface {
	Token(voterID string) (string, error)
}

// Signer signs short-lived tokens whose sub is the voter ID, as a voter's
// identity provider would, so that a load run can drive a stack behind a
// JWT authorizer. It keeps each voter's token until a minute before it
// expires.
type Signer struct {
	signer           jose.Signer
	issuer, audience string
	ttl              time.Duration
	now              func() time.Time

	mu    sync.Mutex
	cache map[string]signed
}

type signed struct {
	token   string
	expires time.Time
}

var _ TokenSource = (*Signer)(nil)

// NewSigner signs with key, an HMAC secret (HS256) or a PEM RSA private
// key (RS256), for the issuer and audience; tokens are valid for ttl (an
// hour when 0).
func NewSigner(key []byte, issuer, audience string, ttl time.Duration) (*Signer, error) {
	if issuer == "" || audience == "" {
		return nil, fmt.Errorf("jwt: an issuer and an audience are required")
	}
	k, alg, err := jwtkey.Parse(key, true)
	if err != nil {
		return nil, err
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("jwt: signer: %w", err)
	}
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &Signer{signer: sig, issuer: issuer, audience: audience, ttl: ttl, now: time.Now, cache: map[string]signed{}}, nil
}

// Token is a token with sub = voterID, iss, aud, iat, nbf and exp.
func (s *Signer) Token(voterID string) (string, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[voterID]
	s.mu.Unlock()
	if ok && now.Before(c.expires.Add(-time.Minute)) {
		return c.token, nil
	}
	exp := now.Add(s.ttl)
	tok, err := jwt.Signed(s.signer).Claims(jwt.Claims{
		Issuer: s.issuer, Audience: jwt.Audience{s.audience}, Subject: voterID,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("jwt: sign a token for a voter: %w", err)
	}
	s.mu.Lock()
	s.cache[voterID] = signed{token: tok, expires: exp}
	s.mu.Unlock()
	return tok, nil
}

// authorize adds the bearer token of the worker's current voter when the
// run has a token source.
func (w *worker) authorize(req *http.Request) error {
	if w.cfg.Tokens == nil {
		return nil
	}
	tok, err := w.cfg.Tokens.Token(w.voter)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}
