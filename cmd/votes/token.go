package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"votes/internal/loadgen"
)

// runToken prints a signed token for one voter, for curl against votes
// dev --auth jwt.
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", stderr)
	keyFile := fs.String("jwt-key", "", "file of an HMAC secret (HS256, at least 32 bytes) or a PEM RSA private key (RS256)")
	sub := fs.String("sub", "", "the token's subject: the voter")
	issuer := fs.String("jwt-issuer", defaultIssuer, "the token's issuer")
	audience := fs.String("jwt-audience", defaultAudience, "the token's audience")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if err := noMoreArgs(pos, 0); err != nil {
		return err
	}
	if *keyFile == "" || *sub == "" {
		return usageError{errors.New("--jwt-key FILE and --sub VOTER are required")}
	}
	if *ttl <= 0 {
		return usageError{fmt.Errorf("--ttl %s: want a positive duration", *ttl)}
	}
	signer, err := newSigner(*keyFile, *issuer, *audience, *ttl)
	if err != nil {
		return err
	}
	tok, err := signer.Token(*sub)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func newSigner(keyFile, issuer, audience string, ttl time.Duration) (*loadgen.Signer, error) {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, usageError{err}
	}
	s, err := loadgen.NewSigner(key, issuer, audience, ttl)
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}
