package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// IssuerOptions say how often a verifier fetches an issuer's keys.
type IssuerOptions struct {
	// MaxAge is how long fetched keys are used before they are fetched
	// again, so that a key the issuer withdrew stops verifying.
	MaxAge time.Duration
	// MinRefresh is the least time between two fetches: a token naming a
	// kid the keys lack makes the verifier fetch them again (the issuer
	// rotated its keys), but tokens with made-up kids must not make it
	// hammer the issuer.
	MinRefresh time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// DefaultIssuerOptions: keys kept an hour, fetched again at most every 30
// seconds. A rotation is seen at the first token signed with the new key
// (30 s at worst after another refresh), a withdrawn key within the hour.
func DefaultIssuerOptions() IssuerOptions {
	return IssuerOptions{MaxAge: time.Hour, MinRefresh: 30 * time.Second}
}

// NewIssuer makes a verifier that takes the keys from the issuer, as API
// Gateway's JWT authorizer does: the OpenID Connect discovery document at
// issuer + "/.well-known/openid-configuration" names the jwks_uri, whose
// RSA keys with a kid verify RS256 tokens. The keys are fetched with client
// when first needed, kept for opts.MaxAge and fetched again, at most every
// opts.MinRefresh, when a token names a kid they lack.
//
// The issuer must be an https URL, and the discovery document must name
// the same issuer (OpenID Connect Discovery 1.0, section 4.3).
func NewIssuer(issuer, audience string, client *http.Client, opts IssuerOptions) (*Verifier, error) {
	if issuer == "" || audience == "" {
		return nil, errors.New("jwt: an issuer and an audience are required")
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("jwt: issuer %q is not an https URL", issuer)
	}
	if client == nil {
		return nil, errors.New("jwt: an HTTP client is required to fetch the issuer's keys")
	}
	d := DefaultIssuerOptions()
	if opts.MaxAge <= 0 {
		opts.MaxAge = d.MaxAge
	}
	if opts.MinRefresh <= 0 {
		opts.MinRefresh = d.MinRefresh
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	keys := &issuerKeys{issuer: issuer, client: client, opts: opts}
	return &Verifier{issuer: issuer, audience: audience, algs: []jose.SignatureAlgorithm{jose.RS256}, keys: keys, now: opts.Now}, nil
}

// issuerKeys are an issuer's published keys, fetched and cached.
type issuerKeys struct {
	issuer string
	client *http.Client
	opts   IssuerOptions

	mu      sync.Mutex // held while fetching: concurrent misses wait for one fetch
	keys    staticKeys // nil until a fetch succeeded
	fetched time.Time  // of the keys held
	tried   time.Time  // the last fetch, whether it succeeded or not
}

func (k *issuerKeys) key(ctx context.Context, kid string) (any, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.opts.Now()
	if key, ok := k.keys[kid]; ok && now.Sub(k.fetched) < k.opts.MaxAge {
		return key, nil
	}
	// Not held, or held too long: fetch, unless a fetch was made just now.
	// A failed fetch keeps the keys held (an issuer outage must not refuse
	// every voter) and is tried again after MinRefresh.
	var fetchErr error
	if k.tried.IsZero() || now.Sub(k.tried) >= k.opts.MinRefresh {
		k.tried = now
		keys, err := k.fetch(ctx)
		if err == nil {
			k.keys, k.fetched = keys, now
		}
		fetchErr = err
	}
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	if fetchErr != nil {
		return nil, fetchErr
	}
	if k.keys == nil {
		return nil, fmt.Errorf("jwt: the keys of %s could not be fetched lately; retrying after %v", k.issuer, k.opts.MinRefresh)
	}
	return nil, refused("the token's kid names no key of the issuer")
}

// maxDocument bounds what is read of a discovery document or a key set.
const maxDocument = 1 << 20

// fetch reads the discovery document, then the key set it names.
func (k *issuerKeys) fetch(ctx context.Context) (staticKeys, error) {
	discovery := strings.TrimSuffix(k.issuer, "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := k.getJSON(ctx, discovery, &doc); err != nil {
		return nil, err
	}
	if doc.Issuer != k.issuer {
		return nil, fmt.Errorf("jwt: %s names the issuer %q, not %q", discovery, doc.Issuer, k.issuer)
	}
	if u, err := url.Parse(doc.JWKSURI); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("jwt: %s names the jwks_uri %q, not an https URL", discovery, doc.JWKSURI)
	}
	var raw json.RawMessage
	if err := k.getJSON(ctx, doc.JWKSURI, &raw); err != nil {
		return nil, err
	}
	keys, err := parseJWKS(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, doc.JWKSURI)
	}
	return keys, nil
}

func (k *issuerKeys) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("jwt: get %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwt: get %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwt: get %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("jwt: get %s: %w", u, err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("jwt: get %s: over %d bytes", u, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("jwt: read %s: %w", u, err)
	}
	return nil
}

var _ keySource = (*issuerKeys)(nil)
