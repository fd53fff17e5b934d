package resource

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// TestUseDPoPNonceChallenge: a resource whose DPoP verifier requires
// server nonces answers a proof without one with 401 use_dpop_nonce and a
// DPoP-Nonce header (RFC 9449 §9); a proof with that nonce is accepted.
func TestUseDPoPNonceChallenge(t *testing.T) {
	f := newFixture(t)
	nonces, err := dpop.NewHMACNonces([]byte(strings.Repeat("k", dpop.MinNonceKeySize)), 0, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	dv, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: dpop.NewMemoryReplayCache(f.clock), Nonces: nonces, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.v, err = New(Config{Resource: resURI, MetadataURL: mdURL, Issuer: issuer,
		Keys: jose.StaticKeys(map[string]crypto.PublicKey{"k1": f.key.Public()}), DPoP: dv, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	jkt, _ := dpop.Thumbprint(f.dpopKey.Public())
	bound := f.token(func(c *oauth.AccessTokenClaims) { c.Confirmation = &oauth.Confirmation{JKT: jkt} }, jose.TypAccessToken, nil)

	r := f.request("DPoP " + bound)
	r.Header.Set("DPoP", f.proof(bound))
	_, err = f.v.Authenticate(r)
	var ch *Challenge
	if !errors.As(err, &ch) || ch.Status != http.StatusUnauthorized || ch.Code != oauth.CodeUseDPoPNonce || ch.DPoPNonce == "" {
		t.Fatalf("without a nonce: %+v %v", ch, err)
	}
	w := httptest.NewRecorder()
	ch.Write(w)
	if w.Header().Get("DPoP-Nonce") != ch.DPoPNonce || !strings.Contains(strings.Join(w.Header().Values("WWW-Authenticate"), ","), `DPoP error="use_dpop_nonce"`) {
		t.Fatalf("challenge headers %v", w.Header())
	}

	r = f.request("DPoP " + bound)
	p, err := dpop.NewProof(context.Background(), f.dpopKey, dpop.ProofParams{Method: http.MethodPost, URL: "http://" + testHost + "/mcp/notes",
		AccessToken: bound, Nonce: ch.DPoPNonce, Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("DPoP", p)
	if c, err := f.v.Authenticate(r); err != nil || c.JKT != jkt {
		t.Fatalf("with the nonce: %+v %v", c, err)
	}
}
