package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"votes/domain"
	"votes/handlers"
	"votes/infra/functions"
	"votes/infra/jwtauth"
)

// urlEvent is the function URL event of testdata/lambda-url-request.json
// (the request payload Lambda documents for function URLs, AuthType NONE:
// no authorizer), changed by edit, as raw JSON.
func urlEvent(t *testing.T, edit func(map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "lambda-url-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return b
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// invokeURL runs handler as the Lambda runtime does, on a function URL's
// raw event, and decodes the answer as a function URL's response.
func invokeURL(t *testing.T, handler any, event []byte) events.LambdaFunctionURLResponse {
	t.Helper()
	out, err := lambda.NewHandler(handler).Invoke(context.Background(), event)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp
}

// TestReceiverThroughFunctionURL: the receiver's handler type decodes a
// function URL's event (payload format 2.0, route key "$default", no
// authorizer): the vote is queued as through the HTTP API, only POST
// /votes is served, and each request gets its access log line, since no
// API Gateway writes one.
func TestReceiverThroughFunctionURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var logged bytes.Buffer
	h := functions.Receiver(f.cfg, f.clients.SQS, nil, slog.New(slog.NewJSONHandler(&logged, nil)))

	resp := invokeURL(t, h.Handle, urlEvent(t, nil))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", resp.StatusCode, resp.Body)
	}
	a := queued(t, f)
	if a.VoterID != "bob" || a.TitleID != "tt0068646" || a.OccurredAt != "2026-11-28T19:03:58Z" ||
		a.SubmissionID != submissionOf("url-0001", domain.Choice{Aspect: "story", Choice: "up"}) {
		t.Errorf("queued %+v, want bob's story vote on tt0068646 under url-0001", a)
	}
	var line map[string]any
	if err := json.Unmarshal(logged.Bytes(), &line); err != nil {
		t.Fatalf("access log %q: %v", logged.String(), err)
	}
	for k, want := range map[string]any{
		"msg": "access", "requestId": "4b0c6d0e-6f3e-4c55-9a43-8d3f0f1f7b20", "sourceIp": "198.51.100.7", "userAgent": "curl/8.5.0",
		"method": "POST", "path": "/votes", "status": float64(202), "requestTime": "28/Nov/2026:19:03:58 +0000",
	} {
		if line[k] != want {
			t.Errorf("access log %s = %v, want %v", k, line[k], want)
		}
	}
	if _, ok := line["latencyMs"]; !ok {
		t.Errorf("access log without latency: %s", logged.String())
	}
	if strings.Contains(logged.String(), "bob") {
		t.Errorf("access log names the voter: %s", logged.String())
	}

	for name, tc := range map[string]struct {
		edit   func(map[string]any)
		status int
		code   string
	}{
		// A function URL takes every path: only /votes is a vote.
		"another path": {func(m map[string]any) {
			m["rawPath"] = "/"
			m["requestContext"].(map[string]any)["http"].(map[string]any)["path"] = "/"
		}, http.StatusNotFound, handlers.CodeNotFound},
		"another method": {func(m map[string]any) {
			m["requestContext"].(map[string]any)["http"].(map[string]any)["method"] = "GET"
		}, http.StatusMethodNotAllowed, handlers.CodeMethodNotAllowed},
	} {
		logged.Reset()
		resp := invokeURL(t, h.Handle, urlEvent(t, tc.edit))
		var eb errorBody
		_ = json.Unmarshal([]byte(resp.Body), &eb)
		if resp.StatusCode != tc.status || eb.Error.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", name, resp.StatusCode, resp.Body, tc.status, tc.code)
		}
		if !strings.Contains(logged.String(), `"error":"`+tc.code+`"`) {
			t.Errorf("%s: access log %q does not say %s", name, logged.String(), tc.code)
		}
	}
	// A CORS preflight that reaches the function gets a 2xx, which the
	// URL's CORS headers turn into an allowance.
	preflight := invokeURL(t, h.Handle, urlEvent(t, func(m map[string]any) {
		m["requestContext"].(map[string]any)["http"].(map[string]any)["method"] = "OPTIONS"
		m["headers"].(map[string]any)["access-control-request-method"] = "POST"
		delete(m, "body")
	}))
	if preflight.StatusCode != http.StatusNoContent {
		t.Errorf("preflight: %d %s, want 204", preflight.StatusCode, preflight.Body)
	}
	if msgs := drain(t, f, f.cfg.SubmissionsURL); len(msgs) != 0 {
		t.Errorf("refused requests queued %d messages", len(msgs))
	}

	// Through the HTTP API's route, API Gateway writes the access log.
	logged.Reset()
	if resp, err := h.Handle(context.Background(), apiRequest(t, "apigw-v2-request-no-authorizer.json")); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("through the HTTP API: %d %v", resp.StatusCode, err)
	}
	if logged.Len() != 0 {
		t.Errorf("a request through the HTTP API logged %s", logged.String())
	}
}

const (
	urlIssuer   = "https://id.example.com/"
	urlAudience = "votes-api"
	urlSecret   = "0123456789abcdef0123456789abcdef"
)

// signToken signs claims with key (HS256), as an identity provider would.
func signToken(t *testing.T, key string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(key)}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenClaims are a valid token's claims for sub, changed by edit.
func tokenClaims(sub string, edit func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": urlIssuer, "aud": urlAudience, "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(c)
	}
	return c
}

// withAuthorization sets the event's Authorization header (none for "")
// and body.
func withAuthorization(authorization, body string) func(map[string]any) {
	return func(m map[string]any) {
		if authorization != "" {
			m["headers"].(map[string]any)["authorization"] = authorization
		}
		m["body"] = body
	}
}

// TestReceiverVerifiesTokensBehindURL: behind a function URL with auth=jwt
// no authorizer checks the token, so the receiver does, with the checks of
// the local authorizer: the same answers as the authorizer path (401 for a
// missing or invalid token, the voter the token's sub, hashed when it is no
// voter ID), and nothing queued for a refused token.
func TestReceiverVerifiesTokensBehindURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	verifier, err := jwtauth.New(jwtauth.Config{Issuer: urlIssuer, Audience: urlAudience, Key: []byte(urlSecret)})
	if err != nil {
		t.Fatal(err)
	}
	h := functions.Receiver(f.cfg, f.clients.SQS, verifier, discard())
	const body = `{"titleId":"tt0068646","votes":[{"aspect":"acting","choice":"up"}]}`
	bearer := func(c map[string]any) string { return "Bearer " + signToken(t, urlSecret, c) }
	for _, tc := range []struct {
		name, authorization, body string
		status                    int
		voter                     string // on a 202
		reason                    string // in www-authenticate, on a 401 of the verifier
	}{
		{name: "valid, sub a voter ID", authorization: bearer(tokenClaims("u-7", nil)), body: body, status: 202, voter: "u-7"},
		{name: "valid, sub hashed", authorization: bearer(tokenClaims("auth0|5f7c8ec7c33c6c004bbafe82", nil)), body: body, status: 202,
			voter: "h:igveq6eh4pcfygnsisfs6a3fklyawldy4i4unu4qu7uen5vnldqq"},
		{name: "valid, bare token", authorization: signToken(t, urlSecret, tokenClaims("u-7", nil)), body: body, status: 202, voter: "u-7"},
		{name: "valid, body voterId the sub", authorization: bearer(tokenClaims("u-7", nil)),
			body: `{"voterId":"u-7","titleId":"tt0068646","votes":[{"aspect":"acting","choice":"down"}]}`, status: 202, voter: "u-7"},
		{name: "valid, body voterId another", authorization: bearer(tokenClaims("u-7", nil)),
			body: `{"voterId":"victim","titleId":"tt0068646","votes":[{"aspect":"acting","choice":"down"}]}`, status: 403},
		{name: "missing", body: `{"voterId":"victim","titleId":"tt0068646","votes":[{"aspect":"acting","choice":"up"}]}`, status: 401, reason: "missing"},
		{name: "expired", authorization: bearer(tokenClaims("u-7", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })),
			body: body, status: 401, reason: "expired"},
		{name: "wrong audience", authorization: bearer(tokenClaims("u-7", func(c map[string]any) { c["aud"] = "another-api" })),
			body: body, status: 401, reason: "audience"},
		{name: "wrong issuer", authorization: bearer(tokenClaims("u-7", func(c map[string]any) { c["iss"] = "https://evil.example/" })),
			body: body, status: 401, reason: "issuer"},
		{name: "another key", authorization: "Bearer " + signToken(t, strings.Repeat("z", 32), tokenClaims("u-7", nil)),
			body: body, status: 401, reason: "signature"},
		{name: "not a JWT", authorization: "Bearer abc.def", body: body, status: 401, reason: "not a signed JWT"},
		{name: "no sub", authorization: bearer(tokenClaims("", func(c map[string]any) { delete(c, "sub") })), body: body, status: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := invokeURL(t, h.Handle, urlEvent(t, withAuthorization(tc.authorization, tc.body)))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			if tc.status == 202 {
				if a := queued(t, f); a.VoterID != tc.voter {
					t.Errorf("voter %q, want %q", a.VoterID, tc.voter)
				}
				return
			}
			var eb errorBody
			_ = json.Unmarshal([]byte(resp.Body), &eb)
			if tc.status == 401 && (eb.Error.Code != domain.CodeUnauthorized || !strings.Contains(resp.Headers["www-authenticate"], `error="invalid_token"`) ||
				!strings.Contains(resp.Headers["www-authenticate"], tc.reason)) {
				t.Errorf("401 %s, www-authenticate %q; want code unauthorized and a reason saying %q", resp.Body, resp.Headers["www-authenticate"], tc.reason)
			}
			if strings.Contains(resp.Body, "victim") || strings.Contains(resp.Body, "eyJ") {
				t.Errorf("the answer repeats the body's voter or the token: %s", resp.Body)
			}
			if msgs := drain(t, f, f.cfg.SubmissionsURL); len(msgs) != 0 {
				t.Errorf("a refused request queued %d messages", len(msgs))
			}
		})
	}

	// Claims in the event are never taken for a verified token: only the
	// token the receiver checked names the voter.
	resp := invokeURL(t, h.Handle, urlEvent(t, func(m map[string]any) {
		m["requestContext"].(map[string]any)["authorizer"] = map[string]any{"jwt": map[string]any{"claims": map[string]any{"sub": "alice"}}}
	}))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("claims in the event without a token: %d %s, want 401", resp.StatusCode, resp.Body)
	}
}

// failingTokens is a verifier whose keys cannot be had: the issuer is
// unreachable.
type failingTokens struct{}

func (failingTokens) Verify(context.Context, string) (map[string]string, error) {
	return nil, errors.New("jwt: get https://id.example.com/.well-known/openid-configuration: connection refused")
}

// TestReceiverTokenCheckUnavailable: a token that cannot be checked (the
// issuer's keys unreachable) is not the client's fault: a 503 to retry
// with the same key, never a 401, and never a vote taken unchecked.
func TestReceiverTokenCheckUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := functions.Receiver(f.cfg, f.clients.SQS, failingTokens{}, discard())
	resp := invokeURL(t, h.Handle, urlEvent(t, withAuthorization("Bearer "+signToken(t, urlSecret, tokenClaims("u-7", nil)),
		`{"titleId":"tt0068646","votes":[{"aspect":"acting","choice":"up"}]}`)))
	var eb errorBody
	_ = json.Unmarshal([]byte(resp.Body), &eb)
	if resp.StatusCode != http.StatusServiceUnavailable || eb.Error.Code != handlers.CodeUnavailable || strings.Contains(resp.Body, "connection refused") {
		t.Errorf("%d %s, want 503 unavailable without the cause", resp.StatusCode, resp.Body)
	}
	if msgs := drain(t, f, f.cfg.SubmissionsURL); len(msgs) != 0 {
		t.Errorf("an unchecked request queued %d messages", len(msgs))
	}
}
