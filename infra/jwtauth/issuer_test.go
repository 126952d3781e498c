package jwtauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"votes/handlers"
	"votes/infra/jwtauth"
)

// issuer is an identity provider over HTTPS: its OpenID Connect discovery
// document and the key set it names, which the test can change or break.
type issuer struct {
	srv       *httptest.Server
	mu        sync.Mutex
	keys      []jose.JSONWebKey
	name      string // the issuer the discovery document names; "" the server's own
	down      bool
	attempts  atomic.Int32 // discovery documents asked for
	discovery atomic.Int32 // discovery documents served
	jwks      atomic.Int32 // key sets served
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.attempts.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		if is.down {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		is.discovery.Add(1)
		name := is.name
		if name == "" {
			name = is.srv.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": name, "jwks_uri": is.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		if is.down {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		is.jwks.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
	})
	is.srv = httptest.NewTLSServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) publish(keys map[string]*rsa.PrivateKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = nil
	for kid, k := range keys {
		is.keys = append(is.keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
	}
}

func (is *issuer) setDown(down bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.down = down
}

func (is *issuer) fetches() int { return int(is.jwks.Load()) }

// clock is a test's clock, moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signRS256 signs claims with key, naming kid.
func signRS256(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestIssuerKeys: a verifier with no key at hand takes the issuer's keys
// as API Gateway does, from the jwks_uri its discovery document names,
// keeps them, fetches them again when a token names a kid they lack (a
// rotation) but at most every MinRefresh, and after MaxAge (a withdrawn key
// stops verifying). A token it cannot check for want of keys is not
// "invalid": the receiver answers 503, not 401.
func TestIssuerKeys(t *testing.T) {
	is := newIssuer(t)
	k1, k2 := rsaKey(t), rsaKey(t)
	is.publish(map[string]*rsa.PrivateKey{"k1": k1})
	clk := &clock{now: time.Now()}
	opts := jwtauth.IssuerOptions{MaxAge: time.Hour, MinRefresh: 30 * time.Second, Now: clk.Now}
	v, err := jwtauth.NewIssuer(is.srv.URL, "votes-api", is.srv.Client(), opts)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(sub string) map[string]any {
		now := clk.Now()
		return map[string]any{"iss": is.srv.URL, "aud": "votes-api", "sub": sub, "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix()}
	}
	ctx := context.Background()
	verify := func(tok string) (string, error) {
		c, err := v.Verify(ctx, "Bearer "+tok)
		return c["sub"], err
	}
	invalid := func(err error) bool { return errors.Is(err, handlers.ErrInvalidToken) }

	if sub, err := verify(signRS256(t, k1, "k1", claims("u-1"))); err != nil || sub != "u-1" {
		t.Fatalf("a token of the issuer's key: %q %v", sub, err)
	}
	if sub, err := verify(signRS256(t, k1, "k1", claims("u-2"))); err != nil || sub != "u-2" || is.fetches() != 1 || is.discovery.Load() != 1 {
		t.Fatalf("second token: %q %v, after %d key set fetches (want 1, the keys kept)", sub, err, is.fetches())
	}

	// The issuer rotates to k2: the first k2 token fetches the keys again.
	clk.Add(time.Minute)
	is.publish(map[string]*rsa.PrivateKey{"k1": k1, "k2": k2})
	if sub, err := verify(signRS256(t, k2, "k2", claims("u-3"))); err != nil || sub != "u-3" || is.fetches() != 2 {
		t.Fatalf("after a rotation: %q %v, %d fetches (want 2)", sub, err, is.fetches())
	}
	// Made-up kids right after do not make it fetch again.
	for i := range 5 {
		if _, err := verify(signRS256(t, k2, "forged-"+string(rune('a'+i)), claims("u-4"))); !invalid(err) {
			t.Errorf("an unknown kid: %v, want an invalid token", err)
		}
	}
	if is.fetches() != 2 {
		t.Errorf("unknown kids made %d fetches within MinRefresh, want none", is.fetches()-2)
	}
	// A token signed by another key under a published kid is refused.
	if _, err := verify(signRS256(t, rsaKey(t), "k2", claims("u-5"))); !invalid(err) || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a forged signature: %v", err)
	}

	// The issuer withdraws k1: after MaxAge the keys are fetched again and
	// k1 no longer verifies.
	is.publish(map[string]*rsa.PrivateKey{"k2": k2})
	clk.Add(time.Hour)
	if _, err := verify(signRS256(t, k1, "k1", claims("u-6"))); !invalid(err) || is.fetches() != 3 {
		t.Errorf("a withdrawn key after MaxAge: %v after %d fetches, want an invalid token after 3", err, is.fetches())
	}

	// An issuer down keeps the keys held in use, and a kid they lack is
	// "cannot check" (503), not "invalid" (401).
	is.setDown(true)
	clk.Add(2 * time.Hour)
	if sub, err := verify(signRS256(t, k2, "k2", claims("u-7"))); err != nil || sub != "u-7" {
		t.Errorf("held key while the issuer is down: %q %v", sub, err)
	}
	clk.Add(time.Minute)
	if _, err := verify(signRS256(t, rsaKey(t), "k3", claims("u-8"))); err == nil || invalid(err) {
		t.Errorf("a new kid while the issuer is down: %v, want an error that is not an invalid token", err)
	}

	// Token checks come first and need no keys: a missing token is
	// invalid whatever the issuer's state.
	if _, err := v.Verify(ctx, ""); !invalid(err) {
		t.Errorf("no token: %v", err)
	}
}

// TestIssuerUnreachable: with no keys ever fetched, every token is "cannot
// check" rather than "invalid", and the fetch is not retried on every
// request.
func TestIssuerUnreachable(t *testing.T) {
	is := newIssuer(t)
	k1 := rsaKey(t)
	is.publish(map[string]*rsa.PrivateKey{"k1": k1})
	is.setDown(true)
	clk := &clock{now: time.Now()}
	v, err := jwtauth.NewIssuer(is.srv.URL, "votes-api", is.srv.Client(), jwtauth.IssuerOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := signRS256(t, k1, "k1", map[string]any{"iss": is.srv.URL, "aud": "votes-api", "sub": "u-1", "exp": clk.Now().Add(time.Hour).Unix()})
	for range 3 {
		if _, err := v.Verify(context.Background(), tok); err == nil || errors.Is(err, handlers.ErrInvalidToken) {
			t.Fatalf("issuer down: %v, want an error that is not an invalid token", err)
		}
	}
	if n := is.attempts.Load(); n != 1 {
		t.Errorf("3 requests within MinRefresh asked the issuer %d times, want once", n)
	}
	is.setDown(false)
	clk.Add(jwtauth.DefaultIssuerOptions().MinRefresh)
	if c, err := v.Verify(context.Background(), tok); err != nil || c["sub"] != "u-1" {
		t.Errorf("issuer back: %v %v", c, err)
	}
}

// TestIssuerDocumentChecked: the discovery document must name the issuer
// configured (else another issuer's keys would verify tokens claiming
// ours), and the issuer must be https.
func TestIssuerDocumentChecked(t *testing.T) {
	is := newIssuer(t)
	k1 := rsaKey(t)
	is.publish(map[string]*rsa.PrivateKey{"k1": k1})
	is.name = "https://other.example.com"
	v, err := jwtauth.NewIssuer(is.srv.URL, "votes-api", is.srv.Client(), jwtauth.IssuerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok := signRS256(t, k1, "k1", map[string]any{"iss": is.srv.URL, "aud": "votes-api", "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := v.Verify(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "other.example.com") {
		t.Errorf("a discovery document naming another issuer: %v", err)
	}
	for _, bad := range []string{"http://id.example.com", "id.example.com", ""} {
		if _, err := jwtauth.NewIssuer(bad, "votes-api", http.DefaultClient, jwtauth.IssuerOptions{}); err == nil {
			t.Errorf("issuer %q accepted", bad)
		}
	}
	if _, err := jwtauth.NewIssuer("https://id.example.com", "", http.DefaultClient, jwtauth.IssuerOptions{}); err == nil {
		t.Error("no audience accepted")
	}
}
