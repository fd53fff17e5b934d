package wimse_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/wimse"
)

// exampleWIT stands in for the trust domain's CA (credentials/ca): it
// signs a WIT for sub bound to the workload key.
func exampleWIT(authority crypto.Signer, workload crypto.PublicKey, sub string, now time.Time) string {
	jwk, err := jose.PublicJWK(workload, "", string(jose.ES256), "")
	if err != nil {
		panic(err)
	}
	wit, err := jose.Sign(context.Background(), authority, "wit-1", jose.TypWIT, map[string]any{
		"iss": "spiffe://example.org",
		"sub": sub,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"cnf": map[string]any{"jwk": jwk},
	})
	if err != nil {
		panic(err)
	}
	return wit
}

// A workload proves its WIT with a Workload Proof Token bound to the
// access token it sends; the callee verifies both, and a replayed proof
// is refused.
func Example() {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	authority, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	workload, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wit := exampleWIT(authority, workload.Public(), "spiffe://example.org/agent/writer", now)

	// The caller.
	target := "https://tools.example.org/notes"
	wpt, err := wimse.MintWPT(ctx, workload, wit, target, wimse.WPTOptions{AccessToken: "at-123", Now: clock})
	if err != nil {
		panic(err)
	}

	// The callee.
	v, err := wimse.NewVerifier(wimse.Config{
		TrustDomains: map[string]wimse.Authority{"example.org": {
			Keys: jose.StaticKeys(map[string]crypto.PublicKey{"wit-1": authority.Public()}),
		}},
		Clock: clock,
	})
	if err != nil {
		panic(err)
	}
	w, err := v.VerifyWIT(ctx, wit)
	if err != nil {
		panic(err)
	}
	want := wimse.WPTExpectations{Audience: target, AccessToken: "at-123"}
	proof, err := v.VerifyWPT(ctx, wpt, w, want)
	if err != nil {
		panic(err)
	}
	fmt.Println(w.Subject, proof.Audience, proof.ExpiresAt.Sub(now))

	_, err = v.VerifyWPT(ctx, wpt, w, want)
	fmt.Println(errors.Is(err, wimse.ErrReplayed))
	_, err = v.VerifyWPT(ctx, wpt, w, wimse.WPTExpectations{Audience: "https://tools.example.org/admin", AccessToken: "at-123"})
	fmt.Println(errors.Is(err, wimse.ErrWrongAudience))
	// Output:
	// spiffe://example.org/agent/writer https://tools.example.org/notes 1m0s
	// true
	// true
}

// A client Transport signs each request with the WIMSE HTTP Message
// Signatures profile; the server's Middleware verifies it and hands the
// peer to the handler.
func ExampleTransport() {
	authority, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	workload, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wit := exampleWIT(authority, workload.Public(), "spiffe://example.org/agent/writer", time.Now())

	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	defer srv.Close()
	v, err := wimse.NewVerifier(wimse.Config{
		TrustDomains: map[string]wimse.Authority{"example.org": {
			Keys: jose.StaticKeys(map[string]crypto.PublicKey{"wit-1": authority.Public()}),
		}},
		BaseURL: srv.URL,
		Require: true,
	})
	if err != nil {
		panic(err)
	}
	srv.Config.Handler = v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _ := wimse.PeerFromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s from %s via %s", body, peer.Identity(), peer.Mode)
	}))

	tr, err := wimse.NewTransport(wimse.TransportConfig{
		Base: srv.Client().Transport,
		Credential: func(context.Context) (string, crypto.Signer, error) {
			return wit, workload, nil
		},
		Mode: wimse.ModeHTTPSig,
	})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: tr}
	resp, err := client.Post(srv.URL+"/notes", "text/plain", strings.NewReader("hello"))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(out))

	// Without the Transport, the server refuses the call.
	resp, err = srv.Client().Post(srv.URL+"/notes", "text/plain", strings.NewReader("hello"))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	out, _ = io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(out))
	// Output:
	// 200 hello from spiffe://example.org/agent/writer via http-sig
	// 400 {"type":"about:blank","title":"workload identity required","status":400,"detail":"no Workload-Identity-Token header"}
}
