package remotetools_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/mcp/mcptest"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/remotetools"
)

var (
	alphaID = credentials.MustParseIdentity("spiffe://test.local/agent/alpha")
	betaID  = credentials.MustParseIdentity("spiffe://test.local/agent/beta")
)

const whoamiDescription = "Says who called and the key its token is bound to."

// world is a remote MCP server with its own authorization server, which
// trusts the test trust domain's JWT-SVIDs, knows alpha and beta as
// clients and issues DPoP-bound tokens; and a fake host that gives the
// remotes their token clients and subjects and records what it was
// asked.
type world struct {
	t        *testing.T
	ca       *ca.CA
	endpoint string
	set      *remotetools.Set

	mu sync.Mutex
	// requests are the token clients the set asked the host for.
	requests []remotetools.TokenClientRequest
	// callers are the calls the set asked the host a subject for.
	callers []mediator.Caller
	// subjectErr fails Subject.
	subjectErr error
	// tokenSubjects maps each access token the remote got to the sub
	// it names.
	tokenSubjects map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, tokenSubjects: map[string]string{}}
	var err error
	if w.ca, err = ca.New(ctx, ca.Config{TrustDomain: "test.local", Journal: &ca.MemoryJournal{}}); err != nil {
		t.Fatal(err)
	}
	var late http.Handler = http.NotFoundHandler()
	remote := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { late.ServeHTTP(rw, r) }))
	t.Cleanup(remote.Close)
	w.endpoint = remote.URL + "/mcp"
	as, err := authserver.New(ctx, authserver.Config{
		Issuer: remote.URL, Store: authserver.NewMemoryStore(nil), TrustDomain: "test.local", SVIDs: w.ca,
		Agents:    []authserver.AgentClient{{ID: alphaID, Scopes: []string{"docs:read"}}, {ID: betaID, Scopes: []string{"docs:read"}}},
		Resources: []authserver.Resource{{URI: w.endpoint, Scopes: []string{"docs:read"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dv, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: dpop.NewMemoryReplayCache(nil)})
	if err != nil {
		t.Fatal(err)
	}
	prm := remote.URL + "/.well-known/oauth-protected-resource/mcp"
	v, err := resource.New(resource.Config{Resource: w.endpoint, MetadataURL: prm, Issuer: remote.URL, Keys: as.Keys(),
		Revoked: as.Revoked, ScopesSupported: []string{"docs:read"}, DPoP: dv})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mcpserver.New(mcpserver.Config{Name: "docs", Verifier: v, Tools: []mcpserver.Tool{{
		Name: "whoami", Description: whoamiDescription, Scope: "docs:read", ReadOnly: true,
		Handler: func(_ context.Context, c *resource.Caller, _ json.RawMessage) (mcpserver.Result, error) {
			return mcpserver.Result{Text: c.Subject + " " + c.JKT}, nil
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", as.Handler())
	mux.Handle("/.well-known/oauth-protected-resource/mcp", resource.MetadataHandler(oauth.ResourceMetadata{
		Resource: w.endpoint, AuthorizationServers: []string{remote.URL}, ScopesSupported: []string{"docs:read"},
		DPoPSigningAlgValuesSupported: []string{"ES256"}}))
	mux.Handle("/mcp", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			_, tok, _ := strings.Cut(a, " ")
			w.mu.Lock()
			w.tokenSubjects[tok] = jwtSubject(t, tok)
			w.mu.Unlock()
		}
		srv.Handler().ServeHTTP(rw, r)
	}))
	late = mux

	w.set, err = remotetools.New(remotetools.Config{
		Remotes:     []config.MCPRemoteConfig{{Name: "docs", URL: w.endpoint, Tools: []string{"whoami"}}},
		TrustDomain: "test.local",
		TokenClient: w.tokenClient,
		Subject:     w.subject,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.set.Close)
	return w
}

// tokenClient is the fake host's token client: the workload's JWT-SVID
// as client assertion, its DPoP keys.
func (w *world) tokenClient(r remotetools.TokenClientRequest) (*oauth.Client, error) {
	w.mu.Lock()
	w.requests = append(w.requests, r)
	w.mu.Unlock()
	sid, err := workloadapi.IDFromIdentity(r.Workload)
	if err != nil {
		return nil, err
	}
	return oauth.NewClient(oauth.ClientConfig{
		ClientID: r.Workload.String(),
		Assertion: func(ctx context.Context, audience string) (string, error) {
			tok, _, err := w.ca.NewJWTSVID(ctx, sid, []string{audience})
			return tok, err
		},
		HTTPClient: r.HTTPClient,
		DPoPKeys:   r.DPoPKeys,
	})
}

// subject is the fake host's subject: the agent's own authority.
func (w *world) subject(rc config.MCPRemoteConfig, c mediator.Caller) (mcpclient.Subject, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rc.Name != "docs" || rc.URL != w.endpoint {
		w.t.Errorf("Subject asked for remote %+v", rc)
	}
	w.callers = append(w.callers, c)
	return mcpclient.Subject{}, w.subjectErr
}

func (w *world) setSubjectErr(err error) {
	w.mu.Lock()
	w.subjectErr = err
	w.mu.Unlock()
}

// tokenRequests returns the workloads the set asked token clients for.
func (w *world) tokenRequests() []remotetools.TokenClientRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]remotetools.TokenClientRequest(nil), w.requests...)
}

// tokensOf returns the access tokens the remote got naming sub.
func (w *world) tokensOf(sub string) map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]bool{}
	for tok, s := range w.tokenSubjects {
		if s == sub {
			out[tok] = true
		}
	}
	return out
}

// call calls docs/whoami as agent, as the mediator would.
func (w *world) call(agent string) (mediator.ToolResult, error) {
	return w.set.Tools()["docs/whoami"].Call(context.Background(), mediator.Caller{Agent: agent, TaskID: "task-" + agent}, nil)
}

// jkt is the thumbprint of id's ES256 DPoP key.
func (w *world) jkt(id credentials.Identity) string {
	w.t.Helper()
	key := w.key(id)
	jkt, err := dpop.Thumbprint(key.Public())
	if err != nil {
		w.t.Fatal(err)
	}
	return jkt
}

func (w *world) key(id credentials.Identity) crypto.Signer {
	w.t.Helper()
	key, _, err := w.set.DPoPKeys(id).Key([]string{"ES256"})
	if err != nil || key == nil {
		w.t.Fatalf("%s has no ES256 key: %v", id, err)
	}
	return key
}

// TestAgentsNeverShareTokensOrKeys is the attacker's view of two agents
// calling one remote: each gets its own token client (asked of the host
// once, however many calls race), its own DPoP keys, its own MCP client
// and its own tokens, bound to its own key; one agent's token is useless
// with the other's proofs; an agent name cannot stand for another
// workload; and forgetting one agent leaves the other alone.
func TestAgentsNeverShareTokensOrKeys(t *testing.T) {
	w := newWorld(t)
	srv := w.set.Server("docs")

	// Racing first uses make one client per agent.
	clients := map[string][]remotetools.Client{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		for _, agent := range []string{"alpha", "beta"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := srv.Client(agent)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				clients[agent] = append(clients[agent], c)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for agent, cs := range clients {
		for _, c := range cs {
			if c != cs[0] {
				t.Fatalf("%s got two clients", agent)
			}
		}
	}
	if clients["alpha"][0] == clients["beta"][0] {
		t.Fatal("alpha and beta share a client")
	}
	if c, err := srv.ClientFor(alphaID); err != nil || c != clients["alpha"][0] {
		t.Fatalf("ClientFor(alpha) is not Client(alpha): %v", err)
	}
	reqs := w.tokenRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d token clients asked for, want one per agent", len(reqs))
	}
	byID := map[string]remotetools.TokenClientRequest{}
	for _, r := range reqs {
		byID[r.Workload.String()] = r
		if r.Remote.Name != "docs" || !r.Loopback || r.HTTPClient != nil {
			t.Fatalf("token client request %+v", r)
		}
		if r.DPoPKeys != w.set.DPoPKeys(r.Workload) {
			t.Fatalf("%s's token client got keys other than its own", r.Workload)
		}
	}
	if byID[alphaID.String()].DPoPKeys == nil || byID[alphaID.String()].DPoPKeys == byID[betaID.String()].DPoPKeys {
		t.Fatal("alpha and beta share DPoP keys")
	}

	// Each agent's calls reach the remote as itself, bound to its key.
	var results []mediator.ToolResult
	for _, agent := range []string{"alpha", "beta", "alpha", "beta"} {
		id := credentials.MustParseIdentity("spiffe://test.local/agent/" + agent)
		res, err := w.call(agent)
		if err != nil {
			t.Fatalf("%s: %v", agent, err)
		}
		results = append(results, res)
		if want := id.String() + " " + w.jkt(id); res.Text != want || res.IsError {
			t.Fatalf("%s: remote saw %q, want %q", agent, res.Text, want)
		}
	}
	if w.jkt(alphaID) == w.jkt(betaID) {
		t.Fatal("alpha and beta are bound to one key")
	}
	alphaTokens, betaTokens := w.tokensOf(alphaID.String()), w.tokensOf(betaID.String())
	if len(alphaTokens) == 0 || len(betaTokens) == 0 {
		t.Fatalf("tokens seen: alpha %d, beta %d", len(alphaTokens), len(betaTokens))
	}
	for tok := range alphaTokens {
		if betaTokens[tok] {
			t.Fatal("one token served alpha and beta")
		}
	}
	if len(w.tokensOf("")) != 0 {
		t.Fatal("the remote got a token naming no one")
	}
	for _, res := range results {
		for _, toks := range []map[string]bool{alphaTokens, betaTokens} {
			for tok := range toks {
				if strings.Contains(res.Text, tok) {
					t.Fatal("a tool result holds a token")
				}
			}
		}
	}
	if n := len(w.tokenRequests()); n != 2 {
		t.Fatalf("%d token clients after the calls, want still 2", n)
	}
	w.mu.Lock()
	for _, c := range w.callers {
		if c.TaskID != "task-"+c.Agent {
			t.Errorf("Subject asked for %+v", c)
		}
	}
	w.mu.Unlock()

	// alpha's token, stolen by beta, is refused with beta's proofs (and
	// as a bearer token); with alpha's own it is taken.
	var stolen string
	for tok := range alphaTokens {
		stolen = tok
	}
	for _, tt := range []struct {
		name   string
		scheme string
		key    crypto.Signer
		want   int
	}{
		{"alpha's token, alpha's proof", "DPoP", w.key(alphaID), http.StatusOK},
		{"alpha's token, beta's proof", "DPoP", w.key(betaID), http.StatusUnauthorized},
		{"alpha's token as a bearer token", "Bearer", nil, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawInitialize(t, w.endpoint, tt.scheme, stolen, tt.key); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
		})
	}

	// An agent name that is not one path segment stands for no workload.
	for _, agent := range []string{"", "alpha/../beta", "beta/x"} {
		if _, err := w.call(agent); err == nil {
			t.Fatalf("agent %q called the remote", agent)
		}
	}
	if n := len(w.tokenRequests()); n != 2 {
		t.Fatalf("%d token clients after bad agent names, want still 2", n)
	}

	// Forgetting alpha drops its client only; its keys stay its own.
	keysA := w.set.DPoPKeys(alphaID)
	w.set.ForgetWorkload(alphaID)
	a, err := srv.Client("alpha")
	if err != nil {
		t.Fatal(err)
	}
	b, err := srv.Client("beta")
	if err != nil {
		t.Fatal(err)
	}
	if a == clients["alpha"][0] || b != clients["beta"][0] {
		t.Fatal("ForgetWorkload(alpha) kept alpha's client or dropped beta's")
	}
	reqs = w.tokenRequests()
	if len(reqs) != 3 || reqs[2].Workload != alphaID || reqs[2].DPoPKeys != keysA {
		t.Fatalf("after ForgetWorkload: token client requests %+v, want a third for alpha with its keys", reqs)
	}
	if res, err := w.call("alpha"); err != nil || res.Text != alphaID.String()+" "+w.jkt(alphaID) {
		t.Fatalf("alpha after ForgetWorkload: %q %v", res.Text, err)
	}
}

// TestDefinitionsLearnedOnFirstCall: a remote tool has a generic
// definition until the first call, then the remote's own.
func TestDefinitionsLearnedOnFirstCall(t *testing.T) {
	w := newWorld(t)
	tool := w.set.Tools()["docs/whoami"]
	if d := tool.Definition(); d.Description != `Tool "whoami" of the remote MCP server docs` {
		t.Fatalf("before the first call: %+v", d)
	}
	if _, err := w.call("alpha"); err != nil {
		t.Fatal(err)
	}
	if d := w.set.Tools()["docs/whoami"].Definition(); d.Name != "docs/whoami" || d.Description != whoamiDescription {
		t.Fatalf("after the first call: %+v", d)
	}
}

// TestRefusedAuthority: a call the host has no subject for, and a call
// whose token the remote's authorization server refuses, are permission
// denied, with messages that name the remote first.
func TestRefusedAuthority(t *testing.T) {
	w := newWorld(t)
	w.setSubjectErr(errors.New("host: " + remotetools.ErrNoUser.Error()))
	// Only a wrapped ErrNoUser is a refusal of authority.
	if _, err := w.call("alpha"); !errors.Is(err, pluginpb.ErrUnavailable) {
		t.Fatalf("an unwrapped error: %v, want unavailable", err)
	}
	w.setSubjectErr(fmt.Errorf("host: %w", remotetools.ErrNoUser))
	_, err := w.call("alpha")
	if !errors.Is(err, pluginpb.ErrPermissionDenied) ||
		err.Error() != "permission denied: remote docs: host: the task has no user's access token to act with" {
		t.Fatalf("no user: %v", err)
	}
	w.setSubjectErr(nil)

	// gamma is no client of the remote's authorization server.
	_, err = w.call("gamma")
	issuer := strings.TrimSuffix(w.endpoint, "/mcp")
	if !errors.Is(err, pluginpb.ErrPermissionDenied) ||
		!strings.HasPrefix(err.Error(), "permission denied: remote docs: its authorization server "+issuer+" refused the client_credentials request: ") {
		t.Fatalf("refused token request: %v", err)
	}
}

// rawInitialize sends an MCP initialize to endpoint with token in scheme
// and, with key, a proof; it returns the status.
func rawInitialize(t *testing.T, endpoint, scheme, token string, key crypto.Signer) int {
	t.Helper()
	status, _, err := mcptest.Initialize(context.Background(), endpoint, scheme, token, key)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

// jwtSubject is the sub of the JWT tok, unverified (the remote's verifier
// checks it).
func jwtSubject(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Errorf("access token is not a JWT")
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Error(err)
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Error(err)
	}
	return c.Sub
}
