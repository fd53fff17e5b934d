package host

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/astest"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth/login"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// signIn runs `agenthost login`'s flow against the host's authorization
// server as the built-in CLI client, with a test browser signing in as
// user, and returns the session; resource is what the token is for.
func signIn(t testing.TB, h *Host, user, password, resource string) *login.Session {
	t.Helper()
	return signInWith(t, h, user, password, resource, CLIScopes)
}

// signInWith is signIn asking for scopes.
func signInWith(t testing.TB, h *Host, user, password, resource string, scopes []string) *login.Session {
	t.Helper()
	c, err := login.New(login.Config{Issuer: h.Issuer(), ClientID: CLIClientID, Scopes: scopes, Resource: resource,
		Timeout: 30 * time.Second, OpenBrowser: func(authURL string) error {
			u, err := url.Parse(authURL)
			if err != nil {
				return err
			}
			go func() {
				b := astest.NewBrowser(u.Query().Get("redirect_uri"), user, password, "allow")
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
		}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(t.Context())
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	return sess
}

// runFinal runs a task and returns its final answer.
func runFinal(ctx context.Context, h *Host, req localapi.TaskRequest) (string, error) {
	var final string
	err := h.RunTask(ctx, req, func(ev localapi.TaskEvent) error {
		if ev.Type == "final" {
			final = ev.Text
		}
		return nil
	})
	return final, err
}

// TestTaskWithUserToken: a user signed in with agenthost login's flow
// starts a task with their own token: the task's subject is the token's
// sub and its audit record says subject_source token. A token for another
// audience is refused, over the admin socket too (401), and audited;
// --for gives subject_source operator.
func TestTaskWithUserToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}, {Name: "bob", PasswordHash: hash}}
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}}}
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	if _, err := h.sup.WaitFor(ctx, "whoami", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
		t.Fatal(err)
	}

	// The task resource is a protected resource of the host's server.
	st, body := get(t, h.Issuer()+"/.well-known/oauth-protected-resource/tasks")
	var md struct {
		Resource string   `json:"resource"`
		AS       []string `json:"authorization_servers"`
		Scopes   []string `json:"scopes_supported"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &md) != nil || md.Resource != TaskResource(h.Issuer()) ||
		len(md.AS) != 1 || md.AS[0] != h.Issuer() || len(md.Scopes) != 1 || md.Scopes[0] != ScopeTasksRun {
		t.Fatalf("task resource metadata: %d %s", st, body)
	}

	// alice's own token for the task resource.
	sess := signIn(t, h, "alice", "alice-pw", TaskResource(h.Issuer()))
	if final, err := runFinal(ctx, h, localapi.TaskRequest{Agent: "whoami", Input: "who", AccessToken: sess.AccessToken}); err != nil || final != "spiffe://test.local/agent/whoami" {
		t.Fatalf("task with alice's token: %q, %v", final, err)
	}

	// A token of alice's for the server itself (no resource): another
	// audience, refused.
	other := signIn(t, h, "alice", "alice-pw", "")
	_, err = runFinal(ctx, h, localapi.TaskRequest{Agent: "whoami", Input: "who", AccessToken: other.AccessToken})
	if !errors.Is(err, localapi.ErrTokenRefused) || !strings.Contains(err.Error(), "issued for another resource") ||
		!strings.Contains(err.Error(), TaskResource(h.Issuer())) {
		t.Fatalf("task with a token for another audience: %v", err)
	}
	// Over the admin socket: 401, the same message.
	cl := localapi.NewClient(filepath.Join(dir, localapi.SocketName))
	err = cl.RunTask(ctx, localapi.TaskRequest{Agent: "whoami", Input: "who", AccessToken: other.AccessToken}, func(localapi.TaskEvent) {})
	if !errors.Is(err, localapi.ErrTokenRefused) || !strings.Contains(err.Error(), "the host refused the sign-in: the access token is invalid: issued for another resource") {
		t.Fatalf("admin socket, token for another audience: %v", err)
	}
	// Not a token at all.
	if err := cl.RunTask(ctx, localapi.TaskRequest{Agent: "whoami", Input: "who", AccessToken: "garbage"}, func(localapi.TaskEvent) {}); !errors.Is(err, localapi.ErrTokenRefused) {
		t.Fatalf("admin socket, garbage token: %v", err)
	}
	// A user and a token at once: refused before anything runs.
	if err := cl.RunTask(ctx, localapi.TaskRequest{Agent: "whoami", Input: "who", AccessToken: sess.AccessToken, Subject: "bob"}, func(localapi.TaskEvent) {}); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("subject and token: %v", err)
	}

	// The operator names bob.
	if _, err := runFinal(ctx, h, localapi.TaskRequest{Agent: "whoami", Input: "who", Subject: "bob"}); err != nil {
		t.Fatal(err)
	}

	entries, err := audit.Read(ctx, syncedStore(t, h), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var byToken, byOperator, refused []audit.Record
	for _, e := range entries {
		r := e.Record
		if r.Action != "task.run" {
			continue
		}
		switch {
		case r.Decision == audit.DecisionDeny:
			refused = append(refused, r)
		case r.SubjectSource == audit.SubjectSourceToken:
			byToken = append(byToken, r)
		case r.SubjectSource == audit.SubjectSourceOperator:
			byOperator = append(byOperator, r)
		default:
			t.Errorf("task record without a subject source: %+v", r)
		}
	}
	if len(byToken) != 1 || byToken[0].Subject != "alice" || byToken[0].Policy != "token" || byToken[0].TokenJTI == "" ||
		byToken[0].TokenSHA256 != audit.TokenRef(sess.AccessToken) || byToken[0].Outcome != audit.OutcomeOK {
		t.Errorf("task records by token: %+v", byToken)
	}
	if len(byOperator) != 1 || byOperator[0].Subject != "bob" || byOperator[0].Policy != "operator" || byOperator[0].TokenJTI != "" {
		t.Errorf("task records by the operator: %+v", byOperator)
	}
	// Two refusals of the other-audience token and one of garbage (the
	// request with both never reached the host's backend).
	if len(refused) != 3 {
		t.Fatalf("refused task records: %+v", refused)
	}
	for _, r := range refused[:2] {
		if r.SubjectSource != audit.SubjectSourceToken || r.Outcome != audit.OutcomeDenied || r.Subject != "" ||
			!strings.Contains(r.Reason, "issued for another resource") || r.TokenSHA256 != audit.TokenRef(other.AccessToken) ||
			r.Resource != "spiffe://test.local/agent/whoami" {
			t.Errorf("refusal record %+v", r)
		}
	}
	// No token in the log, only references.
	raw, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{sess.AccessToken, other.AccessToken, sess.RefreshToken} {
		if strings.Contains(string(raw), tok) {
			t.Fatal("a token is in the audit log")
		}
	}
}

// TestTaskTokenChecks: tokens of the right audience that still may not
// start a task: expired (on the host's clock), revoked, or of a client
// acting on its own authority.
func TestTaskTokenChecks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := userauth.HashPassword("svc-secret")
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64 // the host's clock runs this far ahead
	cfg := testConfig(t)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.Auth.Clients = []config.ClientConfig{{ID: "svc", AuthMethod: config.AuthMethodClientSecretPost, SecretHash: secret,
		GrantTypes: []config.GrantType{config.GrantClientCredentials}, Scopes: []string{ScopeTasksRun}}}
	h := runHostWith(t, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"),
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	res := TaskResource(h.Issuer())

	refused := func(name, token, want string) {
		t.Helper()
		err := h.RunTask(ctx, localapi.TaskRequest{Agent: "nobody", Input: "x", AccessToken: token}, func(localapi.TaskEvent) error { return nil })
		if !errors.Is(err, localapi.ErrTokenRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a refusal with %q", name, err, want)
		}
	}

	// A client's own token (client_credentials) names no signed-in user.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {"svc-secret"},
		"resource": {res}, "scope": {ScopeTasksRun}}
	resp, err := http.PostForm(h.Issuer()+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		t.Fatalf("client_credentials: %d %s", resp.StatusCode, body)
	}
	refused("client's own token", tr.AccessToken, "not issued to a signed-in user")

	sess := signIn(t, h, "alice", "alice-pw", res)
	// A known agent is not needed to check the token: with a good one
	// the task fails later, on the agent.
	if err := h.RunTask(ctx, localapi.TaskRequest{Agent: "nobody", Input: "x", AccessToken: sess.AccessToken}, func(localapi.TaskEvent) error { return nil }); err == nil || errors.Is(err, localapi.ErrTokenRefused) {
		t.Fatalf("good token, unknown agent: %v", err)
	}
	skew.Store(int64(time.Hour))
	refused("expired", sess.AccessToken, "expired")
	skew.Store(0)
	if err := h.as.RevokeSubject(ctx, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	refused("revoked", sess.AccessToken, "revoked")
}

func TestBuiltInClientIsReserved(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth.Clients = []config.ClientConfig{{ID: CLIClientID, AuthMethod: config.AuthMethodNone,
		RedirectURIs: []string{"http://127.0.0.1/cb"}, GrantTypes: []config.GrantType{config.GrantAuthorizationCode}}}
	ctx := t.Context()
	_, err := New(ctx, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "auth.clients lists "+CLIClientID) {
		t.Fatalf("New with a client named %s: %v", CLIClientID, err)
	}
}
