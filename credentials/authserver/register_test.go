package authserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
)

func TestDynamicRegistration(t *testing.T) {
	// The rate limit is tested on its own (TestRegistrationRateLimit).
	e := newTestEnv(t, func(c *Config) { c.AllowDynamicRegistration = true; c.RegistrationBurst = -1 })
	post := func(ctype, body string) (int, map[string]any) {
		resp, err := http.Post(e.issuer+PathRegister, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("not JSON: %q", raw)
		}
		return resp.StatusCode, out
	}
	status, out := post("application/json", `{"client_name":"MCP Inspector","redirect_uris":["http://127.0.0.1:6274/oauth/callback"]}`)
	if status != 201 || !strings.HasPrefix(out["client_id"].(string), "dyn-") || out["client_secret"] != nil ||
		out["token_endpoint_auth_method"] != "none" {
		t.Fatalf("register: %d %v", status, out)
	}
	c, err := e.srv.clients.lookup(e.ctx, out["client_id"].(string))
	if err != nil || !c.public() || c.RedirectURIs[0] != "http://127.0.0.1:6274/oauth/callback" {
		t.Fatalf("stored client %+v %v", c, err)
	}

	uris := func(n, length int) string {
		var list []string
		for i := range n {
			u := "https://app.example/cb" + strings.Repeat("x", i)
			list = append(list, `"`+u+strings.Repeat("a", max(0, length-len(u)))+`"`)
		}
		return `{"redirect_uris":[` + strings.Join(list, ",") + `]}`
	}
	if status, out := post("application/json", uris(5, 512)); status != 201 {
		t.Fatalf("five redirect URIs of 512 bytes: %d %v", status, out)
	}

	bad := []struct {
		name, ctype, body, code string
	}{
		{"form body", "application/x-www-form-urlencoded", "client_name=x", "invalid_client_metadata"},
		{"not JSON", "application/json", "{", "invalid_client_metadata"},
		{"array", "application/json", "[]", "invalid_client_metadata"},
		{"duplicate key", "application/json", `{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://b.example/cb"]}`, "invalid_client_metadata"},
		{"no redirect_uris", "application/json", `{"client_name":"x"}`, "invalid_redirect_uri"},
		{"fragment", "application/json", `{"redirect_uris":["https://a.example/cb#x"]}`, "invalid_redirect_uri"},
		{"http non-loopback", "application/json", `{"redirect_uris":["http://a.example/cb"]}`, "invalid_redirect_uri"},
		{"javascript", "application/json", `{"redirect_uris":["javascript:alert(1)"]}`, "invalid_redirect_uri"},
		{"loopback port out of range", "application/json", `{"redirect_uris":["http://127.0.0.1:99999/cb"]}`, "invalid_redirect_uri"},
		{"loopback port 0", "application/json", `{"redirect_uris":["http://[::1]:0/cb"]}`, "invalid_redirect_uri"},
		{"six redirect URIs", "application/json", uris(6, 0), "invalid_redirect_uri"},
		{"redirect URI over 512 bytes", "application/json", uris(1, 513), "invalid_redirect_uri"},
		{"secret method", "application/json", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`, "invalid_client_metadata"},
		{"client chooses its id", "application/json", `{"client_id":"admin","redirect_uris":["https://a.example/cb"]}`, "invalid_client_metadata"},
		{"client_credentials", "application/json", `{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		{"unknown scope", "application/json", `{"redirect_uris":["https://a.example/cb"],"scope":"admin"}`, "invalid_client_metadata"},
		{"redirect_uris wrong type", "application/json", `{"redirect_uris":"https://a.example/cb"}`, "invalid_client_metadata"},
		{"oversized", "application/json", `{"client_name":"` + strings.Repeat("a", 40<<10) + `"}`, "invalid_client_metadata"},
		{"over 16 KiB", "application/json", `{"redirect_uris":["https://a.example/cb"],"x":"` + strings.Repeat("a", 16<<10) + `"}`, "invalid_client_metadata"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := e.store.count(nsClients)
			status, out := post(tc.ctype, tc.body)
			if status != 400 || out["error"] != tc.code {
				t.Fatalf("got %d %v, want 400 %s", status, out, tc.code)
			}
			if n := e.store.count(nsClients); n != before {
				t.Fatalf("a refused registration stored a client (%d, was %d)", n, before)
			}
		})
	}
}

const registration = `{"client_name":"MCP client","redirect_uris":["http://127.0.0.1/cb"],` +
	`"grant_types":["authorization_code","refresh_token"]}`

// register posts registration to the server's handler as if from remote
// (the connection's address), with header.
func (e *testEnv) register(remote string, header http.Header) (int, map[string]any, http.Header) {
	e.t.Helper()
	return e.registerBody(remote, header, registration)
}

func (e *testEnv) registerBody(remote string, header http.Header, body string) (int, map[string]any, http.Header) {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, e.issuer+PathRegister, strings.NewReader(body))
	r.RemoteAddr = remote
	r.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, r)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		e.t.Fatalf("register: not JSON: %q", w.Body.Bytes())
	}
	return w.Code, out, w.Header()
}

// TestRegistrationRateLimit: registrations are a token bucket per client
// address (burst, then one per interval), refused with 429 and
// Retry-After; X-Forwarded-For counts only from a configured proxy.
func TestRegistrationRateLimit(t *testing.T) {
	type step struct {
		remote  string
		xff     string
		body    string // "" = a good registration
		advance time.Duration
		want    int    // status
		retry   string // Retry-After of a 429
	}
	repeat := func(n int, s step) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	concat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	const a, b = "192.0.2.10:40000", "198.51.100.7:40000"
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{"defaults: ten, then one a minute", nil, concat(
			repeat(DefaultRegistrationBurst, step{remote: a, want: 201}),
			[]step{
				{remote: a, want: 429, retry: "60"},
				{remote: a, advance: 30 * time.Second, want: 429, retry: "30"},
				{remote: b, want: 201}, // another address has its own bucket
				{remote: a, advance: 30 * time.Second, want: 201},
				{remote: a, want: 429, retry: "60"},
			})},
		{"X-Forwarded-For from an untrusted peer is ignored", func(c *Config) { c.RegistrationBurst = 2 }, []step{
			{remote: a, xff: "203.0.113.1", want: 201},
			{remote: a, xff: "203.0.113.2", want: 201},
			{remote: a, xff: "203.0.113.3", want: 429, retry: "60"},
			{remote: a, want: 429, retry: "60"},
		}},
		{"IPv6 addresses of one /64 share a bucket", func(c *Config) { c.RegistrationBurst = 2 }, []step{
			{remote: "[2001:db8:1:2::1]:1", want: 201},
			{remote: "[2001:db8:1:2:ffff::9]:1", want: 201},
			{remote: "[2001:db8:1:2::3]:1", want: 429, retry: "60"},
			{remote: "[2001:db8:1:3::1]:1", want: 201},
		}},
		{"behind a trusted proxy, the client is the right-most untrusted hop", func(c *Config) {
			c.RegistrationBurst = 1
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		}, []step{
			{remote: "10.1.1.1:5000", xff: "203.0.113.1", want: 201},
			{remote: "10.1.1.1:5000", xff: "203.0.113.2", want: 201},
			// A client cannot pick its address by writing the left part.
			{remote: "10.1.1.1:5000", xff: "203.0.113.9, 203.0.113.2", want: 429, retry: "60"},
			{remote: "10.1.1.1:5000", xff: "203.0.113.9, 203.0.113.3, 10.2.2.2", want: 201},
			// Garbage from beyond the proxies falls back to the proxy.
			{remote: "10.1.1.1:5000", xff: "not-an-address", want: 201},
			{remote: "10.1.1.1:5000", want: 429, retry: "60"},
			// The proxy setting does not make other peers' headers count.
			{remote: a, xff: "203.0.113.50", want: 201},
			{remote: a, xff: "203.0.113.51", want: 429, retry: "60"},
		}},
		{"refused requests use the bucket too", func(c *Config) { c.RegistrationBurst = 2 }, []step{
			{remote: a, body: `{"redirect_uris":["http://127.0.0.1:99999/cb"]}`, want: 400},
			{remote: a, body: `{`, want: 400},
			{remote: a, want: 429, retry: "60"},
		}},
		{"the limit can be turned off", func(c *Config) { c.RegistrationBurst = -1 },
			repeat(3*DefaultRegistrationBurst, step{remote: a, want: 201})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) {
				c.AllowDynamicRegistration = true
				if tt.cfg != nil {
					tt.cfg(c)
				}
			})
			for i, s := range tt.steps {
				e.clock.Advance(s.advance)
				h := http.Header{}
				if s.xff != "" {
					h.Set("X-Forwarded-For", s.xff)
				}
				body := s.body
				if body == "" {
					body = registration
				}
				status, out, hdr := e.registerBody(s.remote, h, body)
				if status != s.want {
					t.Fatalf("step %d (%s, %q): %d %v, want %d", i, s.remote, s.xff, status, out, s.want)
				}
				if status == http.StatusTooManyRequests &&
					(hdr.Get("Retry-After") != s.retry || out["error"] != oauth.CodeTemporarilyUnavailable) {
					t.Fatalf("step %d: 429 with Retry-After %q and %v, want Retry-After %q", i, hdr.Get("Retry-After"), out, s.retry)
				}
			}
		})
	}
}

// TestRegistrationCap: registration stops at MaxDynamicClients kept
// clients (503, Retry-After) and resumes as unused ones expire; clients
// that obtained a token are kept.
func TestRegistrationCap(t *testing.T) {
	e := newCodeEnv(t, func(c *Config) {
		c.AllowDynamicRegistration = true
		c.RegistrationBurst = -1
		c.MaxDynamicClients = 3
	})
	remote := "192.0.2.1:1234"
	var ids []string
	for range 3 {
		status, out, _ := e.register(remote, nil)
		if status != http.StatusCreated {
			t.Fatalf("register: %d %v", status, out)
		}
		ids = append(ids, out["client_id"].(string))
	}
	status, out, hdr := e.register(remote, nil)
	if status != http.StatusServiceUnavailable || out["error"] != oauth.CodeTemporarilyUnavailable || hdr.Get("Retry-After") != "3600" {
		t.Fatalf("registration over the cap: %d %v, Retry-After %q", status, out, hdr.Get("Retry-After"))
	}
	if n := e.store.count(nsClients); n != 3 {
		t.Fatalf("%d clients stored, want 3", n)
	}
	// One client is used; the other two expire, freeing two places.
	e.dynamicClientToken(t, ids[0])
	e.clock.Advance(DefaultUnusedClientTTL)
	for i := range 2 {
		if status, out, _ := e.register(remote, nil); status != http.StatusCreated {
			t.Fatalf("registration %d after expiry: %d %v", i, status, out)
		}
	}
	if status, _, _ := e.register(remote, nil); status != http.StatusServiceUnavailable {
		t.Fatalf("registration over the cap again: %d", status)
	}
}

// dynamicClientToken runs the code flow for the dynamic client id
// (registered with the callback of registration) and returns its tokens.
func (e *codeEnv) dynamicClientToken(t *testing.T, id string) map[string]any {
	t.Helper()
	verifier := newVerifier(t)
	q := e.authParams(verifier)
	q.Set("client_id", id)
	q.Set("redirect_uri", "http://127.0.0.1/cb")
	b := newBrowser(t)
	consent := e.signIn(b, q, "alice", alicePassword)
	got := e.decide(b, consent, "allow").redirect(t, "http://127.0.0.1/cb")
	status, tok := e.redeem(got.Get("code"), verifier, url.Values{"client_id": {id}, "redirect_uri": {"http://127.0.0.1/cb"}})
	if status != http.StatusOK {
		t.Fatalf("code redemption by %s: %d %v", id, status, tok)
	}
	return tok
}

// TestUnusedRegistrationsExpire: a dynamic client that obtains no token
// within UnusedClientTTL is gone; one that did stays.
func TestUnusedRegistrationsExpire(t *testing.T) {
	for _, tt := range []struct {
		name     string
		ttl      time.Duration // Config.UnusedClientTTL
		wait     time.Duration
		wantKept bool // the unused client is still there after wait
	}{
		{"default, before expiry", 0, DefaultUnusedClientTTL - time.Second, true},
		{"default, at expiry", 0, DefaultUnusedClientTTL, false},
		{"configured", time.Hour, time.Hour, false},
		{"never", -1, 90 * 24 * time.Hour, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newCodeEnv(t, func(c *Config) {
				c.AllowDynamicRegistration = true
				c.UnusedClientTTL = tt.ttl
				c.RefreshTokenTTL = 100 * 24 * time.Hour
			})
			_, used, _ := e.register("192.0.2.1:1", nil)
			_, unused, _ := e.register("192.0.2.1:1", nil)
			usedID, unusedID := used["client_id"].(string), unused["client_id"].(string)
			tok := e.dynamicClientToken(t, usedID)
			e.clock.Advance(tt.wait)

			_, err := e.srv.clients.lookup(e.ctx, unusedID)
			if kept := err == nil; kept != tt.wantKept {
				t.Errorf("unused client kept = %v (%v), want %v", kept, err, tt.wantKept)
			}
			if !tt.wantKept {
				// Unknown everywhere: at the authorization endpoint (an
				// error page, no redirect) and at the token endpoint.
				q := e.authParams(newVerifier(t))
				q.Set("client_id", unusedID)
				q.Set("redirect_uri", "http://127.0.0.1/cb")
				if page := newBrowser(t).do(http.MethodGet, e.authorizeURL(q), nil); page.status != http.StatusBadRequest {
					t.Errorf("authorize with an expired client: %d", page.status)
				}
				if status, body := e.redeem("x", newVerifier(t), url.Values{"client_id": {unusedID}}); status != http.StatusUnauthorized ||
					body["error"] != oauth.CodeInvalidClient {
					t.Errorf("token request of an expired client: %d %v", status, body)
				}
			}
			if _, err := e.srv.clients.lookup(e.ctx, usedID); err != nil {
				t.Fatalf("the client that obtained a token is gone: %v", err)
			}
			if status, body := e.refresh(usedID, tok["refresh_token"].(string)); status != http.StatusOK {
				t.Fatalf("refresh by the kept client: %d %v", status, body)
			}
		})
	}
}

// TestInitialAccessToken: with RegistrationTokenHash, registration needs
// the initial access token as a bearer token (RFC 7591 §3, RFC 6750).
func TestInitialAccessToken(t *testing.T) {
	const iat = "3q2-7w_initial-access-token-of-this-deployment"
	hash, err := userauth.HashPassword(iat)
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, func(c *Config) {
		c.AllowDynamicRegistration = true
		c.RegistrationBurst = -1
		c.RegistrationTokenHash = hash
	})
	realm := `Bearer realm="` + e.issuer + `"`
	tests := []struct {
		name       string
		auth       []string
		status     int
		code       string
		challenge  string
		registered bool
	}{
		{"no token", nil, 401, oauth.CodeInvalidToken, realm, false},
		{"wrong token", []string{"Bearer not-the-token"}, 401, oauth.CodeInvalidToken, realm + `, error="invalid_token"`, false},
		{"token with a suffix", []string{"Bearer " + iat + "x"}, 401, oauth.CodeInvalidToken, realm + `, error="invalid_token"`, false},
		{"huge token", []string{"Bearer " + strings.Repeat("a", 4096)}, 401, oauth.CodeInvalidToken, realm + `, error="invalid_token"`, false},
		{"basic credentials", []string{"Basic " + iat}, 401, oauth.CodeInvalidToken, realm, false},
		{"empty bearer", []string{"Bearer "}, 401, oauth.CodeInvalidToken, realm, false},
		{"two Authorization headers", []string{"Bearer " + iat, "Bearer " + iat}, 400, oauth.CodeInvalidRequest, realm + `, error="invalid_request"`, false},
		{"right token", []string{"Bearer " + iat}, 201, "", "", true},
		{"right token again", []string{"bearer " + iat}, 201, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.store.count(nsClients)
			status, out, hdr := e.register("192.0.2.1:1", http.Header{"Authorization": tt.auth})
			if status != tt.status || (tt.code != "" && out["error"] != tt.code) {
				t.Fatalf("got %d %v, want %d %s", status, out, tt.status, tt.code)
			}
			if got := hdr.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if registered := e.store.count(nsClients) > before; registered != tt.registered {
				t.Errorf("registered = %v, want %v", registered, tt.registered)
			}
		})
	}

	// A hash that is not one is refused at start, without quoting it.
	_, err = New(context.Background(), Config{Issuer: "https://as.example", Store: NewMemoryStore(nil),
		AllowDynamicRegistration: true, RegistrationTokenHash: iat})
	if err == nil || strings.Contains(err.Error(), iat) {
		t.Fatalf("New with a plaintext token as the hash: %v", err)
	}
}

// TestRegistrationCapNeedsACounter: a store that cannot count refuses a
// cap at start rather than ignoring it.
func TestRegistrationCapNeedsACounter(t *testing.T) {
	type plainStore struct{ Store }
	tests := []struct {
		name    string
		max     int
		wantErr bool
	}{
		{"default cap", 0, true},
		{"explicit cap", 5, true},
		{"no cap", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), Config{Issuer: "https://as.example", Store: plainStore{NewMemoryStore(nil)},
				AllowDynamicRegistration: true, MaxDynamicClients: tt.max})
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// TestRegistrationCapConcurrent: registrations racing for the last places
// never exceed the cap.
func TestRegistrationCapConcurrent(t *testing.T) {
	const capacity, racers = 5, 24
	e := newTestEnv(t, func(c *Config) {
		c.AllowDynamicRegistration = true
		c.RegistrationBurst = -1
		c.MaxDynamicClients = capacity
	})
	statuses := make(chan int, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest(http.MethodPost, e.issuer+PathRegister, strings.NewReader(registration))
			r.RemoteAddr = fmt.Sprintf("192.0.2.%d:1", i+1)
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(w, r)
			statuses <- w.Code
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusCreated] != capacity || counts[http.StatusServiceUnavailable] != racers-capacity {
		t.Fatalf("statuses %v, want %d created and %d refused", counts, capacity, racers-capacity)
	}
	if n := e.store.count(nsClients); n != capacity {
		t.Fatalf("%d clients stored, want %d", n, capacity)
	}
}
