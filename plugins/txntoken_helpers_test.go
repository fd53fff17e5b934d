package plugins

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// testTD is the trust domain of the tests' Transaction Tokens.
const testTD = "test.local"

// testTTS signs Transaction Tokens as the host's authorization server
// does (ES256, typ txntoken+jwt, a kid from its JWK Set).
type testTTS struct {
	key  *ecdsa.PrivateKey
	kid  string
	jwks string
}

func newTestTTS(t testing.TB, kid string) *testTTS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := jose.MarshalKeySet([]jose.SetKey{{KID: kid, Key: key.Public(), Alg: string(jose.ES256), Use: "sig"}})
	if err != nil {
		t.Fatal(err)
	}
	return &testTTS{key: key, kid: kid, jwks: string(jwks)}
}

func (s *testTTS) keys() TxnKeys { return TxnKeys{JWKS: s.jwks, TrustDomain: testTD} }

// claims are the claims of a token for a call of tool with args, made by
// the research agent in task task-1 for alice; mod edits them.
func (s *testTTS) claims(t testing.TB, tool, args string, fields map[string]any) txntoken.Claims {
	t.Helper()
	details, err := txntoken.CallContext(tool, json.RawMessage(args), fields)
	if err != nil {
		t.Fatal(err)
	}
	rctx, err := txntoken.NewObject(map[string]any{"agent": "research", "client_id": "spiffe://test.local/agent/research",
		"task": "task-1", "chain": []string{"assistant"}, "scopes": []string{"notes:read"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	return txntoken.Claims{Issuer: "https://as.test", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(),
		Audience: testTD, Txn: "txn-1", Subject: "alice", Scope: "tasks:run", RequestingWorkload: "spiffe://test.local/agent/research",
		TransactionContext: details, RequestContext: rctx}
}

func (s *testTTS) sign(t testing.TB, c txntoken.Claims) string {
	t.Helper()
	tok, err := txntoken.Sign(context.Background(), s.key, s.kid, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// token is a valid token for a call of tool with args.
func (s *testTTS) token(t testing.TB, tool, args string, fields map[string]any) string {
	t.Helper()
	return s.sign(t, s.claims(t, tool, args, fields))
}

// signAs signs claims as a JWT of another typ with the service's key.
func (s *testTTS) signAs(t testing.TB, typ jose.Typ, claims any) string {
	t.Helper()
	tok, err := jose.Sign(context.Background(), crypto.Signer(s.key), s.kid, typ, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
