package oauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// keyedClient is the research agent's client with DPoP keys and a logger.
func (e *asEnv) keyedClient(t *testing.T, keys *dpop.Keys, log *slog.Logger) *oauth.Client {
	t.Helper()
	id := spiffeid.RequireFromString("spiffe://example.org/agent/research")
	c, err := oauth.NewClient(oauth.ClientConfig{
		ClientID: id.String(),
		Assertion: func(ctx context.Context, aud string) (string, error) {
			tok, _, err := e.ca.NewJWTSVID(ctx, id, []string{aud})
			return tok, err
		},
		DPoPKeys: keys,
		Logger:   log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientDPoPBinding: with keys, a token from a server that advertises
// DPoP is bound to the key of the best algorithm the server and the
// resource share (cnf.jkt), and carries that key; a request for a bearer
// token, or one with no algorithm in common, gets a bearer token.
func TestClientDPoPBinding(t *testing.T) {
	e := newAS(t, false)
	keys := dpop.NewKeys()
	c := e.keyedClient(t, keys, nil)
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		scopes []string // distinct per row: each row is a new token
		bearer bool
		algs   []string
		want   string // the key's algorithm; "" for a bearer token
	}{
		{"server's algorithms", nil, false, nil, "ES256"},
		{"the resource's choice", []string{"notes:read"}, false, []string{"EdDSA", "PS256"}, "EdDSA"},
		{"nothing in common", []string{}, false, []string{"PS256"}, ""},
		{"bearer asked for", []string{"notes:read", "notes:read"}, true, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := c.Token(ctx, oauth.TokenRequest{Server: e.md, Resource: notes, Scopes: tt.scopes, Bearer: tt.bearer, DPoPAlgs: tt.algs})
			if err != nil {
				t.Fatal(err)
			}
			claims, err := e.srv.VerifyAccessToken(ctx, tok.AccessToken, notes)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if tok.TokenType != oauth.TokenTypeBearer || tok.DPoPKey != nil || claims.Confirmation != nil {
					t.Fatalf("token type %s, key %T, cnf %+v; want a bearer token", tok.TokenType, tok.DPoPKey, claims.Confirmation)
				}
				return
			}
			key, _, _ := keys.Key([]string{tt.want})
			jkt, _ := dpop.Thumbprint(key.Public())
			if tok.TokenType != oauth.TokenTypeDPoP || tok.DPoPKey == nil || claims.Confirmation == nil || claims.Confirmation.JKT != jkt {
				t.Fatalf("token type %s, cnf %+v; want DPoP bound to %s", tok.TokenType, claims.Confirmation, jkt)
			}
			if got, _ := dpop.Thumbprint(tok.DPoPKey.Public()); got != jkt {
				t.Fatal("the token carries another key than it is bound to")
			}
			if tt.want == "EdDSA" {
				if _, ok := tok.DPoPKey.(ed25519.PrivateKey); !ok {
					t.Fatalf("EdDSA token carries a %T", tok.DPoPKey)
				}
			}
		})
	}
}

// TestClientKeepsASNonce: a server that requires nonces refuses the first
// token request (use_dpop_nonce); the client answers once with the nonce
// and keeps it, so its next token request goes through at once.
func TestClientKeepsASNonce(t *testing.T) {
	e := newAS(t, true)
	c := e.keyedClient(t, dpop.NewKeys(), nil)
	ctx := context.Background()
	if _, err := c.Token(ctx, oauth.TokenRequest{Server: e.md, Resource: notes}); err != nil {
		t.Fatal(err)
	}
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	tok, err := c.Token(ctx, oauth.TokenRequest{Server: e.md, Resource: notes, Scopes: []string{"notes:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.requests.Load(); n != 3 || tok.TokenType != oauth.TokenTypeDPoP {
		t.Fatalf("%d requests and a %s token, want 3 and DPoP", n, tok.TokenType)
	}
}

// fakeTokenEndpoint answers every token request with body and records
// the DPoP headers it got.
type fakeTokenEndpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	proofs []string
}

func newFakeTokenEndpoint(t *testing.T, body string) *fakeTokenEndpoint {
	f := &fakeTokenEndpoint{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.proofs = append(f.proofs, r.Header.Get("DPoP"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTokenEndpoint) metadata(algs ...string) *oauth.ServerMetadata {
	return &oauth.ServerMetadata{Issuer: f.srv.URL, TokenEndpoint: f.srv.URL + "/token", DPoPSigningAlgValuesSupported: algs}
}

func assertionClient(t *testing.T, cfg oauth.ClientConfig) *oauth.Client {
	t.Helper()
	cfg.ClientID = "spiffe://example.org/agent/research"
	cfg.Assertion = func(context.Context, string) (string, error) { return "assertion", nil }
	c, err := oauth.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientBearerAnswerToDPoPRequest: RFC 9449 §5 lets a server answer a
// DPoP token request with a bearer token. The client uses it as the
// bearer token it is (no key, so no DPoP scheme or proof with it) and
// logs a warning.
func TestClientBearerAnswerToDPoPRequest(t *testing.T) {
	f := newFakeTokenEndpoint(t, `{"access_token":"plain","token_type":"Bearer","expires_in":60}`)
	var logs bytes.Buffer
	c := assertionClient(t, oauth.ClientConfig{DPoPKeys: dpop.NewKeys(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	tok, err := c.Token(context.Background(), oauth.TokenRequest{Server: f.metadata("ES256"), Resource: notes})
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != oauth.TokenTypeBearer || tok.DPoPKey != nil {
		t.Fatalf("token type %s, key %T; want a bearer token without a key", tok.TokenType, tok.DPoPKey)
	}
	if len(f.proofs) != 1 || f.proofs[0] == "" {
		t.Fatalf("the token request carried no proof: %q", f.proofs)
	}
	if !strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "plain") {
		t.Fatalf("log: %s", logs.String())
	}
}

// TestClientRefusesUnaskedDPoPToken: a DPoP token the client did not ask
// for (no proof sent) cannot be used: it is an error.
func TestClientRefusesUnaskedDPoPToken(t *testing.T) {
	f := newFakeTokenEndpoint(t, `{"access_token":"bound","token_type":"DPoP","expires_in":60}`)
	c := assertionClient(t, oauth.ClientConfig{})
	if _, err := c.Token(context.Background(), oauth.TokenRequest{Server: f.metadata("ES256"), Resource: notes}); err == nil {
		t.Fatal("an unasked-for DPoP token was accepted")
	}
	if f.proofs[0] != "" {
		t.Fatal("a client without keys sent a proof")
	}
}

func TestClientDPoPConfig(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err := oauth.NewClient(oauth.ClientConfig{ClientID: "c", Assertion: func(context.Context, string) (string, error) { return "", nil },
		DPoPKey: key, DPoPKeys: dpop.NewKeys()})
	if err == nil {
		t.Fatal("DPoPKey and DPoPKeys together were accepted")
	}
}
