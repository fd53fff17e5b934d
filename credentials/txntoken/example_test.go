package txntoken_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agenthost/agenthost/credentials/txntoken"
)

// The host mints a Txn-Token bound to one tool call; the tool verifies it
// and checks that the call it received is the one the token describes.
func Example() {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	tts, err := txntoken.NewIssuer(txntoken.Config{
		Signer: key, KeyID: "tts-1", TrustDomain: "example.org", Clock: clock,
	})
	if err != nil {
		panic(err)
	}
	args := json.RawMessage(`{"payee": "bob", "amount": 3}`)
	tctx, err := txntoken.CallContext("payments/transfer", args, map[string]any{"amount": 3})
	if err != nil {
		panic(err)
	}
	token, _, err := tts.Mint(ctx, txntoken.Claims{
		Txn:                "task-42",
		Subject:            "user:alice",
		Scope:              "payments.transfer",
		RequestingWorkload: "spiffe://example.org/agent/payer",
		TransactionContext: tctx,
	})
	if err != nil {
		panic(err)
	}

	// At the tool.
	c, err := txntoken.Verify(ctx, token, txntoken.VerifyOptions{
		Keys: tts.Keys(), TrustDomain: "example.org", Now: clock,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Subject, c.Scopes(), c.ExpiresAt-c.IssuedAt)
	fmt.Println(c.CheckCall("payments/transfer", json.RawMessage(`{"amount":3,"payee":"bob"}`)))
	fmt.Println(c.CheckField("amount", 3.0))
	err = c.CheckCall("payments/transfer", json.RawMessage(`{"amount":30,"payee":"bob"}`))
	fmt.Println(errors.Is(err, txntoken.ErrCallMismatch))
	// Output:
	// user:alice [payments.transfer] 60
	// <nil>
	// <nil>
	// true
}

func ExampleArgsDigest() {
	a, _ := txntoken.ArgsDigest(json.RawMessage(`{"payee": "bob", "amount": 3}`))
	b, _ := txntoken.ArgsDigest(json.RawMessage(`{"amount":3.0,"payee":"bob"}`))
	c, _ := txntoken.ArgsDigest(json.RawMessage(`{"amount":30,"payee":"bob"}`))
	fmt.Println(a)
	fmt.Println(a == b, a == c)
	// Output:
	// 09d2a0f71e7231c46f9c45cc5efd838b274ac8f536b041f486ae0efc7eced94f
	// true false
}

func ExampleCheckReplacement() {
	old := txntoken.Claims{
		IssuedAt: 1000, ExpiresAt: 1060, Audience: "example.org",
		Txn: "task-42", Subject: "user:alice", Scope: "notes.read notes.write",
		RequestingWorkload: "spiffe://example.org/agent/writer",
	}
	narrowed := old
	narrowed.Scope = "notes.read"
	widened := old
	widened.Scope = "notes.read notes.write admin"

	at := time.Unix(1030, 0)
	fmt.Println(txntoken.CheckReplacement(&old, &narrowed, at))
	fmt.Println(txntoken.CheckReplacement(&old, &widened, at))
	fmt.Println(errors.Is(txntoken.CheckReplacement(&old, &narrowed, time.Unix(1060, 0)), txntoken.ErrExpired))
	// Output:
	// <nil>
	// txntoken: replacement not allowed: scope "admin" is not in the token being replaced
	// true
}
