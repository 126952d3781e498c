package jwtkey_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"votes/internal/jwtkey"
)

func TestParse(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	pkix, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	private := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	public := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	secret := []byte("0123456789abcdef0123456789abcdef")

	for _, tc := range []struct {
		name    string
		file    []byte
		private bool
		alg     jose.SignatureAlgorithm
		check   func(any) bool
	}{
		{"secret with a final line break", append(append([]byte{}, secret...), "\r\n"...), true, jose.HS256, func(k any) bool { return string(k.([]byte)) == string(secret) }},
		{"private key to sign", private, true, jose.RS256, func(k any) bool { return k.(*rsa.PrivateKey).Equal(rsaKey) }},
		{"PKCS#1 private key to sign", pkcs1, true, jose.RS256, func(k any) bool { return k.(*rsa.PrivateKey).Equal(rsaKey) }},
		{"private key to verify: its public half", private, false, jose.RS256, func(k any) bool { return k.(*rsa.PublicKey).Equal(&rsaKey.PublicKey) }},
		{"public key to verify", public, false, jose.RS256, func(k any) bool { return k.(*rsa.PublicKey).Equal(&rsaKey.PublicKey) }},
	} {
		key, alg, err := jwtkey.Parse(tc.file, tc.private)
		if err != nil || alg != tc.alg || !tc.check(key) {
			t.Errorf("%s: %T %s %v", tc.name, key, alg, err)
		}
	}
	for name, tc := range map[string]struct {
		file    []byte
		private bool
	}{
		"short secret":        {[]byte("0123456789abcdef0123456789abcde\n"), true},
		"public key to sign":  {public, true},
		"EC key":              {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), false},
		"certificate request": {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}), false},
		"corrupt private key": {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), true},
	} {
		if _, _, err := jwtkey.Parse(tc.file, tc.private); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
