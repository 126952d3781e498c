package local_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"votes/infra/dynamo"
	"votes/infra/local"
)

const (
	testIssuer   = "https://issuer.example"
	testAudience = "votes-api"
	testSecret   = "0123456789abcdef0123456789abcdef" // 32 bytes, HS256's minimum
)

// sign makes a compact JWS of claims, as an identity provider would.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claims are a valid token's claims for sub, changed by edit.
func claims(sub string, edit func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": testIssuer, "aud": testAudience, "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(c)
	}
	return c
}

func postWithToken(t *testing.T, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/votes", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestJWTStack: with the authorizer on, POST /votes takes only tokens API
// Gateway would take; the voter is the token's sub, and the function is not
// invoked for a token the gateway refuses.
func TestJWTStack(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	hmacAuth, err := local.NewAuthorizer(local.JWTConfig{Issuer: testIssuer, Audience: testAudience, Key: []byte(testSecret + "\n")})
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rsaKey.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"},
		{Key: &ecKey.PublicKey, KeyID: "ec", Algorithm: "ES256", Use: "sig"},
	}})
	jwksAuth, err := local.NewAuthorizer(local.JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKS: jwks})
	if err != nil {
		t.Fatal(err)
	}
	pemAuth, err := local.NewAuthorizer(local.JWTConfig{Issuer: testIssuer, Audience: testAudience, Key: pubPEM})
	if err != nil {
		t.Fatal(err)
	}

	hs := func(c map[string]any) string { return sign(t, jose.HS256, []byte(testSecret), "", c) }
	rs := func(kid string, c map[string]any) string { return sign(t, jose.RS256, rsaKey, kid, c) }
	vote := `{"titleId":"tt-jwt","votes":[{"aspect":"story","choice":"up"}]}`
	const gatewayRefusal = `{"message":"Unauthorized"}`

	s := startGateway(t, local.GatewayLimits{}, hmacAuth)
	cases := []struct {
		name, token, body string
		status            int
		want              string // a part of the body
		invoked           bool   // whether the receiver ran
	}{
		{"valid token", hs(claims("u-7", nil)), vote, http.StatusAccepted, `"voteIds"`, true},
		{"valid token, body voterId equal to sub", hs(claims("u-7", nil)), `{"voterId":"u-7","titleId":"tt-jwt","votes":[{"aspect":"acting","choice":"down"}]}`, http.StatusAccepted, `"voteIds"`, true},
		{"no sub", hs(claims("", func(c map[string]any) { delete(c, "sub") })), vote, http.StatusUnauthorized, `"code":"unauthorized"`, true},
		{"empty sub", hs(claims("", nil)), vote, http.StatusUnauthorized, `"code":"unauthorized"`, true},
		{"body voterId differs from sub", hs(claims("u-7", nil)), `{"voterId":"victim","titleId":"tt-jwt","votes":[{"aspect":"story","choice":"down"}]}`, http.StatusForbidden, `"code":"voter_mismatch"`, true},
		{"expired", hs(claims("u-7", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), vote, http.StatusUnauthorized, gatewayRefusal, false},
		{"not valid yet", hs(claims("u-7", func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), vote, http.StatusUnauthorized, gatewayRefusal, false},
		{"no expiry", hs(claims("u-7", func(c map[string]any) { delete(c, "exp") })), vote, http.StatusUnauthorized, gatewayRefusal, false},
		{"wrong audience", hs(claims("u-7", func(c map[string]any) { c["aud"] = "another-api" })), vote, http.StatusUnauthorized, gatewayRefusal, false},
		{"wrong issuer", hs(claims("u-7", func(c map[string]any) { c["iss"] = "https://evil.example" })), vote, http.StatusUnauthorized, gatewayRefusal, false},
		{"wrong secret", sign(t, jose.HS256, []byte(strings.Repeat("z", 32)), "", claims("u-7", nil)), vote, http.StatusUnauthorized, gatewayRefusal, false},
		{"an RS256 token where the key is a secret", rs("", claims("u-7", nil)), vote, http.StatusUnauthorized, gatewayRefusal, false},
		{"unsigned", strings.Join(strings.Split(hs(claims("u-7", nil)), ".")[:2], ".") + ".", vote, http.StatusUnauthorized, gatewayRefusal, false},
		{"no token", "", vote, http.StatusUnauthorized, gatewayRefusal, false},
	}
	for _, tc := range cases {
		before := s.Functions.Receiver.Usage().Invocations
		status, h, body := postWithToken(t, s.URL, tc.token, tc.body)
		invoked := s.Functions.Receiver.Usage().Invocations > before
		if status != tc.status || !strings.Contains(body, tc.want) || invoked != tc.invoked {
			t.Errorf("%s: %d %s (receiver invoked %v), want %d %s (invoked %v)", tc.name, status, body, invoked, tc.status, tc.want, tc.invoked)
		}
		if status == http.StatusUnauthorized && body == gatewayRefusal && !strings.Contains(h.Get("Www-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: www-authenticate %q", tc.name, h.Get("Www-Authenticate"))
		}
	}

	// Only POST /votes is behind the authorizer: other methods reach the
	// receiver's 405, and reads need no token.
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/votes", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /votes without a token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// The voter stored is the token's sub, never the body's.
	if voters := storedVoters(t, s); !slices.Equal(voters, []string{"u-7", "u-7"}) {
		t.Errorf("stored voters %v, want the two accepted votes of u-7", voters)
	}

	// RS256, with a JWKS (the token names its key) or a PEM public key.
	rsCases := map[string][]struct {
		name   string
		token  string
		status int
	}{
		"jwks": {
			{"known kid", rs("k1", claims("u-8", nil)), http.StatusAccepted},
			{"unknown kid", rs("k2", claims("u-8", nil)), http.StatusUnauthorized},
			{"no kid", rs("", claims("u-8", nil)), http.StatusUnauthorized},
			{"ES256 with the set's EC key", sign(t, jose.ES256, ecKey, "ec", claims("u-8", nil)), http.StatusUnauthorized},
			{"another key", sign(t, jose.RS256, otherKey, "k1", claims("u-8", nil)), http.StatusUnauthorized},
		},
		"pem": {
			{"public key", rs("", claims("u-8", nil)), http.StatusAccepted},
			// The public key used as an HMAC secret, the classic algorithm
			// confusion: refused, only RS256 goes with an RSA key.
			{"HS256 token signed with the public key", sign(t, jose.HS256, pubPEM, "", claims("u-8", nil)), http.StatusUnauthorized},
			{"client_id instead of aud", rs("", claims("u-8", func(c map[string]any) { delete(c, "aud"); c["client_id"] = testAudience })), http.StatusAccepted},
			{"client_id of another client", rs("", claims("u-8", func(c map[string]any) { delete(c, "aud"); c["client_id"] = "other" })), http.StatusUnauthorized},
		},
	}
	for name, auth := range map[string]*local.Authorizer{"jwks": jwksAuth, "pem": pemAuth} {
		t.Run(name, func(t *testing.T) {
			s := startGateway(t, local.GatewayLimits{}, auth)
			for _, tc := range rsCases[name] {
				if status, _, body := postWithToken(t, s.URL, tc.token, vote); status != tc.status {
					t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
				}
			}
		})
	}
}

// TestAuthorizerClaims: the function gets the token's claims as API Gateway
// passes them, a map of strings, and the token's scopes.
func TestAuthorizerClaims(t *testing.T) {
	auth, err := local.NewAuthorizer(local.JWTConfig{Issuer: testIssuer, Audience: testAudience, Key: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.HS256, []byte(testSecret), "", claims("auth0|5f7c", func(c map[string]any) {
		c["aud"] = []string{"other", testAudience}
		c["exp"] = int64(4102444800)
		c["email_verified"] = true
		c["scope"] = "votes:write votes:read"
		c["groups"] = []string{"admin", "users"}
	}))
	got, reason := auth.Authorize("Bearer " + tok)
	if got == nil {
		t.Fatalf("refused: %s", reason)
	}
	want := map[string]string{"iss": testIssuer, "sub": "auth0|5f7c", "aud": "[other " + testAudience + "]", "exp": "4102444800",
		"email_verified": "true", "scope": "votes:write votes:read", "groups": "[admin users]"}
	for k, v := range want {
		if got.Claims[k] != v {
			t.Errorf("claim %s = %q, want %q", k, got.Claims[k], v)
		}
	}
	if !slices.Equal(got.Scopes, []string{"votes:write", "votes:read"}) {
		t.Errorf("scopes %v", got.Scopes)
	}
	// The bare token, without "Bearer ", is taken too.
	if got, reason := auth.Authorize(tok); got == nil {
		t.Errorf("bare token refused: %s", reason)
	}
}

// TestAuthorizerConfig: what API Gateway requires is required.
func TestAuthorizerConfig(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &ecKey.PublicKey, KeyID: "ec", Algorithm: "ES256", Use: "sig"}}})
	for name, cfg := range map[string]local.JWTConfig{
		"no issuer":         {Audience: testAudience, Key: []byte(testSecret)},
		"no audience":       {Issuer: testIssuer, Key: []byte(testSecret)},
		"no key":            {Issuer: testIssuer, Audience: testAudience},
		"short secret":      {Issuer: testIssuer, Audience: testAudience, Key: []byte("secret")},
		"key and JWKS":      {Issuer: testIssuer, Audience: testAudience, Key: []byte(testSecret), JWKS: []byte(`{"keys":[]}`)},
		"empty JWKS":        {Issuer: testIssuer, Audience: testAudience, JWKS: []byte(`{"keys":[]}`)},
		"JWKS not JSON":     {Issuer: testIssuer, Audience: testAudience, JWKS: []byte(`keys`)},
		"JWKS of an EC key": {Issuer: testIssuer, Audience: testAudience, JWKS: ecJWKS},
		"PEM not a key":     {Issuer: testIssuer, Audience: testAudience, Key: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}})},
	} {
		if _, err := local.NewAuthorizer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// startURLIngest is a stack whose POST /votes plays the receiver's function
// URL (ingest=url): no authorizer in front; with auth, the receiver
// verifies the token itself with auth's checks.
func startURLIngest(t *testing.T, auth *local.Authorizer) *local.Stack {
	t.Helper()
	return startConfigured(t, local.Config{Settings: local.FastSettings(), Authorizer: auth, Ingest: local.IngestURL})
}

// storedVoters are the voters of the stack's stored votes, once the
// pipeline is idle.
func storedVoters(t *testing.T, s *local.Stack) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := s.Admin.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(s.Tables.Events)})
	if err != nil {
		t.Fatal(err)
	}
	var voters []string
	for _, item := range out.Items {
		if v, ok := item[dynamo.AttrVoterID].(*types.AttributeValueMemberS); ok {
			voters = append(voters, v.Value)
		}
	}
	slices.Sort(voters)
	return voters
}

// TestJWTStackBehindFunctionURL: with ingest=url nothing stands in front of
// the receiver, so the receiver itself refuses what the JWT authorizer
// would (in the API's error shape: the receiver answers, not API Gateway),
// and the voter is the token's sub, as on the authorizer path.
func TestJWTStackBehindFunctionURL(t *testing.T) {
	hmacAuth, err := local.NewAuthorizer(local.JWTConfig{Issuer: testIssuer, Audience: testAudience, Key: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	hs := func(c map[string]any) string { return sign(t, jose.HS256, []byte(testSecret), "", c) }
	vote := `{"titleId":"tt-url","votes":[{"aspect":"story","choice":"up"}]}`
	const refusal = `"code":"unauthorized"`

	s := startURLIngest(t, hmacAuth)
	for _, tc := range []struct {
		name, token, body string
		status            int
		want              string // a part of the body
		reason            string // a part of www-authenticate, on a 401
	}{
		{"valid token", hs(claims("u-7", nil)), vote, http.StatusAccepted, `"voteIds"`, ""},
		{"valid token, body voterId equal to sub", hs(claims("u-7", nil)), `{"voterId":"u-7","titleId":"tt-url","votes":[{"aspect":"acting","choice":"down"}]}`, http.StatusAccepted, `"voteIds"`, ""},
		{"body voterId differs from sub", hs(claims("u-7", nil)), `{"voterId":"victim","titleId":"tt-url","votes":[{"aspect":"story","choice":"down"}]}`, http.StatusForbidden, `"code":"voter_mismatch"`, ""},
		{"no sub", hs(claims("", func(c map[string]any) { delete(c, "sub") })), vote, http.StatusUnauthorized, refusal, ""},
		{"expired", hs(claims("u-7", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), vote, http.StatusUnauthorized, refusal, "expired"},
		{"not valid yet", hs(claims("u-7", func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), vote, http.StatusUnauthorized, refusal, "not valid yet"},
		{"wrong audience", hs(claims("u-7", func(c map[string]any) { c["aud"] = "another-api" })), vote, http.StatusUnauthorized, refusal, "audience"},
		{"wrong issuer", hs(claims("u-7", func(c map[string]any) { c["iss"] = "https://evil.example" })), vote, http.StatusUnauthorized, refusal, "issuer"},
		{"wrong secret", sign(t, jose.HS256, []byte(strings.Repeat("z", 32)), "", claims("u-7", nil)), vote, http.StatusUnauthorized, refusal, "signature"},
		{"no token, voterId in the body", "", `{"voterId":"victim","titleId":"tt-url","votes":[{"aspect":"story","choice":"up"}]}`, http.StatusUnauthorized, refusal, "missing"},
	} {
		before := s.Functions.Receiver.Usage().Invocations
		status, h, body := postWithToken(t, s.URL, tc.token, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.want)
		}
		if s.Functions.Receiver.Usage().Invocations == before {
			t.Errorf("%s: the receiver was not invoked: nothing but the receiver stands behind a function URL", tc.name)
		}
		if status == http.StatusUnauthorized && (!strings.Contains(h.Get("Www-Authenticate"), `error="invalid_token"`) ||
			!strings.Contains(h.Get("Www-Authenticate"), tc.reason)) {
			t.Errorf("%s: www-authenticate %q, want a reason saying %q", tc.name, h.Get("Www-Authenticate"), tc.reason)
		}
	}
	// Reads need no token; other methods on /votes are refused.
	if resp, err := http.Get(s.URL + "/titles/tt-url/tallies"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET tallies without a token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get(s.URL + "/votes"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /votes: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if voters := storedVoters(t, s); !slices.Equal(voters, []string{"u-7", "u-7"}) {
		t.Errorf("stored voters %v, want the two accepted votes of u-7", voters)
	}

	// RS256 against a JWKS, as an identity provider publishes it.
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rsaKey.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksAuth, err := local.NewAuthorizer(local.JWTConfig{Issuer: testIssuer, Audience: testAudience, JWKS: jwks})
	if err != nil {
		t.Fatal(err)
	}
	s = startURLIngest(t, jwksAuth)
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"known kid", sign(t, jose.RS256, rsaKey, "k1", claims("u-8", nil)), http.StatusAccepted},
		{"unknown kid", sign(t, jose.RS256, rsaKey, "k2", claims("u-8", nil)), http.StatusUnauthorized},
		{"HS256 under the kid", sign(t, jose.HS256, []byte(testSecret), "k1", claims("u-8", nil)), http.StatusUnauthorized},
	} {
		if status, _, body := postWithToken(t, s.URL, tc.token, vote); status != tc.status {
			t.Errorf("jwks %s: %d %s, want %d", tc.name, status, body, tc.status)
		}
	}
}

// TestURLIngestWithoutAuth: ingest=url with auth=none takes the body's
// voterId on trust, as the HTTP API without an authorizer does.
func TestURLIngestWithoutAuth(t *testing.T) {
	s := startURLIngest(t, nil)
	if status, _, body := postWithToken(t, s.URL, "", `{"voterId":"u-9","titleId":"tt-url","votes":[{"aspect":"story","choice":"up"}]}`); status != http.StatusAccepted {
		t.Fatalf("%d %s", status, body)
	}
	if voters := storedVoters(t, s); !slices.Equal(voters, []string{"u-9"}) {
		t.Errorf("stored voters %v, want u-9 from the body", voters)
	}
}
