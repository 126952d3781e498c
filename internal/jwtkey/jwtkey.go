// Package jwtkey reads the key files that sign and verify the JSON Web
// Tokens of local stacks and load runs.
package jwtkey

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Parse reads a key file: a PEM RSA key (public or private; private
// only when private is true, else its public half) for RS256, or else an
// HMAC secret for HS256, without a final line break, of at least 32 bytes
// as RFC 7518 asks.
func Parse(b []byte, private bool) (any, jose.SignatureAlgorithm, error) {
	if block, _ := pem.Decode(b); block != nil {
		switch block.Type {
		case "PUBLIC KEY":
			if private {
				return nil, "", errors.New("jwtkey: a public key cannot sign; give the private key")
			}
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, "", fmt.Errorf("jwtkey: parse public key: %w", err)
			}
			rsaPub, ok := pub.(*rsa.PublicKey)
			if !ok {
				return nil, "", errors.New("jwtkey: only RSA public keys are supported")
			}
			return rsaPub, jose.RS256, nil
		case "RSA PUBLIC KEY":
			if private {
				return nil, "", errors.New("jwtkey: a public key cannot sign; give the private key")
			}
			pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, "", fmt.Errorf("jwtkey: parse public key: %w", err)
			}
			return pub, jose.RS256, nil
		case "PRIVATE KEY", "RSA PRIVATE KEY":
			var key any
			var err error
			if block.Type == "RSA PRIVATE KEY" {
				key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
			} else {
				key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
			}
			if err != nil {
				return nil, "", fmt.Errorf("jwtkey: parse private key: %w", err)
			}
			priv, ok := key.(*rsa.PrivateKey)
			if !ok {
				return nil, "", errors.New("jwtkey: only RSA private keys are supported")
			}
			if private {
				return priv, jose.RS256, nil
			}
			return &priv.PublicKey, jose.RS256, nil
		default:
			return nil, "", fmt.Errorf("jwtkey: PEM block %q is not an RSA key", block.Type)
		}
	}
	secret := []byte(strings.TrimRight(string(b), "\r\n"))
	if len(secret) < 32 {
		return nil, "", fmt.Errorf("jwtkey: an HMAC secret must be at least 32 bytes, this one is %d", len(secret))
	}
	return secret, jose.HS256, nil
}
