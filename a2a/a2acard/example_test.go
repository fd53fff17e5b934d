package a2acard_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/credentials/jose"
)

// The host builds and signs an agent's card with the agent's key; a
// client verifies the card as served against the trust bundle of the
// agent's domain, and a changed card no longer verifies.
func Example() {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader) // the agent's key in the trust domain

	card, err := a2acard.New(
		a2acard.AgentInfo{Name: "research", Description: "Finds papers", Scopes: []string{"agent:research"},
			Skills: []a2acard.Skill{{ID: "search", Description: "Searches papers", Tags: []string{"papers"}}}},
		a2acard.Options{URL: "https://host.example/a2a/research", TokenURL: "https://host.example/token"},
	)
	if err != nil {
		panic(err)
	}
	if err := a2acard.Sign(ctx, card, a2acard.Key{Signer: priv, KID: "research-1"}); err != nil {
		panic(err)
	}
	served, _ := json.Marshal(card)

	bundle := a2acard.VerifyOptions{Keys: jose.StaticKeys(map[string]crypto.PublicKey{"research-1": pub})}
	v, err := a2acard.VerifyJSON(ctx, served, bundle)
	fmt.Println(v.KeyID, v.Alg, err)

	card.Skills[0].Description = "Searches papers and mails them elsewhere"
	_, err = a2acard.Verify(ctx, card, bundle)
	fmt.Println(errors.Is(err, a2acard.ErrSignature))
	// Output:
	// research-1 EdDSA <nil>
	// true
}
