package cli

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/agenthost/agenthost/credentials/oauth/login"
	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// TestMain keeps every test of the CLI away from the user's own sign-ins:
// the configuration directory is a temporary one.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agenthost-cli-config-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	os.Setenv("HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const alicePassword = "alice-cli-password"

// userBackend is runBackend that also records who a task is for.
type userBackend struct {
	*runBackend
	mu      sync.Mutex
	token   string
	subject string
	refuse  error
}

func (b *userBackend) RunTask(ctx context.Context, req localapi.TaskRequest, emit func(localapi.TaskEvent) error) error {
	b.mu.Lock()
	b.token, b.subject = req.AccessToken, req.Subject
	refuse := b.refuse
	b.mu.Unlock()
	if refuse != nil && req.AccessToken != "" {
		return refuse
	}
	return b.runBackend.RunTask(ctx, req, emit)
}

func (b *userBackend) user() (token, subject string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.token, b.subject
}

// startSignInHost starts an authorization server configured as a host
// configures its own (the built-in CLI client, the task resource, a user
// alice) and a fake host whose run info names it as the issuer; it returns
// the data directory, the server and the backend.
func startSignInHost(t *testing.T) (string, *authserver.Server, *userBackend) {
	t.Helper()
	hash, err := userauth.HashPassword(alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	users, err := userauth.NewDirectory([]userauth.User{{Name: "alice", DisplayName: "Alice Example", PasswordHash: hash}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var h http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hh := h
		mu.Unlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	as, err := authserver.New(t.Context(), authserver.Config{
		Issuer: srv.URL, Store: authserver.NewMemoryStore(nil), Users: users,
		Clients:   []authserver.StaticClient{host.CLIClient()},
		Resources: []authserver.Resource{{URI: host.TaskResource(srv.URL), Scopes: []string{host.ScopeTasksRun}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	h = as.Handler()
	mu.Unlock()

	b := &userBackend{runBackend: &runBackend{events: []localapi.TaskEvent{{Type: "final", Text: "done"}}}}
	dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local", Issuer: srv.URL})
	ls, err := localapi.Listen(filepath.Join(dir, localapi.SocketName), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ls.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return dir, as, b
}

// signInAs replaces the browser with one that signs in as alice and
// answers the consent page with decision.
func signInAs(t *testing.T, decision string) {
	t.Helper()
	old := openBrowser
	t.Cleanup(func() { openBrowser = old })
	openBrowser = func(authURL string) error {
		u, err := url.Parse(authURL)
		if err != nil {
			return err
		}
		go func() {
			b := astest.NewBrowser(u.Query().Get("redirect_uri"), "alice", alicePassword, decision)
			back, err := b.Authorize(context.Background(), authURL)
			if err != nil {
				t.Errorf("browser: %v", err)
				return
			}
			if resp, err := http.Get(back.String()); err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
}

func TestLoginWhoamiRunLogout(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	ctx := context.Background()
	dir, as, b := startSignInHost(t)
	iss := as.Issuer()
	resource := host.TaskResource(iss)

	// Nobody is signed in: whoami says so, run acts for nobody.
	code, _, stderr := runCLI(t, nil, nil, "whoami", "--data-dir", dir)
	if code != 1 || !strings.Contains(stderr, "not signed in to "+iss+": run agenthost --data-dir") {
		t.Fatalf("whoami before login: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil, nil, "run", "research", "hi", "--data-dir", dir); code != 0 {
		t.Fatalf("run before login: exit %d, %q", code, stderr)
	}
	if tok, sub := b.user(); tok != "" || sub != "" {
		t.Fatalf("run before login sent token %q subject %q", tok, sub)
	}

	// login: the browser signs in; the sign-in is kept owner-only.
	signInAs(t, "allow")
	code, stdout, stderr := runCLI(t, nil, nil, "login", "--data-dir", dir)
	if code != 0 || stdout != "signed in to "+iss+" as alice (Alice Example)\n" {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, iss+"/oauth2/authorize?") || !strings.Contains(stderr, "code_challenge_method=S256") ||
		!strings.Contains(stderr, "client_id="+host.CLIClientID) || !strings.Contains(stderr, "resource="+url.QueryEscape(resource)) {
		t.Errorf("login did not print the authorization URL: %q", stderr)
	}
	store, err := login.DefaultStore()
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{store.Dir(): 0o700, store.Path(iss): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v, %v; want mode %04o", path, fi, err, want)
		}
	}

	// Signing in again replaces the sign-in and revokes the one before.
	first, err := store.Load(iss)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, nil, "login", "--data-dir", dir); code != 0 {
		t.Fatalf("second login: exit %d, %q", code, stderr)
	}
	if _, err := as.VerifyAccessToken(ctx, first.AccessToken, resource); err == nil {
		t.Error("the replaced sign-in's access token is still accepted")
	}

	// whoami shows alice, the issuer, the client, the resource.
	code, stdout, stderr = runCLI(t, nil, nil, "whoami", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("whoami: exit %d, %q", code, stderr)
	}
	for _, want := range []string{"alice (Alice Example)\n", "subject   alice", "issuer    " + iss, "client    " + host.CLIClientID,
		"resource  " + resource, "tasks:run", "expires", "without verifying it"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("whoami output lacks %q:\n%s", want, stdout)
		}
	}

	// run presents alice's token for the task resource.
	if code, _, stderr := runCLI(t, nil, nil, "run", "research", "hi", "--data-dir", dir); code != 0 {
		t.Fatalf("run: exit %d, %q", code, stderr)
	}
	tok, sub := b.user()
	claims, err := as.VerifyAccessToken(ctx, tok, resource)
	if err != nil || claims.Subject != "alice" || sub != "" {
		t.Fatalf("run sent token %q (%+v, %v) and subject %q", tok, claims, err, sub)
	}

	// --for is the operator's override: no token.
	if code, _, stderr := runCLI(t, nil, nil, "run", "research", "hi", "--for", "bob", "--data-dir", dir); code != 0 {
		t.Fatalf("run --for: exit %d, %q", code, stderr)
	}
	if tok, sub := b.user(); tok != "" || sub != "bob" {
		t.Fatalf("run --for sent token %q subject %q", tok, sub)
	}

	// An expired access token is renewed; the rotated refresh token is
	// kept.
	sess, err := store.Load(iss)
	if err != nil {
		t.Fatal(err)
	}
	before := *sess
	sess.Expiry = time.Now().Add(-time.Minute)
	if err := store.Save(sess); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, nil, nil, "run", "research", "hi", "--data-dir", dir); code != 0 {
		t.Fatalf("run with an expired access token: exit %d, %q", code, stderr)
	}
	tok, _ = b.user()
	if tok == before.AccessToken {
		t.Fatal("run sent the expired access token")
	}
	if _, err := as.VerifyAccessToken(ctx, tok, resource); err != nil {
		t.Fatalf("the renewed token: %v", err)
	}
	after, err := store.Load(iss)
	if err != nil || after.RefreshToken == before.RefreshToken || after.AccessToken != tok {
		t.Fatalf("the renewed sign-in was not kept: %v", err)
	}

	// The host refuses the token: run says so and how to sign in again.
	b.mu.Lock()
	b.refuse = fmt.Errorf("%w: the access token is invalid: issued for another resource", localapi.ErrTokenRefused)
	b.mu.Unlock()
	code, _, stderr = runCLI(t, nil, nil, "run", "research", "hi", "--data-dir", dir)
	if code != 1 || !strings.Contains(stderr, "the host refused the sign-in: the access token is invalid: issued for another resource; sign in again with agenthost --data-dir") {
		t.Fatalf("refused run: exit %d, %q", code, stderr)
	}
	b.mu.Lock()
	b.refuse = nil
	b.mu.Unlock()

	// logout revokes the refresh token (and so its access tokens) and
	// forgets the sign-in.
	kept, _ := store.Load(iss)
	code, stdout, stderr = runCLI(t, nil, nil, "logout", "--data-dir", dir)
	if code != 0 || stdout != "signed out of "+iss+"\n" || stderr != "" {
		t.Fatalf("logout: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(store.Path(iss)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the sign-in is still there: %v", err)
	}
	if _, err := as.VerifyAccessToken(ctx, kept.AccessToken, resource); err == nil {
		t.Error("the access token is accepted after logout")
	}
	code, stdout, _ = runCLI(t, nil, nil, "logout", "--data-dir", dir)
	if code != 0 || stdout != "not signed in to "+iss+"\n" {
		t.Fatalf("second logout: exit %d, %q", code, stdout)
	}
	if code, _, _ := runCLI(t, nil, nil, "run", "research", "hi", "--data-dir", dir); code != 0 {
		t.Fatal("run after logout failed")
	}
	if tok, _ := b.user(); tok != "" {
		t.Fatal("run after logout sent a token")
	}
}

func TestRunWithAnExpiredSignIn(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir, as, b := startSignInHost(t)
	iss := as.Issuer()
	signInAs(t, "allow")
	if code, _, stderr := runCLI(t, nil, nil, "login", "--data-dir", dir); code != 0 {
		t.Fatalf("login: exit %d, %q", code, stderr)
	}
	store, err := login.DefaultStore()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := store.Load(iss)
	if err != nil {
		t.Fatal(err)
	}
	// The access token expired and the refresh token is no longer good.
	sess.Expiry, sess.RefreshToken = time.Now().Add(-time.Minute), "no-longer-valid"
	if err := store.Save(sess); err != nil {
		t.Fatal(err)
	}
	_, runs := b.got()
	code, _, stderr := runCLI(t, nil, nil, "run", "research", "hi", "--data-dir", dir)
	if code != 1 || !strings.Contains(stderr, "agenthost: your sign-in has expired: run agenthost --data-dir") ||
		!strings.HasSuffix(strings.TrimSpace(stderr), " login") {
		t.Fatalf("run: exit %d, %q", code, stderr)
	}
	if _, n := b.got(); n != runs {
		t.Fatal("the task was sent although the sign-in expired")
	}
	code, _, stderr = runCLI(t, nil, nil, "whoami", "--data-dir", dir)
	if code != 1 || !strings.Contains(stderr, "your sign-in has expired") {
		t.Fatalf("whoami: exit %d, %q", code, stderr)
	}
}

func TestLoginProblems(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir, _, _ := startSignInHost(t)
	tests := []struct {
		name     string
		decision string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"declined", "deny", []string{"login", "--data-dir", dir}, 1, "the sign-in was declined (access_denied)"},
		{"another issuer without a client", "allow", []string{"login", "--issuer", "https://as.example"}, 2, "name its client with --client-id"},
		{"an issuer that is not one", "allow", []string{"login", "--issuer", "http://as.example", "--client-id", "c"}, 2, "must be an https URL"},
		{"no host and no issuer", "allow", []string{"login", "--data-dir", "/nonexistent/dir"}, 1, "or name the authorization server with --issuer"},
		{"whoami without a host", "allow", []string{"whoami", "--data-dir", "/nonexistent/dir"}, 1, "no agenthost is running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signInAs(t, tt.decision)
			code, _, stderr := runCLI(t, nil, nil, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.wantCode, stderr, tt.wantErr)
			}
		})
	}
}
