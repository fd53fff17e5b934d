package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// TestLazyIssuer: an issuer that does not answer is asked again only
// after the retry interval, its failures wrap ErrKeysUnavailable, and
// once it answers its discovery is kept; without an introspection
// endpoint an opaque token is inactive, not an error.
func TestLazyIssuer(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := jose.MarshalKeySet([]jose.SetKey{{KID: "k0", Key: key.Public(), Alg: "ES256", Use: "sig"}})
	if err != nil {
		t.Fatal(err)
	}
	var up atomic.Bool
	var asked atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks",
				"token_endpoint": srv.URL + "/token", "response_types_supported": []string{"code"}})
		case "/jwks":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	now := time.Unix(1_800_000_000, 0)
	l := NewLazyIssuer(IssuerConfig{Issuer: srv.URL, Fetcher: fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true}),
		Now: func() time.Time { return now }}, time.Minute)
	ctx := context.Background()

	if _, err := l.Key(ctx, "k1"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("issuer down: %v, want ErrKeysUnavailable", err)
	}
	n := asked.Load()
	if n == 0 {
		t.Fatal("the issuer was not asked")
	}
	up.Store(true)
	if _, err := l.Key(ctx, "k1"); !errors.Is(err, ErrKeysUnavailable) || asked.Load() != n {
		t.Fatalf("within the retry interval: %v, asked %d more times", err, asked.Load()-n)
	}
	now = now.Add(time.Minute)
	if _, err := l.Discover(ctx); err != nil {
		t.Fatalf("after the retry interval: %v", err)
	}
	if k, err := l.Key(ctx, "k0"); err != nil || !key.PublicKey.Equal(k) {
		t.Fatalf("the discovered issuer's key: %v %v", k, err)
	}
	res, err := l.Introspect(ctx, "opaque")
	if err != nil || res.Active {
		t.Fatalf("no introspection endpoint: %+v %v, want inactive", res, err)
	}
}
