package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// keySetServer serves a JWK Set whose keys, Cache-Control and status the
// test sets, and counts the fetches.
type keySetServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]crypto.PublicKey
	cc      string
	status  int
	body    []byte // served instead of the key set when set
	ctype   string
	fetches atomic.Int32
}

func newKeySetServer(t *testing.T) *keySetServer {
	s := &keySetServer{keys: map[string]crypto.PublicKey{}, status: http.StatusOK, ctype: "application/jwk-set+json"}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		body := s.body
		if body == nil {
			var set []servedKey
			for kid, k := range s.keys {
				set = append(set, servedKey{KID: kid, Key: k})
			}
			body = marshalKeySet(t, set)
		}
		if s.cc != "" {
			w.Header().Set("Cache-Control", s.cc)
		}
		w.Header().Set("Content-Type", s.ctype)
		_, _ = w.Write(body)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// servedKey is a kid and public key of a served set.
type servedKey struct {
	KID string
	Key crypto.PublicKey
}

func marshalKeySet(t *testing.T, keys []servedKey) []byte {
	var set []jose.SetKey
	for _, k := range keys {
		set = append(set, jose.SetKey{KID: k.KID, Key: k.Key, Use: "sig"})
	}
	b, err := jose.MarshalKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *keySetServer) set(f func(s *keySetServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func loopbackFetcher() *fetch.Fetcher {
	return fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true})
}

// TestRemoteKeysCacheControl: a key set is used for its max-age clamped
// to [MinTTL, MaxTTL] (MinTTL without max-age or with no-cache/no-store),
// then fetched again.
func TestRemoteKeysCacheControl(t *testing.T) {
	tests := []struct {
		cc   string
		want time.Duration
	}{
		{"public, max-age=600", 600 * time.Second},
		{`max-age="900"`, 900 * time.Second},
		{"max-age=1", DefaultKeysMinTTL},
		{"max-age=999999999999", DefaultKeysMaxTTL},
		{"", DefaultKeysMinTTL},
		{"no-store", DefaultKeysMinTTL},
		{"no-cache, max-age=600", DefaultKeysMinTTL},
		{"max-age=abc", DefaultKeysMinTTL},
		{"max-age=-5", DefaultKeysMinTTL},
	}
	for _, tt := range tests {
		t.Run(tt.cc, func(t *testing.T) {
			s := newKeySetServer(t)
			k1 := newECKey(t)
			s.set(func(s *keySetServer) { s.keys["k1"] = k1.Public(); s.cc = tt.cc })
			clock := &testClock{now: time.Unix(1_800_000_000, 0)}
			rk, err := NewRemoteKeys(RemoteKeysConfig{URL: s.srv.URL + "/jwks", Fetcher: loopbackFetcher(), Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if _, err := rk.Key(ctx, "k1"); err != nil {
				t.Fatal(err)
			}
			clock.advance(tt.want - time.Second)
			if _, err := rk.Key(ctx, "k1"); err != nil || s.fetches.Load() != 1 {
				t.Fatalf("within the TTL: %v, %d fetches", err, s.fetches.Load())
			}
			clock.advance(time.Second)
			if _, err := rk.Key(ctx, "k1"); err != nil || s.fetches.Load() != 2 {
				t.Fatalf("at the TTL: %v, %d fetches, want 2", err, s.fetches.Load())
			}
		})
	}
}

// TestRemoteKeysUnknownKid: a kid the set lacks fetches it again (a
// rotation is picked up), at most once per MinRefetch whatever the number
// of made-up kids; a key the server dropped is refused after a refetch.
func TestRemoteKeysUnknownKid(t *testing.T) {
	s := newKeySetServer(t)
	k1, k2 := newECKey(t), newECKey(t)
	s.set(func(s *keySetServer) { s.keys["k1"] = k1.Public(); s.cc = "max-age=3600" })
	clock := &testClock{now: time.Unix(1_800_000_000, 0)}
	rk, err := NewRemoteKeys(RemoteKeysConfig{URL: s.srv.URL + "/jwks", Fetcher: loopbackFetcher(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := rk.Key(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	clock.advance(DefaultKeysMinRefetch)
	s.set(func(s *keySetServer) { s.keys = map[string]crypto.PublicKey{"k2": k2.Public()} })
	got, err := rk.Key(ctx, "k2")
	if err != nil || !k2.PublicKey.Equal(got) || s.fetches.Load() != 2 {
		t.Fatalf("rotated key: %v, %d fetches", err, s.fetches.Load())
	}
	if _, err := rk.Key(ctx, "k1"); !errors.Is(err, jose.ErrUnknownKey) {
		t.Fatalf("dropped key: %v", err)
	}
	for i := range 100 {
		if _, err := rk.Key(ctx, "bogus-"+strings.Repeat("x", i%7)); !errors.Is(err, jose.ErrUnknownKey) {
			t.Fatalf("made-up kid: %v", err)
		}
	}
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("made-up kids within MinRefetch made %d fetches in all, want 2", n)
	}
	clock.advance(DefaultKeysMinRefetch - time.Second)
	if _, err := rk.Key(ctx, "bogus"); !errors.Is(err, jose.ErrUnknownKey) || s.fetches.Load() != 2 {
		t.Fatalf("just before MinRefetch: %v, %d fetches", err, s.fetches.Load())
	}
	clock.advance(time.Second)
	for range 10 {
		if _, err := rk.Key(ctx, "bogus"); !errors.Is(err, jose.ErrUnknownKey) {
			t.Fatal(err)
		}
	}
	if n := s.fetches.Load(); n != 3 {
		t.Fatalf("after MinRefetch: %d fetches, want 3", n)
	}
	// A token without kid matches a set of exactly one key.
	if got, err := rk.Key(ctx, ""); err != nil || !k2.PublicKey.Equal(got) {
		t.Fatalf("empty kid, one key: %v", err)
	}
}

// TestRemoteKeysStale: a failed fetch keeps the last good set until it is
// MaxStale old; then lookups fail with ErrKeysUnavailable until a fetch
// succeeds, and failing fetches too are made at most once per MinRefetch.
func TestRemoteKeysStale(t *testing.T) {
	s := newKeySetServer(t)
	k1 := newECKey(t)
	s.set(func(s *keySetServer) { s.keys["k1"] = k1.Public(); s.cc = "max-age=600" })
	clock := &testClock{now: time.Unix(1_800_000_000, 0)}
	rk, err := NewRemoteKeys(RemoteKeysConfig{URL: s.srv.URL + "/jwks", Fetcher: loopbackFetcher(), Now: clock.Now,
		MaxStale: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := rk.Key(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	s.set(func(s *keySetServer) { s.status = http.StatusBadGateway })
	clock.advance(10 * time.Minute)
	if _, err := rk.Key(ctx, "k1"); err != nil {
		t.Fatalf("stale within MaxStale: %v", err)
	}
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	for range 20 {
		if _, err := rk.Key(ctx, "k1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("failing fetches within MinRefetch: %d fetches, want 2", n)
	}
	clock.advance(50*time.Minute - time.Second)
	if _, err := rk.Key(ctx, "k1"); err != nil {
		t.Fatalf("just under MaxStale: %v", err)
	}
	clock.advance(time.Second)
	if _, err := rk.Key(ctx, "k1"); !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, fetch.ErrStatus) {
		t.Fatalf("past MaxStale: %v, want ErrKeysUnavailable", err)
	}
	s.set(func(s *keySetServer) { s.status = http.StatusOK })
	if _, err := rk.Key(ctx, "k1"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("recovered server within MinRefetch of the last failure: %v", err)
	}
	clock.advance(DefaultKeysMinRefetch)
	if _, err := rk.Key(ctx, "k1"); err != nil {
		t.Fatalf("recovered server: %v", err)
	}
}

// TestRemoteKeysFetchRules: the key set is fetched under package fetch's
// rules and must be a JWK Set of public signing keys; a set that breaks
// them is never used.
func TestRemoteKeysFetchRules(t *testing.T) {
	k1 := newECKey(t)
	good := marshalKeySet(t, []servedKey{{KID: "k1", Key: k1.Public()}})
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhereHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(good)
	}))
	t.Cleanup(elsewhere.Close)
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(good)
	})
	mux.HandleFunc("/cross-origin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/jwks", http.StatusFound)
	})
	mux.HandleFunc("/same-origin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/jwks", http.StatusFound)
	})
	serve := func(path, ctype string, body []byte) {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ctype)
			_, _ = w.Write(body)
		})
	}
	big := []byte(`{"keys":[],"pad":"` + strings.Repeat("x", jose.DefaultMaxKeySetSize) + `"}`)
	serve("/big", "application/json", big)
	serve("/html", "text/html", good)
	serve("/empty", "application/json", []byte(`{"keys":[]}`))
	serve("/enc-only", "application/json", []byte(`{"keys":[{"kty":"EC","use":"enc","kid":"e","crv":"P-256","x":"`+
		"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"+`","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`))
	serve("/symmetric", "application/json", []byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`))
	priv, _ := json.Marshal(map[string]any{"keys": []any{map[string]string{"kty": "EC", "kid": "p", "crv": "P-256",
		"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
		"d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}}})
	serve("/private", "application/json", priv)
	serve("/not-a-set", "application/json", []byte(`{"kty":"EC"}`))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		url     string
		fetcher *fetch.Fetcher
		want    error
	}{
		{"same-origin redirect", srv.URL + "/same-origin", loopbackFetcher(), nil},
		{"redirect to another origin", srv.URL + "/cross-origin", loopbackFetcher(), fetch.ErrRedirect},
		{"larger than the cap", srv.URL + "/big", loopbackFetcher(), fetch.ErrTooLarge},
		{"not JSON", srv.URL + "/html", loopbackFetcher(), fetch.ErrBadJSON},
		{"no keys", srv.URL + "/empty", loopbackFetcher(), nil},
		{"encryption keys only", srv.URL + "/enc-only", loopbackFetcher(), nil},
		{"a symmetric key", srv.URL + "/symmetric", loopbackFetcher(), jose.ErrUnsupportedKey},
		{"a private key", srv.URL + "/private", loopbackFetcher(), jose.ErrUnsupportedKey},
		{"not a key set", srv.URL + "/not-a-set", loopbackFetcher(), jose.ErrMalformed},
		{"loopback address", srv.URL + "/jwks", fetch.New(fetch.Config{AllowHTTP: true}), fetch.ErrPrivateAddress},
		{"plain http", srv.URL + "/jwks", fetch.New(fetch.Config{AllowPrivate: true}), fetch.ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rk, err := NewRemoteKeys(RemoteKeysConfig{URL: tt.url, Fetcher: tt.fetcher})
			if err != nil {
				t.Fatal(err)
			}
			err = rk.Refresh(t.Context())
			key, kerr := rk.Key(t.Context(), "k1")
			if tt.name == "same-origin redirect" {
				if err != nil || kerr != nil || !k1.PublicKey.Equal(key) {
					t.Fatalf("Refresh %v, Key %v", err, kerr)
				}
				return
			}
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Refresh: %v, want %v", err, tt.want)
			}
			if !errors.Is(kerr, ErrKeysUnavailable) {
				t.Fatalf("Key after a refused set: %v, want ErrKeysUnavailable", kerr)
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Fatalf("the other origin was reached %d times", n)
	}
	// A smaller MaxBytes applies even when the fetcher allows more.
	rk, err := NewRemoteKeys(RemoteKeysConfig{URL: srv.URL + "/jwks", Fetcher: loopbackFetcher(), MaxBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	if err := rk.Refresh(t.Context()); !errors.Is(err, fetch.ErrTooLarge) {
		t.Fatalf("MaxBytes: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRemoteKeysConcurrentMissesShareOneFetch: lookups that miss while a
// fetch is in flight wait for it rather than start their own, and a
// caller that gives up does not fail the others.
func TestRemoteKeysConcurrentMissesShareOneFetch(t *testing.T) {
	k1 := newECKey(t)
	body := marshalKeySet(t, []servedKey{{KID: "k1", Key: k1.Public()}})
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var trips atomic.Int32
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			trips.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(string(body))), ContentLength: int64(len(body)), Request: r}, nil
		})
		rk, err := NewRemoteKeys(RemoteKeysConfig{URL: "https://idp.example/jwks",
			Fetcher: fetch.New(fetch.Config{Client: &http.Client{Transport: rt}})})
		if err != nil {
			t.Fatal(err)
		}
		const n = 20
		type result struct {
			kid string
			err error
		}
		results := make(chan result, n)
		for i := range n {
			kid := "k1"
			if i%2 == 1 {
				kid = "bogus"
			}
			go func() {
				_, err := rk.Key(context.Background(), kid)
				results <- result{kid, err}
			}()
		}
		// One caller gives up while the fetch is in flight.
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := make(chan error, 1)
		go func() {
			_, err := rk.Key(ctx, "k1")
			gaveUp <- err
		}()
		synctest.Wait()
		if got := trips.Load(); got != 1 {
			t.Fatalf("%d fetches in flight, want 1", got)
		}
		cancel()
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller: %v", err)
		}
		close(release)
		for range n {
			r := <-results
			if r.kid == "k1" && r.err != nil || r.kid != "k1" && !errors.Is(r.err, jose.ErrUnknownKey) {
				t.Fatalf("lookup of %s: %v", r.kid, r.err)
			}
		}
		if got := trips.Load(); got != 1 {
			t.Fatalf("%d fetches, want 1", got)
		}
		if _, err := rk.Key(context.Background(), "k1"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewRemoteKeys(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  RemoteKeysConfig
	}{
		{"no URL", RemoteKeysConfig{}},
		{"relative URL", RemoteKeysConfig{URL: "/jwks"}},
		{"MinTTL over MaxTTL", RemoteKeysConfig{URL: "https://idp.example/jwks", MinTTL: time.Hour, MaxTTL: time.Minute}},
		{"MaxStale under MinTTL", RemoteKeysConfig{URL: "https://idp.example/jwks", MaxStale: time.Minute}},
		{"negative MinRefetch", RemoteKeysConfig{URL: "https://idp.example/jwks", MinRefetch: -time.Second}},
	} {
		if _, err := NewRemoteKeys(tt.cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func TestMaxAge(t *testing.T) {
	for _, tt := range []struct {
		fields []string
		age    time.Duration
		ok     bool
	}{
		{nil, 0, false},
		{[]string{"public, max-age=60"}, time.Minute, true},
		{[]string{"public", "MAX-AGE=60"}, time.Minute, true},
		{[]string{"max-age=60, max-age=3600"}, time.Minute, true},
		{[]string{"max-age=60", "no-store"}, 0, true},
		{[]string{"s-maxage=60"}, 0, false},
		{[]string{"max-age=1e3"}, 0, false},
	} {
		h := http.Header{"Cache-Control": tt.fields}
		if age, ok := maxAge(h); age != tt.age || ok != tt.ok {
			t.Errorf("%q: %v %v, want %v %v", tt.fields, age, ok, tt.age, tt.ok)
		}
	}
}

// TestDiscoverIssuer: an issuer's metadata gives its keys and, with
// client credentials and an introspection_endpoint, an introspection
// function; a server offering neither, or metadata of another issuer, is
// refused.
func TestDiscoverIssuer(t *testing.T) {
	k1 := newECKey(t)
	var srv *httptest.Server
	md := map[string]*ServerMetadata{}
	var introspected atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-authorization-server/{tenant}", func(w http.ResponseWriter, r *http.Request) {
		d, ok := md[r.PathValue("tenant")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d)
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(marshalKeySet(t, []servedKey{{KID: "k1", Key: k1.Public()}}))
	})
	mux.HandleFunc("/broken-jwks", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		introspected.Add(1)
		if r.PostFormValue("client_assertion") != "assertion-for-"+srv.URL+"/keycloak" || r.PostFormValue("token") != "opaque" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":true,"sub":"bob","client_id":"c","iss":"` + srv.URL + `/keycloak"}`))
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	md["keycloak"] = &ServerMetadata{Issuer: srv.URL + "/keycloak", TokenEndpoint: srv.URL + "/token", JWKSURI: srv.URL + "/jwks",
		IntrospectionEndpoint: srv.URL + "/introspect"}
	md["keys-only"] = &ServerMetadata{Issuer: srv.URL + "/keys-only", TokenEndpoint: srv.URL + "/token", JWKSURI: srv.URL + "/jwks"}
	md["nothing"] = &ServerMetadata{Issuer: srv.URL + "/nothing", TokenEndpoint: srv.URL + "/token", IntrospectionEndpoint: srv.URL + "/introspect"}
	md["impostor"] = &ServerMetadata{Issuer: "https://honest.example", TokenEndpoint: srv.URL + "/token", JWKSURI: srv.URL + "/jwks"}
	md["broken"] = &ServerMetadata{Issuer: srv.URL + "/broken", TokenEndpoint: srv.URL + "/token", JWKSURI: srv.URL + "/broken-jwks"}

	f := loopbackFetcher()
	ctx := t.Context()
	assertion := func(_ context.Context, aud string) (string, error) { return "assertion-for-" + aud, nil }

	di, err := DiscoverIssuer(ctx, IssuerConfig{Issuer: srv.URL + "/keycloak", Fetcher: f, ClientID: "c", Assertion: assertion})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := di.Keys.Key(ctx, "k1"); err != nil || !k1.PublicKey.Equal(got) {
		t.Fatalf("keys: %v", err)
	}
	if di.Introspect == nil {
		t.Fatal("no introspection with client credentials")
	}
	if ir, err := di.Introspect(ctx, "opaque"); err != nil || !ir.Active || ir.Issuer != srv.URL+"/keycloak" {
		t.Fatalf("introspection: %+v %v", ir, err)
	}

	di, err = DiscoverIssuer(ctx, IssuerConfig{Issuer: srv.URL + "/keycloak", Fetcher: f})
	if err != nil || di.Introspect != nil || di.Keys == nil {
		t.Fatalf("without client credentials: %+v %v", di, err)
	}
	if di, err := DiscoverIssuer(ctx, IssuerConfig{Issuer: srv.URL + "/keys-only", Fetcher: f, ClientID: "c", Assertion: assertion}); err != nil || di.Introspect != nil {
		t.Fatalf("keys only: %+v %v", di, err)
	}
	for _, tt := range []struct {
		tenant string
		want   error
	}{
		{"nothing", ErrMetadata},
		{"impostor", ErrMetadata},
		{"broken", ErrKeysUnavailable},
	} {
		if _, err := DiscoverIssuer(ctx, IssuerConfig{Issuer: srv.URL + "/" + tt.tenant, Fetcher: f}); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.tenant, err, tt.want)
		}
	}
	if n := introspected.Load(); n != 1 {
		t.Errorf("%d introspection requests, want 1", n)
	}
}

func TestSameScheme(t *testing.T) {
	for _, tt := range []struct {
		endpoint, issuer string
		ok               bool
	}{
		{"https://idp.example/introspect", "https://idp.example", true},
		{"https://other.example/introspect", "https://idp.example/realms/x", true},
		{"http://idp.example/introspect", "https://idp.example", false},
		{"/introspect", "https://idp.example", false},
		{"https://user@idp.example/introspect", "https://idp.example", false},
	} {
		if err := sameScheme(tt.endpoint, tt.issuer); (err == nil) != tt.ok {
			t.Errorf("%s for %s: %v, want ok %v", tt.endpoint, tt.issuer, err, tt.ok)
		}
	}
}
