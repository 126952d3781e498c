package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"votes/infra/local"
)

// keyFiles writes an HMAC secret (with the final line break an editor or
// `openssl rand -hex 32 >` leaves) and an RSA private key.
func keyFiles(t *testing.T) (secret, rsaKey string) {
	t.Helper()
	dir := t.TempDir()
	secret, rsaKey = filepath.Join(dir, "secret"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(secret, []byte("4f0c1b6f9d2e8a7c5b3d1e0f2a4c6e8b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(rsaKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret, rsaKey
}

// jwtStack is a local stack whose POST /votes is behind the authorizer
// that `votes dev --auth jwt --jwt-key keyFile` builds, or, with ingest
// url (`--ingest url`), reaches the receiver as through its function URL
// and the receiver checks the token with the same rules.
func jwtStack(t *testing.T, stage, keyFile, ingest string) *local.Stack {
	t.Helper()
	auth, err := devAuthorizer("jwt", keyFile, "", defaultIssuer, defaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: stage, Settings: local.FastSettings(), Authorizer: auth, Ingest: ingest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// TestLoadSignsTokens: `votes load --jwt-key` drives a stack behind the JWT
// authorizer, every voter with a token of its own, and --check finds every
// accepted vote counted once; without tokens nothing is accepted.
func TestLoadSignsTokens(t *testing.T) {
	secret, rsaKey := keyFiles(t)
	for _, tc := range []struct{ name, key, ingest string }{{"hs256", secret, local.IngestAPI}, {"rs256", rsaKey, local.IngestAPI}, {"url", rsaKey, local.IngestURL}} {
		t.Run(tc.name, func(t *testing.T) {
			s := jwtStack(t, "jwtload-"+tc.name, tc.key, tc.ingest)
			code, out, errOut := votes(t, "load", "--api", s.URL, "--jwt-key", tc.key, "--count", "60", "--voters", "20", "--titles", "3",
				"--concurrency", "4", "--aspects-per-submission", "2", "--changes", "0.3", "--retries", "0.1", "--check", "--check-timeout", "60s")
			if code != 0 || !strings.Contains(out, "accepted 60, rejected 0") || !strings.Contains(out, "check: all 3 titles tally exactly what was accepted") {
				t.Errorf("load with tokens: exit %d\n%s%s", code, out, errOut)
			}
			code, out, errOut = votes(t, "load", "--api", s.URL, "--count", "10", "--concurrency", "2")
			// Every submission refused is a failed load: exit 1.
			if code != 1 || !strings.Contains(out, "accepted 0, rejected 10") || !strings.Contains(errOut, "no submission was accepted") {
				t.Errorf("load without tokens: exit %d, want 1\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestTokenForCurl: `votes token` prints a token the JWT stack takes for
// that voter, and only for that voter.
func TestTokenForCurl(t *testing.T) {
	_, rsaKey := keyFiles(t)
	s := jwtStack(t, "jwttoken", rsaKey, local.IngestAPI)
	code, out, errOut := votes(t, "token", "--jwt-key", rsaKey, "--sub", "u-1")
	if code != 0 {
		t.Fatalf("token: exit %d %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"voterId":"u-1","titleId":"tt1","votes":[{"aspect":"story","choice":"up"}]}`, http.StatusAccepted},
		{`{"voterId":"u-2","titleId":"tt1","votes":[{"aspect":"story","choice":"up"}]}`, http.StatusForbidden},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/votes", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.body, resp.StatusCode, tc.status)
		}
	}
	if code, _, _ := votes(t, "token", "--sub", "u-1"); code != 2 {
		t.Errorf("token without a key: exit %d", code)
	}
}

// TestDevAuthFlags: mistakes in the --auth flags are usage errors, found
// before the stack starts.
func TestDevAuthFlags(t *testing.T) {
	secret, _ := keyFiles(t)
	short := filepath.Join(t.TempDir(), "short")
	_ = os.WriteFile(short, []byte("secret\n"), 0o600)
	for _, args := range [][]string{
		{"--auth", "oidc"},
		{"--auth", "jwt"},
		{"--auth", "jwt", "--jwt-key", secret, "--jwks", secret},
		{"--auth", "jwt", "--jwt-key", short},
		{"--auth", "jwt", "--jwt-key", filepath.Join(t.TempDir(), "missing")},
		{"--jwt-key", secret},
		{"--ingest", "lambda"},
	} {
		if code, _, errOut := votes(t, append([]string{"dev", "--addr", "127.0.0.1:0"}, args...)...); code != 2 {
			t.Errorf("dev %v: exit %d %s", args, code, errOut)
		}
	}
}
