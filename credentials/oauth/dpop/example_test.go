package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/url"

	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

func Example() {
	ctx := context.Background()

	// Client: one proof per request.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	proof, err := dpop.NewProof(ctx, key, dpop.ProofParams{Method: "POST", URL: "https://as.example/token"})
	if err != nil {
		panic(err)
	}

	// Server: verify it against the request it came with.
	v, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: dpop.NewMemoryReplayCache(nil)})
	if err != nil {
		panic(err)
	}
	target, _ := url.Parse("https://as.example/token")
	p, err := v.Verify(ctx, proof, dpop.Request{Method: "POST", URL: target})
	if err != nil {
		panic(err)
	}
	jkt, _ := dpop.Thumbprint(key.Public())
	fmt.Println("bound to the client key:", p.JKT == jkt)

	// The same proof a second time is a replay.
	_, err = v.Verify(ctx, proof, dpop.Request{Method: "POST", URL: target})
	fmt.Println(dpop.ErrorCode(err))
	fmt.Println(err)
	// Output:
	// bound to the client key: true
	// invalid_dpop_proof
	// dpop: jti was already used with this key
}
