package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"votes/infra/local"
	"votes/internal/loadgen"
	"votes/internal/metering"
)

// fullVCPUMemoryMB is the memory size at which a Lambda function has the
// equivalent of one vCPU; below it, CPU is in proportion to memory (Lambda
// developer guide, "Configuring function memory").
const fullVCPUMemoryMB = 1769

// printLean prints m's bill with a Lambda function URL in place of the
// HTTP API: no API Gateway fee, the receiver's invocations and their
// request fee unchanged, and each invocation longer by the JWT check the
// authorizer no longer does for it, measured here on an RS256 token and
// scaled to the receiver's share of a vCPU.
func (b *bench) printLean(m measured) error {
	verify, err := jwtVerifyTime()
	if err != nil {
		return err
	}
	mb := b.settings.MemoryMB["receiver"]
	inLambda := time.Duration(float64(verify) * fullVCPUMemoryMB / float64(mb))
	lean := leanBill(m.bill, m.lambdas["receiver"].Invocations, inLambda, mb, metering.ListPrices).Scale(float64(m.votes), 1e6)
	fmt.Fprintf(b.out, "usd_per_million_votes_lean: %.2f\n", lean.Total())
	fmt.Fprintf(b.out, "  api_gateway: %.3f\n  lambda: %.3f\n  sqs: %.3f\n  dynamodb: %.3f\n", lean.APIGateway, lean.Lambda, lean.SQS, lean.DynamoDB)
	fmt.Fprintf(b.out, "  (function URL; the receiver checks the RS256 token: %s of CPU here, %s at %d MB)\n",
		verify.Round(time.Microsecond), inLambda.Round(10*time.Microsecond), mb)
	return nil
}

// leanBill is bill without API Gateway, with invocations receiver
// invocations each longer by extra at mb MB.
func leanBill(bill metering.Bill, invocations int64, extra time.Duration, mb int, p metering.Prices) metering.Bill {
	bill.APIGateway = 0
	bill.Lambda += float64(invocations) * extra.Seconds() * float64(mb) / 1024 * p.LambdaGBSecondARM
	return bill
}

// jwtVerifyTime is what checking one voter's RS256 token (2,048-bit key,
// as identity providers sign) takes the local authorizer's code: the
// fastest of ten rounds of 100 checks, so that other work on a shared
// machine counts as little as it can.
func jwtVerifyTime() (time.Duration, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	const issuer, audience = "https://issuer.example.com/", "votes-api"
	signer, err := loadgen.NewSigner(priv, issuer, audience, time.Hour)
	if err != nil {
		return 0, err
	}
	auth, err := local.NewAuthorizer(local.JWTConfig{Issuer: issuer, Audience: audience, Key: priv})
	if err != nil {
		return 0, err
	}
	tokens := make([]string, 100)
	for i := range tokens {
		if tokens[i], err = signer.Token(fmt.Sprintf("voter-%d", i)); err != nil {
			return 0, err
		}
	}
	best := time.Duration(1 << 62)
	for range 10 {
		began := time.Now()
		for _, tok := range tokens {
			if claims, why := auth.Authorize("Bearer " + tok); claims == nil {
				return 0, fmt.Errorf("jwt: a token signed here was refused: %s", why)
			}
		}
		best = min(best, time.Since(began)/time.Duration(len(tokens)))
	}
	return best, nil
}
