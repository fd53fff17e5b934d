package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// TestKeysChoice: a client's keys give the most preferred algorithm the
// server lists (ES256 first), the same key every time, another key for
// another algorithm, and none when nothing is in common.
func TestKeysChoice(t *testing.T) {
	keys := dpop.NewKeys()
	for _, tt := range []struct {
		name string
		algs []string
		want jose.Alg
	}{
		{"ES256 preferred", []string{"PS256", "RS256", "EdDSA", "ES256"}, jose.ES256},
		{"EdDSA next", []string{"PS256", "EdDSA", "ES384"}, jose.EdDSA},
		{"ES384", []string{"ES384", "PS512"}, jose.ES384},
		{"nothing in common", []string{"PS256", "HS256", "none"}, ""},
		{"no algorithms", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key, alg, err := keys.Key(tt.algs)
			if err != nil {
				t.Fatal(err)
			}
			if alg != tt.want || (key == nil) != (tt.want == "") {
				t.Fatalf("Key(%v) = %T %q, want %q", tt.algs, key, alg, tt.want)
			}
			if key == nil {
				return
			}
			if got, err := jose.AlgorithmForKey(key.Public()); err != nil || got != alg {
				t.Fatalf("the %s key signs %s (%v)", alg, got, err)
			}
			again, _, _ := keys.Key(tt.algs)
			if thumb(t, again) != thumb(t, key) {
				t.Fatal("a second Key gave another key")
			}
			// A proof with it verifies, and names its thumbprint.
			proof, err := dpop.NewProof(context.Background(), key, dpop.ProofParams{Method: "POST", URL: "https://as.example/token"})
			if err != nil {
				t.Fatal(err)
			}
			v, _ := dpop.NewVerifier(dpop.VerifierConfig{Replay: dpop.NewMemoryReplayCache(nil)})
			u, _ := url.Parse("https://as.example/token")
			jkt, _ := dpop.Thumbprint(key.Public())
			if _, err := v.Verify(context.Background(), proof, dpop.Request{Method: "POST", URL: u, JKT: jkt}); err != nil {
				t.Fatal(err)
			}
		})
	}
	es256, _, _ := keys.Key([]string{"ES256"})
	eddsa, _, _ := keys.Key([]string{"EdDSA"})
	if _, ok := es256.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("ES256 key is %T", es256)
	}
	if _, ok := eddsa.(ed25519.PrivateKey); !ok {
		t.Fatalf("EdDSA key is %T", eddsa)
	}
	if other, _, _ := dpop.NewKeys().Key([]string{"ES256"}); thumb(t, other) == thumb(t, es256) {
		t.Fatal("two sets made the same key")
	}
}

func TestKeysFrom(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dpop.KeysFrom(p384)
	if err != nil {
		t.Fatal(err)
	}
	if key, _, err := keys.Key([]string{"ES256", "EdDSA"}); key != nil || err != nil {
		t.Fatalf("a fixed ES384 key made another: %T %v", key, err)
	}
	if key, alg, err := keys.Key([]string{"ES256", "ES384"}); key != crypto.Signer(p384) || alg != jose.ES384 || err != nil {
		t.Fatalf("Key = %T %s %v", key, alg, err)
	}
	if _, err := dpop.KeysFrom(nil); err == nil {
		t.Fatal("KeysFrom(nil) succeeded")
	}
}

func TestKeysConcurrent(t *testing.T) {
	keys := dpop.NewKeys()
	var wg sync.WaitGroup
	got := make([]string, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, _, err := keys.Key([]string{"ES256"})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = thumb(t, key)
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] {
			t.Fatal("concurrent callers got different keys")
		}
	}
}

func thumb(t *testing.T, key crypto.Signer) string {
	t.Helper()
	jkt, err := dpop.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return jkt
}

// TestNonceCache: nonces are kept per origin (scheme, host, port; the
// default port and case do not matter), the latest wins, and what is not
// a nonce is not kept.
func TestNonceCache(t *testing.T) {
	var c dpop.NonceCache
	if n := c.Nonce("https://as.example/token"); n != "" {
		t.Fatalf("empty cache gave %q", n)
	}
	c.Remember("https://as.example/token", "n1")
	c.Remember("https://rs.example/mcp", "r1")
	for _, tt := range []struct{ url, want string }{
		{"https://as.example/token", "n1"},
		{"https://AS.example:443/other?x=1", "n1"},
		{"http://as.example/token", ""},
		{"https://as.example:8443/token", ""},
		{"https://rs.example/mcp", "r1"},
		{"not a url", ""},
	} {
		if got := c.Nonce(tt.url); got != tt.want {
			t.Errorf("Nonce(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
	c.Remember("https://as.example/token", "n2")
	c.Remember("https://as.example/token", "")
	c.Remember("https://as.example/token", `bad"nonce`)
	c.Remember("https://as.example/token", "bad nonce")
	c.Remember("https://as.example/token", strings.Repeat("n", 600))
	c.Remember("ftp://as.example/token", "n3")
	if got := c.Nonce("https://as.example/"); got != "n2" {
		t.Fatalf("after the latest nonce and junk: %q, want n2", got)
	}
	// It stays bounded.
	for i := range dpop.MaxCachedNonces + 10 {
		c.Remember(fmt.Sprintf("https://h%d.example/", i), "x")
	}
	if got := c.Nonce(fmt.Sprintf("https://h%d.example/", dpop.MaxCachedNonces+9)); got != "x" {
		t.Fatalf("latest origin lost: %q", got)
	}
}
