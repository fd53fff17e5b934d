package txntoken_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

const (
	testTD   = "example.org"
	testKID  = "k1"
	testTool = "payments/transfer"
	testWL   = "spiffe://example.org/agent/payer"
	testArgs = `{"payee": "bob", "amount": 3}`
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

var (
	keysOnce sync.Once
	key      *ecdsa.PrivateKey // the TTS key, kid k1
	otherKey *ecdsa.PrivateKey // an unrelated key
)

func testKeys(tb testing.TB) {
	tb.Helper()
	keysOnce.Do(func() {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if otherKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func newIssuer(tb testing.TB, mod func(*txntoken.Config)) *txntoken.Issuer {
	tb.Helper()
	testKeys(tb)
	cfg := txntoken.Config{Signer: key, KeyID: testKID, TrustDomain: testTD, Clock: fixed(t0)}
	if mod != nil {
		mod(&cfg)
	}
	iss, err := txntoken.NewIssuer(cfg)
	if err != nil {
		tb.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func verifyOpts(tb testing.TB) txntoken.VerifyOptions {
	tb.Helper()
	testKeys(tb)
	return txntoken.VerifyOptions{
		Keys:        jose.StaticKeys(map[string]crypto.PublicKey{testKID: key.Public()}),
		TrustDomain: testTD,
		Now:         fixed(t0.Add(10 * time.Second)),
	}
}

func mustObject(tb testing.TB, members map[string]any) txntoken.Object {
	tb.Helper()
	o, err := txntoken.NewObject(members)
	if err != nil {
		tb.Fatalf("NewObject: %v", err)
	}
	return o
}

func callContext(tb testing.TB, tool, args string, fields map[string]any) txntoken.Object {
	tb.Helper()
	o, err := txntoken.CallContext(tool, json.RawMessage(args), fields)
	if err != nil {
		tb.Fatalf("CallContext: %v", err)
	}
	return o
}

// request is what the host asks the TTS for: everything but the times,
// aud and iss, which the Issuer fills.
func request(tb testing.TB) txntoken.Claims {
	tb.Helper()
	return txntoken.Claims{
		Txn:                "txn-1",
		Subject:            "user:alice",
		Scope:              "payments.transfer notes.read",
		RequestingWorkload: testWL,
		TransactionContext: callContext(tb, testTool, testArgs, map[string]any{"amount": 3}),
		RequestContext:     mustObject(tb, map[string]any{"req_ip": "127.0.0.1"}),
	}
}

// rawClaims is the payload of a valid token as a map, for crafting tokens
// with claims missing or altered.
func rawClaims() map[string]any {
	return map[string]any{
		"iat":    t0.Unix(),
		"exp":    t0.Add(time.Minute).Unix(),
		"aud":    testTD,
		"txn":    "txn-1",
		"sub":    "user:alice",
		"scope":  "payments.transfer",
		"req_wl": testWL,
		"tctx":   map[string]any{"tool": testTool},
	}
}

// signJOSE signs claims through credentials/jose with the given typ.
func signJOSE(tb testing.TB, k crypto.Signer, kid string, typ jose.Typ, claims any) string {
	tb.Helper()
	tok, err := jose.Sign(context.Background(), k, kid, typ, claims)
	if err != nil {
		tb.Fatalf("jose.Sign: %v", err)
	}
	return tok
}

// craft builds an ES256 token from raw header and payload JSON, for the
// shapes jose.Sign refuses to produce (no typ, duplicate members).
func craft(tb testing.TB, k *ecdsa.PrivateKey, header, payload string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// flip replaces one base64url character in part (0 header, 1 payload,
// 2 signature) of a compact token with another valid one.
func flip(token string, part int) string {
	b := []byte(token)
	start := 0
	for i := 0; i < part; i++ {
		for b[start] != '.' {
			start++
		}
		start++
	}
	i := start + 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
