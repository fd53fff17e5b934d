package login_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/authserver/astest"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/login"
)

const (
	testClient   = "test-cli"
	testUser     = "alice"
	testPassword = "alice-test-password"
)

var testUsers = sync.OnceValues(func() (*userauth.Directory, error) {
	h, err := userauth.HashPassword(testPassword)
	if err != nil {
		return nil, err
	}
	return userauth.NewDirectory([]userauth.User{{Name: testUser, DisplayName: "Alice Example", PasswordHash: h}})
})

// testAS is the embedded authorization server on a loopback listener,
// with a public client like the host's built-in one and a task resource.
type testAS struct {
	*authserver.Server
	issuer   string
	resource string
}

func newTestAS(t *testing.T) *testAS {
	t.Helper()
	users, err := testUsers()
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = http.NotFoundHandler()
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hh := h
		mu.Unlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	res := srv.URL + "/tasks"
	s, err := authserver.New(t.Context(), authserver.Config{
		Issuer: srv.URL, Store: authserver.NewMemoryStore(nil), Users: users,
		Clients: []authserver.StaticClient{{ID: testClient, AuthMethod: oauth.AuthNone,
			RedirectURIs: []string{"http://127.0.0.1/callback"},
			GrantTypes:   []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken},
			Scopes:       []string{"openid", "profile", "offline_access", "tasks:run"}}},
		Resources: []authserver.Resource{{URI: res, Scopes: []string{"tasks:run"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	h = s.Handler()
	mu.Unlock()
	return &testAS{Server: s, issuer: srv.URL, resource: res}
}

// browserFor returns an OpenBrowser that signs in as alice with decision
// in the background, as a person would, and records the URLs it opened.
func browserFor(t *testing.T, decision string, opened *[]string) func(string) error {
	return func(authURL string) error {
		*opened = append(*opened, authURL)
		u, err := url.Parse(authURL)
		if err != nil {
			return err
		}
		redirect := u.Query().Get("redirect_uri")
		go func() {
			b := astest.NewBrowser(redirect, testUser, testPassword, decision)
			back, err := b.Authorize(context.Background(), authURL)
			if err != nil {
				t.Errorf("browser: %v", err)
				return
			}
			resp, err := http.Get(back.String())
			if err != nil {
				t.Errorf("redirect to the CLI: %v", err)
				return
			}
			resp.Body.Close()
		}()
		return nil
	}
}

func (as *testAS) config(open func(string) error) login.Config {
	return login.Config{Issuer: as.issuer, ClientID: testClient, Scopes: []string{"openid", "profile", "offline_access", "tasks:run"},
		Resource: as.resource, OpenBrowser: open, Timeout: 30 * time.Second}
}

func TestLoginRefreshRotateRevoke(t *testing.T) {
	ctx := t.Context()
	as := newTestAS(t)
	var opened []string
	var out strings.Builder
	cfg := as.config(browserFor(t, "allow", &opened))
	cfg.Out = &out
	c, err := login.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(ctx)
	if err != nil {
		t.Fatalf("Login: %v\n%s", err, out.String())
	}

	// The authorization request: PKCE S256, the resource, a state, and a
	// loopback redirect URI on the port the CLI listened on.
	if len(opened) != 1 || !strings.Contains(out.String(), opened[0]) {
		t.Fatalf("opened %q; out:\n%s", opened, out.String())
	}
	q := mustQuery(t, opened[0])
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Hostname() != "127.0.0.1" || redirect.Port() == "" || redirect.Path != login.CallbackPath {
		t.Errorf("redirect_uri %q", q.Get("redirect_uri"))
	}
	if q.Get("code_challenge_method") != oauth.PKCES256 || q.Get("code_challenge") == "" || q.Get("resource") != as.resource ||
		q.Get("state") == "" || q.Get("client_id") != testClient {
		t.Errorf("authorization request %v", q)
	}

	// The tokens: an access token for the resource as alice, a refresh
	// token, an ID token naming alice.
	claims, err := as.VerifyAccessToken(ctx, sess.AccessToken, as.resource)
	if err != nil {
		t.Fatalf("the access token is not one for %s: %v", as.resource, err)
	}
	if claims.Subject != testUser || claims.ClientID != testClient || !strings.Contains(claims.Scope, "tasks:run") {
		t.Errorf("access token claims %+v", claims)
	}
	if sess.RefreshToken == "" || sess.IDToken == "" || sess.Issuer != as.issuer || sess.ClientID != testClient ||
		sess.Resource != as.resource || sess.RevocationEndpoint == "" || sess.Expiry.IsZero() {
		t.Errorf("session %+v", sess)
	}
	who, err := sess.ClaimsInsecure()
	if err != nil || who.Subject != testUser || who.Issuer != as.issuer || who.Name != "Alice Example" || who.From != "ID token" {
		t.Errorf("ClaimsInsecure = %+v, %v", who, err)
	}

	store := login.NewStore(filepath.Join(t.TempDir(), "agenthost"))
	if err := store.Save(sess); err != nil {
		t.Fatal(err)
	}
	checkMode(t, store.Dir(), 0o700)
	checkMode(t, store.Path(as.issuer), 0o600)

	// A valid token is returned as it is.
	ts := c.TokenSource(ctx, sess, store)
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != sess.AccessToken {
		t.Fatalf("Token while valid: %v", err)
	}

	// An hour later (on the CLI's clock) the token is refreshed, the
	// rotated refresh token is saved, and the new access token is still
	// for the resource.
	later := cfg
	later.Now = func() time.Time { return time.Now().Add(time.Hour) }
	cl, err := login.New(later)
	if err != nil {
		t.Fatal(err)
	}
	first := *sess
	loaded, err := store.Load(as.issuer)
	if err != nil {
		t.Fatal(err)
	}
	tok, err = cl.TokenSource(ctx, loaded, store).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok.AccessToken == first.AccessToken {
		t.Fatal("the access token was not refreshed")
	}
	if _, err := as.VerifyAccessToken(ctx, tok.AccessToken, as.resource); err != nil {
		t.Fatalf("the refreshed token is not one for %s: %v", as.resource, err)
	}
	kept, err := store.Load(as.issuer)
	if err != nil {
		t.Fatal(err)
	}
	if kept.RefreshToken == first.RefreshToken || kept.AccessToken != tok.AccessToken {
		t.Fatal("the rotated refresh token was not saved")
	}
	if kept.IDToken == "" {
		t.Error("the ID token was lost on refresh")
	}
	// The saved one works again; then the spent one is refused, as
	// ErrExpired (and the server revokes the whole grant for its reuse).
	if _, err := cl.TokenSource(ctx, kept, store).Token(); err != nil {
		t.Fatalf("refresh with the saved token: %v", err)
	}
	if _, err := cl.TokenSource(ctx, &first, nil).Token(); !errors.Is(err, login.ErrExpired) {
		t.Fatalf("refresh with the spent token: %v, want ErrExpired", err)
	}
}

func TestLogoutRevokes(t *testing.T) {
	ctx := t.Context()
	as := newTestAS(t)
	var opened []string
	c, err := login.New(as.config(browserFor(t, "allow", &opened)))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, sess); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	// Revoking the refresh token revokes the grant: its access token too.
	if _, err := as.VerifyAccessToken(ctx, sess.AccessToken, as.resource); err == nil {
		t.Error("the access token is still accepted after the refresh token was revoked")
	}
	sess.Expiry = time.Now().Add(-time.Minute)
	if _, err := c.TokenSource(ctx, sess, nil).Token(); !errors.Is(err, login.ErrExpired) {
		t.Fatalf("refresh after revocation: %v, want ErrExpired", err)
	}
	sess.RevocationEndpoint = ""
	if err := c.Revoke(ctx, sess); !errors.Is(err, login.ErrNoRevocation) {
		t.Fatalf("Revoke without an endpoint: %v", err)
	}
}

func TestLoginFailures(t *testing.T) {
	as := newTestAS(t)
	tests := []struct {
		name    string
		open    func(t *testing.T, opened *[]string) func(string) error
		timeout time.Duration
		want    string
		wantIs  any
	}{
		{name: "the user declines", open: func(t *testing.T, opened *[]string) func(string) error {
			return browserFor(t, "deny", opened)
		}, want: "the sign-in was declined (access_denied)", wantIs: new(*login.AuthorizationError)},
		{name: "another state", open: func(t *testing.T, _ *[]string) func(string) error {
			return func(authURL string) error {
				q := mustQuery(t, authURL)
				go func() {
					resp, err := http.Get(q.Get("redirect_uri") + "?code=forged&state=not-the-one")
					if err == nil {
						resp.Body.Close()
					}
				}()
				return nil
			}
		}, want: "state does not match"},
		{name: "no browser, nobody signs in", open: func(*testing.T, *[]string) func(string) error {
			return func(string) error { return errors.New("no display") }
		}, timeout: 300 * time.Millisecond, want: "no sign-in arrived within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opened []string
			var out strings.Builder
			cfg := as.config(tt.open(t, &opened))
			cfg.Out = &out
			if tt.timeout != 0 {
				cfg.Timeout = tt.timeout
			}
			c, err := login.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Login(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Login: %v, want an error with %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.As(err, tt.wantIs) {
				t.Fatalf("Login: %T, want %T", err, tt.wantIs)
			}
			if !strings.Contains(out.String(), "/oauth2/authorize?") {
				t.Errorf("the URL was not printed:\n%s", out.String())
			}
		})
	}
	t.Run("browser failure is reported", func(t *testing.T) {
		var out strings.Builder
		cfg := as.config(func(string) error { return errors.New("no display") })
		cfg.Out, cfg.Timeout = &out, 100*time.Millisecond
		c, _ := login.New(cfg)
		_, _ = c.Login(t.Context())
		if !strings.Contains(out.String(), "could not open a browser: no display") {
			t.Errorf("out:\n%s", out.String())
		}
	})
}

func TestNewChecksIssuer(t *testing.T) {
	for _, iss := range []string{"http://as.example", "ftp://127.0.0.1", "https://as.example?x=1", "not a url", ""} {
		if _, err := login.New(login.Config{Issuer: iss, ClientID: "c"}); err == nil {
			t.Errorf("New accepted the issuer %q", iss)
		}
	}
	for _, iss := range []string{"https://as.example", "http://127.0.0.1:8420", "http://localhost:1", "http://[::1]:8"} {
		if _, err := login.New(login.Config{Issuer: iss, ClientID: "c"}); err != nil {
			t.Errorf("New refused the issuer %q: %v", iss, err)
		}
	}
	if _, err := login.New(login.Config{Issuer: "https://as.example"}); err == nil {
		t.Error("New accepted a config without a client_id")
	}
}

func TestStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agenthost")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	store := login.NewStore(dir)
	const iss = "https://as.example"
	if _, err := store.Load(iss); !errors.Is(err, login.ErrNotSignedIn) {
		t.Fatalf("Load of nothing: %v", err)
	}
	sess := &login.Session{Issuer: iss, ClientID: "c", AccessToken: "at", RefreshToken: "rt", TokenEndpoint: iss + "/token"}
	if err := store.Save(sess); err != nil {
		t.Fatal(err)
	}
	// An existing directory others could enter is made owner-only.
	checkMode(t, dir, 0o700)
	checkMode(t, store.Path(iss), 0o600)
	if filepath.Dir(store.Path(iss)) != dir || store.Path(iss) == store.Path(iss+"/") {
		t.Errorf("Path(%q) = %q", iss, store.Path(iss))
	}
	got, err := store.Load(iss)
	if err != nil || *got != *sess {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	// Another issuer's file under this issuer's name is refused.
	if err := os.Rename(store.Path(iss), store.Path("https://other.example")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load("https://other.example"); err == nil || !strings.Contains(err.Error(), "holds a sign-in to") {
		t.Fatalf("Load of another issuer's session: %v", err)
	}
	if err := store.Save(sess); err != nil {
		t.Fatal(err)
	}
	// A file others may read is refused.
	if err := os.Chmod(store.Path(iss), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(iss); err == nil || !strings.Contains(err.Error(), "other users may access it") {
		t.Fatalf("Load of a 0644 file: %v", err)
	}
	if ok, err := store.Delete(iss); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if ok, err := store.Delete(iss); ok || err != nil {
		t.Fatalf("second Delete = %v, %v", ok, err)
	}
	if _, err := store.Load(iss); !errors.Is(err, login.ErrNotSignedIn) {
		t.Fatalf("Load after Delete: %v", err)
	}
	// A symbolic link is not followed.
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.WriteFile(target, []byte(`{"issuer":"`+iss+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, store.Path(iss)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(iss); err == nil {
		t.Fatal("Load followed a symbolic link")
	}
}

func TestClaimsInsecureWithoutIDToken(t *testing.T) {
	// header {"alg":"none"} . payload . no signature: not verified, by design.
	s := &login.Session{AccessToken: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IiLCJpc3MiOiJodHRwczovL2FzLmV4YW1wbGUiLCJleHAiOjE3MDAwMDAwMDB9."}
	c, err := s.ClaimsInsecure()
	if err != nil || c.Subject != "bob" || c.Issuer != "https://as.example" || c.From != "access token" || c.ExpiresAt.Unix() != 1700000000 {
		t.Fatalf("ClaimsInsecure = %+v, %v", c, err)
	}
	if _, err := (&login.Session{AccessToken: "opaque"}).ClaimsInsecure(); err == nil {
		t.Fatal("an opaque token gave claims")
	}
}

func TestOpenBrowserUsesBROWSER(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "opened")
	script := filepath.Join(dir, "browser")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+out+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BROWSER", filepath.Join(dir, "missing")+":"+script)
	if err := login.OpenBrowser("http://127.0.0.1:1/x?y=z"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(out)
		if err == nil && string(b) == "http://127.0.0.1:1/x?y=z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser program did not get the URL: %q, %v", b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Setenv("BROWSER", filepath.Join(dir, "missing"))
	if err := login.OpenBrowser("http://127.0.0.1:1/"); err == nil {
		t.Fatal("OpenBrowser with a missing program succeeded")
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", path, got, want)
	}
}
