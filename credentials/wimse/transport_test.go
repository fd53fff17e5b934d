package wimse_test

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/wimse"
)

// echo answers with the WIMSE peer's identity and mode, and the body.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p, ok := wimse.PeerFromContext(r.Context())
	out := map[string]string{"body": string(body)}
	if ok {
		out["peer"] = p.Identity().String()
		out["mode"] = string(p.Mode)
	}
	_ = json.NewEncoder(w).Encode(out)
}

// recorder is a RoundTripper that keeps a copy of each request it sends.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	last *http.Request
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.last = r.Clone(r.Context())
	rt.mu.Unlock()
	return rt.base.RoundTrip(r)
}

// server starts a test server behind a Verifier whose BaseURL is the
// server's URL. The server clock is real time: proofs are minted now.
func server(t *testing.T, mod func(*wimse.Config)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := wimse.Config{TrustDomains: authorities(t), BaseURL: srv.URL}
	if mod != nil {
		mod(&cfg)
	}
	v, err := wimse.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = v.Middleware(http.HandlerFunc(echo))
	return srv
}

// liveWIT is a WIT valid around the real current time.
func liveWIT(tb testing.TB) string {
	return mintWIT(tb, func(c map[string]any) {
		c["iat"] = time.Now().Add(-time.Minute).Unix()
		c["exp"] = time.Now().Add(time.Hour).Unix()
	})
}

func staticCredential(wit string, key crypto.Signer) wimse.CredentialFunc {
	return func(context.Context) (string, crypto.Signer, error) { return wit, key, nil }
}

type reply struct {
	status  int
	body    map[string]string
	problem map[string]any
}

func do(t *testing.T, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	defer resp.Body.Close()
	out := reply{status: resp.StatusCode}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		_ = json.Unmarshal(raw, &out.body)
	} else {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("error content type %q", ct)
		}
		_ = json.Unmarshal(raw, &out.problem)
	}
	return out
}

func TestTransportEndToEnd(t *testing.T) {
	testKeys(t)
	for _, mode := range []wimse.Mode{wimse.ModeWPT, wimse.ModeHTTPSig} {
		t.Run(string(mode), func(t *testing.T) {
			srv := server(t, func(c *wimse.Config) { c.OtherTokenHeaders = []string{"X-Agent-Grant"} })
			rec := &recorder{base: srv.Client().Transport}
			tr, err := wimse.NewTransport(wimse.TransportConfig{
				Base:              rec,
				Credential:        staticCredential(liveWIT(t), workloadKey),
				Mode:              mode,
				OtherTokenHeaders: []string{"X-Agent-Grant"},
			})
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: tr}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/tools/call?x=1", strings.NewReader(testBody))
			req.Header.Set("Authorization", "DPoP "+testAccessToken)
			req.Header.Set(wimse.HeaderTxnToken, testTxnToken)
			req.Header.Set("X-Agent-Grant", testOtherToken)
			req.Header.Set("Content-Type", "application/json")
			got := do(t, client, req)
			if got.status != http.StatusOK || got.body["peer"] != testSubject || got.body["mode"] != string(mode) || got.body["body"] != testBody {
				t.Fatalf("reply %+v", got)
			}
			if req.Header.Get(wimse.HeaderWIT) != "" || req.Header.Get(wimse.HeaderWPT) != "" || req.Header.Get(wimse.HeaderSignature) != "" {
				t.Errorf("the caller's request was modified")
			}

			// Resending exactly what went on the wire is a replay.
			replay := rec.last.Clone(context.Background())
			replay.RequestURI = ""
			replay.Body = io.NopCloser(strings.NewReader(testBody))
			got = do(t, srv.Client(), replay)
			if got.status != http.StatusBadRequest || got.problem["detail"] != "proof replayed" {
				t.Fatalf("replay: %+v", got)
			}

			// Another access token under the same proof is refused.
			swapped := rec.last.Clone(context.Background())
			swapped.RequestURI = ""
			swapped.Body = io.NopCloser(strings.NewReader(testBody))
			swapped.Header.Set("Authorization", "DPoP someone-elses-token")
			got = do(t, srv.Client(), swapped)
			if got.status != http.StatusBadRequest {
				t.Fatalf("swapped token: %+v", got)
			}
		})
	}
}

func TestMiddlewareWithoutWIT(t *testing.T) {
	testKeys(t)
	t.Run("passes through as no WIMSE peer", func(t *testing.T) {
		srv := server(t, nil)
		got := do(t, srv.Client(), mustRequest(t, http.MethodGet, srv.URL+"/x"))
		if got.status != http.StatusOK || got.body["peer"] != "" {
			t.Fatalf("reply %+v", got)
		}
	})
	t.Run("refused when required", func(t *testing.T) {
		srv := server(t, func(c *wimse.Config) { c.Require = true })
		got := do(t, srv.Client(), mustRequest(t, http.MethodGet, srv.URL+"/x"))
		if got.status != http.StatusBadRequest || got.problem["title"] != "workload identity required" {
			t.Fatalf("reply %+v", got)
		}
	})
	t.Run("custom error handler", func(t *testing.T) {
		var seen error
		srv := server(t, func(c *wimse.Config) {
			c.Require = true
			c.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
				seen = err
				w.WriteHeader(http.StatusTeapot)
			}
		})
		resp, err := srv.Client().Do(mustRequest(t, http.MethodGet, srv.URL+"/x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot || !errors.Is(seen, wimse.ErrNoWIT) {
			t.Fatalf("status %d, err %v", resp.StatusCode, seen)
		}
	})
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestVerifyRequestShape(t *testing.T) {
	testKeys(t)
	wit := mintWIT(t, nil)
	wpt, err := wimse.MintWPT(context.Background(), workloadKey, wit, testTarget, mintOpts())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers map[string][]string
		want    []error
		ok      bool
	}{
		{"no WIT", nil, []error{wimse.ErrNoWIT}, false},
		{"WPT without WIT", map[string][]string{wimse.HeaderWPT: {wpt}}, []error{wimse.ErrInvalidProof}, false},
		{"two WITs", map[string][]string{wimse.HeaderWIT: {wit, wit}, wimse.HeaderWPT: {wpt}}, []error{wimse.ErrInvalidWIT}, false},
		{"WIT as a bearer token, without proof", map[string][]string{wimse.HeaderWIT: {wit}}, []error{wimse.ErrInvalidProof}, false},
		{"two WPTs", map[string][]string{wimse.HeaderWIT: {wit}, wimse.HeaderWPT: {wpt, wpt}}, []error{wimse.ErrInvalidProof}, false},
		{"invalid WIT", map[string][]string{wimse.HeaderWIT: {"x.y.z"}, wimse.HeaderWPT: {wpt}}, []error{wimse.ErrInvalidWIT}, false},
		{"two Authorization headers", map[string][]string{wimse.HeaderWIT: {wit}, wimse.HeaderWPT: {wpt}, "Authorization": {"Bearer a", "Bearer b"}}, []error{wimse.ErrInvalidProof, wimse.ErrTokenBinding}, false},
		{"two Txn-Token headers", map[string][]string{wimse.HeaderWIT: {wit}, wimse.HeaderWPT: {wpt}, wimse.HeaderTxnToken: {"a", "b"}}, []error{wimse.ErrInvalidProof, wimse.ErrTokenBinding}, false},
		{"Bearer token without ath", map[string][]string{wimse.HeaderWIT: {wit}, wimse.HeaderWPT: {wpt}, "Authorization": {"Bearer " + testAccessToken}}, []error{wimse.ErrTokenBinding}, false},
		{"Basic authorization is not a bound token", map[string][]string{wimse.HeaderWIT: {wit}, wimse.HeaderWPT: {wpt}, "Authorization": {"Basic dXNlcjpwYXNz"}}, nil, true},
		{"valid", map[string][]string{wimse.HeaderWIT: {wit}, wimse.HeaderWPT: {wpt}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The Host header is an attacker's; the audience comes from
			// the configured BaseURL only.
			r := httptest.NewRequest(http.MethodGet, "http://evil.example/tools/call?q=1", nil)
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			p, err := newVerifier(t, nil).Verify(r)
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.Mode != wimse.ModeWPT || p.WPT == nil || p.Audience != testTarget || p.Identity() != credentials.MustParseIdentity(testSubject) {
					t.Errorf("peer %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted: %+v", p)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
		})
	}
}

func TestVerifierAudience(t *testing.T) {
	tests := []struct {
		base, target, want string
	}{
		{"https://api.example.org", "/tools/call?q=1", "https://api.example.org/tools/call"},
		{"https://API.example.org:443/", "/", "https://api.example.org/"},
		{"https://gw.example.org/prefix", "/mcp/notes", "https://gw.example.org/prefix/mcp/notes"},
		{"http://127.0.0.1:8080", "/a%2Fb", "http://127.0.0.1:8080/a%2Fb"},
	}
	for _, tt := range tests {
		v := newVerifier(t, func(c *wimse.Config) { c.BaseURL = tt.base })
		r := httptest.NewRequest(http.MethodGet, tt.target, nil)
		r.Host = "evil.example"
		r.Header.Set("X-Forwarded-Host", "evil.example")
		if got := v.Audience(r); got != tt.want {
			t.Errorf("Audience(%s + %s) = %s, want %s", tt.base, tt.target, got, tt.want)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	testKeys(t)
	wit := liveWIT(t)
	tests := []struct {
		name string
		cfg  wimse.TransportConfig
		req  func() *http.Request
		want error
	}{
		{
			name: "key other than the WIT's",
			cfg:  wimse.TransportConfig{Credential: staticCredential(wit, otherKey)},
			want: wimse.ErrConfig,
		},
		{
			name: "credential source fails",
			cfg: wimse.TransportConfig{Credential: func(context.Context) (string, crypto.Signer, error) {
				return "", nil, errors.New("workload API down")
			}},
		},
		{
			name: "two Txn-Token headers",
			cfg:  wimse.TransportConfig{Credential: staticCredential(wit, workloadKey)},
			req: func() *http.Request {
				r, _ := http.NewRequest(http.MethodGet, testTarget, nil)
				r.Header.Add(wimse.HeaderTxnToken, "a")
				r.Header.Add(wimse.HeaderTxnToken, "b")
				return r
			},
			want: wimse.ErrConfig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			tt.cfg.Base = roundTripFunc(func(*http.Request) (*http.Response, error) {
				called = true
				return nil, errors.New("unreachable")
			})
			tr, err := wimse.NewTransport(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			req := mustRequest(t, http.MethodGet, testTarget)
			if tt.req != nil {
				req = tt.req()
			}
			body := &closeTracker{Reader: strings.NewReader("x")}
			req.Body = body
			_, err = tr.RoundTrip(req)
			if err == nil || called {
				t.Fatalf("RoundTrip: err %v, base called %v", err, called)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !body.closed {
				t.Errorf("request body not closed")
			}
		})
	}
	for _, cfg := range []wimse.TransportConfig{
		{},
		{Credential: staticCredential(wit, workloadKey), Mode: "bearer"},
		{Credential: staticCredential(wit, workloadKey), Lifetime: time.Hour},
		{Credential: staticCredential(wit, workloadKey), OtherTokenHeaders: []string{"Txn-Token"}},
	} {
		if _, err := wimse.NewTransport(cfg); !errors.Is(err, wimse.ErrConfig) {
			t.Errorf("NewTransport(%+v): err = %v", cfg, err)
		}
	}
}

func TestTransportKeyRotation(t *testing.T) {
	testKeys(t)
	srv := server(t, nil)
	var mu sync.Mutex
	wit, key := liveWIT(t), crypto.Signer(workloadKey)
	tr, err := wimse.NewTransport(wimse.TransportConfig{
		Base: srv.Client().Transport,
		Credential: func(context.Context) (string, crypto.Signer, error) {
			mu.Lock()
			defer mu.Unlock()
			return wit, key, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	if got := do(t, client, mustRequest(t, http.MethodGet, srv.URL+"/a")); got.body["peer"] != testSubject {
		t.Fatalf("first: %+v", got)
	}
	// The workload's credential rotates to a new key and WIT.
	mu.Lock()
	wit, key = mintWIT(t, func(c map[string]any) {
		c["sub"] = "spiffe://example.org/agent/other"
		c["cnf"] = cnf(t, otherKey.Public(), jose.ES256)
		c["exp"] = time.Now().Add(time.Hour).Unix()
	}), otherKey
	mu.Unlock()
	if got := do(t, client, mustRequest(t, http.MethodGet, srv.URL+"/b")); got.body["peer"] != "spiffe://example.org/agent/other" {
		t.Fatalf("after rotation: %+v", got)
	}
	// A key that does not match the cached WIT is refused.
	mu.Lock()
	key = workloadKey
	mu.Unlock()
	if _, err := client.Do(mustRequest(t, http.MethodGet, srv.URL+"/c")); !errors.Is(err, wimse.ErrConfig) {
		t.Fatalf("mismatched key: err = %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestWriteError(t *testing.T) {
	tests := []struct {
		err    error
		status int
		title  string
		detail string
	}{
		{wimse.ErrNoWIT, 400, "workload identity required", "no Workload-Identity-Token header"},
		{errors.Join(wimse.ErrInvalidProof, wimse.ErrReplayed), 400, "invalid proof of possession", "proof replayed"},
		{errors.Join(wimse.ErrInvalidProof, wimse.ErrWrongAudience), 400, "invalid proof of possession", "proof made for another audience"},
		{errors.Join(wimse.ErrInvalidWIT, wimse.ErrExpired), 400, "invalid workload identity token", "expired"},
		{errors.Join(wimse.ErrInvalidWIT, credentials.ErrUntrustedDomain), 400, "invalid workload identity token", "untrusted trust domain"},
		{errors.Join(wimse.ErrInvalidProof, wimse.ErrUnsupported), 501, "invalid proof of possession", "signed response not supported"},
		{errors.Join(wimse.ErrInvalidProof, wimse.ErrBodyTooLarge), 413, "invalid proof of possession", "body too large to verify"},
		{wimse.ErrReplayCacheFull, 503, "Service Unavailable", ""},
		{errors.New("database on fire at 10.0.0.7"), 500, "Internal Server Error", ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		wimse.WriteError(w, tt.err)
		var p map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		detail, _ := p["detail"].(string)
		if w.Code != tt.status || p["title"] != tt.title || detail != tt.detail || p["status"] != float64(tt.status) {
			t.Errorf("WriteError(%v) = %d %v", tt.err, w.Code, p)
		}
		if strings.Contains(w.Body.String(), "10.0.0.7") {
			t.Errorf("internal cause leaked: %s", w.Body.String())
		}
	}
}

func TestVerifyNeedsBaseURL(t *testing.T) {
	testKeys(t)
	v := newVerifier(t, func(c *wimse.Config) { c.BaseURL = "" })
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	if _, err := v.Verify(r); !errors.Is(err, wimse.ErrNoWIT) {
		t.Fatalf("no WIT: err = %v, want ErrNoWIT", err)
	}
	r.Header.Set(wimse.HeaderWIT, mintWIT(t, nil))
	if _, err := v.Verify(r); !errors.Is(err, wimse.ErrConfig) {
		t.Fatalf("with WIT: err = %v, want ErrConfig", err)
	}
	if got := v.Audience(r); got != "" {
		t.Errorf("Audience = %q without BaseURL", got)
	}
}
