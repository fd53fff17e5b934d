package host

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// seenCall is what a remote tool saw of one call.
type seenCall struct {
	tool    string
	subject string
	client  string
	// act lists the actors, outermost (the current one) first.
	act []string
}

// remoteWorld is a remote side for delegation tests: one HTTP server with
// two authorization servers (trusting, at the server's origin, which
// trusts the host's issuer; refusing, under /refusing, which does not)
// and one MCP server per remote, each a resource of one of them.
type remoteWorld struct {
	url string
	// trusting and refusing count token requests by grant type.
	mu       sync.Mutex
	grants   map[string]map[string]int // by AS ("trusting", "refusing"), then grant_type
	calls    []seenCall
	late     atomic.Pointer[http.Handler]
	trusting *authserver.Server
	refusing *authserver.Server
}

// remoteSpec is one remote MCP server of a remoteWorld.
type remoteSpec struct {
	name, tool string
	actingAs   config.ActingAs
	refusing   bool // its AS is the refusing one
}

var delegationRemotes = []remoteSpec{
	{name: "docs", tool: "search"},
	{name: "agentdocs", tool: "lookup", actingAs: config.ActingAsAgent},
	{name: "userdocs", tool: "find", actingAs: config.ActingAsUser},
	{name: "strict", tool: "query", refusing: true},
}

func newRemoteWorld(t *testing.T) *remoteWorld {
	t.Helper()
	w := &remoteWorld{grants: map[string]map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := w.late.Load()
		if h == nil {
			http.NotFound(rw, r)
			return
		}
		(*h).ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

func (w *remoteWorld) endpoint(name string) string { return w.url + "/" + name + "/mcp" }

// serve starts the remote side for host h: its agents are clients of both
// authorization servers (they trust h's trust domain's JWT-SVIDs), and the
// trusting one also trusts h's issuer.
func (w *remoteWorld) serve(t *testing.T, h *Host) {
	t.Helper()
	ctx := context.Background()
	var agents []authserver.AgentClient
	for _, a := range []string{"assistant", "research"} {
		agents = append(agents, authserver.AgentClient{ID: credentials.MustParseIdentity("spiffe://test.local/agent/" + a), Scopes: []string{"docs:read"}})
	}
	var trustingRes, refusingRes []authserver.Resource
	for _, r := range delegationRemotes {
		res := authserver.Resource{URI: w.endpoint(r.name), Scopes: []string{"docs:read"}}
		if r.refusing {
			refusingRes = append(refusingRes, res)
		} else {
			trustingRes = append(trustingRes, res)
		}
	}
	var err error
	w.trusting, err = authserver.New(ctx, authserver.Config{Issuer: w.url, Store: authserver.NewMemoryStore(nil),
		TrustDomain: "test.local", SVIDs: h.CA(), Agents: agents, Resources: trustingRes,
		TrustedIssuers: []authserver.TrustedIssuer{{Issuer: h.Issuer(), JWKS: h.as.JWKS()}}})
	if err != nil {
		t.Fatal(err)
	}
	w.refusing, err = authserver.New(ctx, authserver.Config{Issuer: w.url + "/refusing", Store: authserver.NewMemoryStore(nil),
		TrustDomain: "test.local", SVIDs: h.CA(), Agents: agents, Resources: refusingRes})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", w.counting("trusting", w.trusting.Handler()))
	mux.Handle("/refusing/", w.counting("refusing", w.refusing.Handler()))
	mux.Handle("/.well-known/oauth-authorization-server/refusing", w.refusing.Handler())
	for _, r := range delegationRemotes {
		as := w.trusting
		if r.refusing {
			as = w.refusing
		}
		endpoint, prm := w.endpoint(r.name), w.url+"/.well-known/oauth-protected-resource/"+r.name+"/mcp"
		v, err := resource.New(resource.Config{Resource: endpoint, MetadataURL: prm, Issuer: as.Issuer(), Keys: as.Keys(),
			Revoked: as.Revoked, ScopesSupported: []string{"docs:read"}})
		if err != nil {
			t.Fatal(err)
		}
		tool := r.name + "/" + r.tool
		ms, err := mcpserver.New(mcpserver.Config{Name: r.name, Verifier: v, Tools: []mcpserver.Tool{{
			Name: r.tool, Description: "Looks things up in " + r.name, Scope: "docs:read", ReadOnly: true,
			Handler: func(_ context.Context, c *resource.Caller, _ json.RawMessage) (mcpserver.Result, error) {
				seen := seenCall{tool: tool, subject: c.Subject, client: c.ClientID}
				for a := c.Actor; a != nil; a = a.Actor {
					seen.act = append(seen.act, a.Subject)
				}
				w.mu.Lock()
				w.calls = append(w.calls, seen)
				w.mu.Unlock()
				return mcpserver.Result{Text: "found the plans for " + c.Subject}, nil
			},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle("/.well-known/oauth-protected-resource/"+r.name+"/mcp", resource.MetadataHandler(oauth.ResourceMetadata{
			Resource: endpoint, AuthorizationServers: []string{as.Issuer()}, ScopesSupported: []string{"docs:read"},
			BearerMethodsSupported: []string{"header"}}))
		mux.Handle("/"+r.name+"/mcp", ms.Handler())
	}
	var handler http.Handler = mux
	w.late.Store(&handler)
}

// counting counts token requests at the AS named as by grant type.
func (w *remoteWorld) counting(as string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, authserver.PathToken) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			f, _ := url.ParseQuery(string(body))
			w.mu.Lock()
			if w.grants[as] == nil {
				w.grants[as] = map[string]int{}
			}
			w.grants[as][f.Get("grant_type")]++
			w.mu.Unlock()
		}
		next.ServeHTTP(rw, r)
	})
}

// take returns and forgets the calls and grants seen so far.
func (w *remoteWorld) take() ([]seenCall, map[string]map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	calls, grants := w.calls, w.grants
	w.calls, w.grants = nil, map[string]map[string]int{}
	return calls, grants
}

// exampleAgent is the path of an example agent make build left in bin/.
func exampleAgent(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "bin", "agents", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("example agent %s (built by `make build`): %v", name, err)
	}
	return p
}

// TestDelegationOnEveryHop runs the example assistant and research agents
// for alice, signed in with her own token, against remote MCP servers
// whose authorization servers are embedded ones of their own:
//
//   - assistant → research → docs: the remote sees sub alice and act
//     nested two deep (research, then assistant), got by token exchange
//     only;
//   - research alone → docs: act is research;
//   - a task without a user's token (the operator's --for): the agent's
//     own authority (client_credentials, sub = research);
//   - acting_as agent: the agent's own authority, with a user too;
//   - acting_as user, without a user's token: the call fails;
//   - an authorization server that does not trust the host's issuer
//     refuses the exchange: the call fails with an error naming the remote
//     and its authorization server, and no client_credentials token is
//     asked for.
func TestDelegationOnEveryHop(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	remote := newRemoteWorld(t)
	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.Models = map[string]config.ModelConfig{"default": {Provider: config.ProviderOffline}}
	var tools []string
	for _, r := range delegationRemotes {
		cfg.MCP.Remotes = append(cfg.MCP.Remotes, config.MCPRemoteConfig{Name: r.name, URL: remote.endpoint(r.name),
			Tools: []string{r.tool}, ActingAs: r.actingAs})
		tools = append(tools, r.name+"/"+r.tool)
	}
	cfg.Agents = []config.AgentConfig{
		{Name: "research", Path: exampleAgent(t, "research"), Model: "default", Tools: tools, Scopes: []string{"docs:read"}},
		{Name: "assistant", Path: exampleAgent(t, "assistant"), CallAgents: []string{"research"}, Scopes: []string{"docs:read"}},
	}
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	remote.serve(t, h)
	waitAllRunning(ctx, t, dir, len(cfg.Agents))
	alice := signIn(t, h, "alice", "alice-pw", TaskResource(h.Issuer())).AccessToken

	const (
		research  = "spiffe://test.local/agent/research"
		assistant = "spiffe://test.local/agent/assistant"
	)
	var lastTxn string
	run := func(req localapi.TaskRequest) (final, failure string) {
		t.Helper()
		lastTxn = ""
		err := h.RunTask(ctx, req, func(ev localapi.TaskEvent) error {
			if lastTxn == "" {
				lastTxn = ev.Txn
			}
			switch ev.Type {
			case "final":
				final = ev.Text
			case "error":
				failure = ev.Text
			}
			return nil
		})
		if err != nil {
			t.Fatalf("task %+v: %v", req.Agent, err)
		}
		if jwtPattern.MatchString(final) || jwtPattern.MatchString(failure) {
			t.Fatalf("a token reached the task's output: %q %q", final, failure)
		}
		return final, failure
	}
	type want struct {
		subject string
		act     []string
		grants  map[string]int // at the trusting AS
	}
	check := func(name string, calls []seenCall, grants map[string]map[string]int, tool string, w want) {
		t.Helper()
		if len(calls) != 1 || calls[0].tool != tool || calls[0].subject != w.subject || fmt.Sprint(calls[0].act) != fmt.Sprint(w.act) {
			t.Errorf("%s: the remote saw %+v, want one call of %s with sub %s and act %v", name, calls, tool, w.subject, w.act)
		}
		if fmt.Sprint(grants["trusting"]) != fmt.Sprint(w.grants) || len(grants["refusing"]) != 0 {
			t.Errorf("%s: token requests %v, want %v at the trusting server", name, grants, w.grants)
		}
	}

	// (a) alice → assistant → research → docs.
	final, failure := run(localapi.TaskRequest{Agent: "assistant", Input: "search the docs for the plans", AccessToken: alice})
	calls, grants := remote.take()
	check("delegated", calls, grants, "docs/search", want{"alice", []string{research, assistant}, map[string]int{oauth.GrantTokenExchange: 1}})
	if !strings.Contains(final, "research says:") || !strings.Contains(final, "found the plans for alice") || failure != "" {
		t.Errorf("delegated task answered %q %q", final, failure)
	}
	// Every record of alice's request is one transaction, and its trace
	// is the chain: assistant's task, research's under it, the remote
	// call in research's.
	if lastTxn == "" {
		t.Fatal("the task's events name no transaction")
	}
	entries, err := audit.Read(ctx, syncedStore(t, h), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	agents := map[string]bool{}
	for _, e := range entries {
		if e.Record.Task != "" && (e.Record.Agent == "assistant" || e.Record.Agent == "research") && e.Record.Subject == "alice" {
			if e.Record.Txn != lastTxn {
				t.Errorf("record %d of alice's request (%s %s) has txn %q, want %q", e.Index, e.Record.Agent, e.Record.Action, e.Record.Txn, lastTxn)
			}
			agents[e.Record.Agent] = true
		}
	}
	if !agents["assistant"] || !agents["research"] {
		t.Errorf("alice's request left records of %v, want assistant and research", agents)
	}
	tree, err := h.AuditTrace(ctx, lastTxn)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Agent != "assistant" || len(tree.Children) != 1 || tree.Children[0].Agent != "research" {
		t.Fatalf("trace of %s: root %q with children %d, want assistant → research", lastTxn, tree.Agent, len(tree.Children))
	}
	var remoteCall, overA2A bool
	for _, e := range tree.Children[0].Records {
		remoteCall = remoteCall || e.Record.Resource == "docs/search"
		// The hop to research went over A2A with alice's token for
		// research, assistant in act, and assistant's verified WPT.
		overA2A = overA2A || e.Record.Action == "task.run" && e.Record.Reason == "a2a from "+assistant+", token sub alice act "+assistant+
			", workload proof (wpt) by "+assistant+" verified"
	}
	if !overA2A {
		t.Errorf("research's task did not come over A2A with alice's delegated token and a WPT: %+v", tree.Children[0].Records)
	}
	if !remoteCall {
		t.Errorf("research's node in the trace has no docs/search call: %+v", tree.Children[0].Records)
	}
	// Again: the exchanged token is cached.
	run(localapi.TaskRequest{Agent: "assistant", Input: "search the docs for the plans", AccessToken: alice})
	calls, grants = remote.take()
	check("delegated, cached", calls, grants, "docs/search", want{"alice", []string{research, assistant}, nil})

	// research alone, for alice: act is research.
	run(localapi.TaskRequest{Agent: "research", Input: "search the docs for the plans", AccessToken: alice})
	calls, grants = remote.take()
	check("not delegated", calls, grants, "docs/search", want{"alice", []string{research}, map[string]int{oauth.GrantTokenExchange: 1}})

	// (e) The operator names alice: no user's token, so the agent's own
	// authority.
	run(localapi.TaskRequest{Agent: "assistant", Input: "search the docs for the plans", Subject: "alice"})
	calls, grants = remote.take()
	check("operator's task", calls, grants, "docs/search", want{research, nil, map[string]int{oauth.GrantClientCredentials: 1}})

	// (c) acting_as agent, with alice's token: the agent's own authority.
	run(localapi.TaskRequest{Agent: "assistant", Input: "lookup agentdocs", AccessToken: alice})
	calls, grants = remote.take()
	check("acting_as agent", calls, grants, "agentdocs/lookup", want{research, nil, map[string]int{oauth.GrantClientCredentials: 1}})

	// acting_as user: alice's token works; without it the call fails.
	run(localapi.TaskRequest{Agent: "assistant", Input: "find userdocs", AccessToken: alice})
	calls, grants = remote.take()
	check("acting_as user", calls, grants, "userdocs/find", want{"alice", []string{research, assistant}, map[string]int{oauth.GrantTokenExchange: 1}})
	final, _ = run(localapi.TaskRequest{Agent: "assistant", Input: "find userdocs", Subject: "alice"})
	if calls, grants = remote.take(); len(calls) != 0 || len(grants) != 0 {
		t.Errorf("acting_as user without a user's token reached the remote: %v %v", calls, grants)
	}
	if !strings.Contains(final, "remote userdocs acts as the user") {
		t.Errorf("acting_as user without a user's token answered %q", final)
	}

	// (d) The strict remote's authorization server does not trust the
	// host's issuer: the exchange is refused, the call fails naming the
	// remote and that server, and nothing is asked on the agent's own
	// authority.
	final, _ = run(localapi.TaskRequest{Agent: "assistant", Input: "query strict", AccessToken: alice})
	calls, grants = remote.take()
	if len(calls) != 0 || grants["refusing"][oauth.GrantTokenExchange] == 0 || grants["refusing"][oauth.GrantClientCredentials] != 0 ||
		len(grants["trusting"]) != 0 {
		t.Errorf("refused exchange: calls %v, token requests %v", calls, grants)
	}
	for _, w := range []string{"remote strict: its authorization server " + remote.refusing.Issuer() + " refused the token exchange: " + oauth.CodeInvalidRequest} {
		if !strings.Contains(final, w) {
			t.Errorf("the refusal the agent got (%q) does not say %q", final, w)
		}
	}

	// The audit log has the failed call with the same reason, and the
	// tokens the host's server issued for the delegation (never a token).
	entries, err = audit.Read(ctx, syncedStore(t, h), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var refused, issued int
	for _, e := range entries {
		r := e.Record
		switch {
		case r.Action == "tool.call" && r.Resource == "strict/query" && r.Outcome != "":
			if r.Outcome != audit.OutcomeError || !strings.Contains(r.Error, "remote strict") || !strings.Contains(r.Error, remote.refusing.Issuer()) {
				t.Errorf("the refused call's record: %+v", r)
			}
			refused++
		case r.Action == audit.ActionTokenIssue && r.Subject == "alice" && r.Resource == research && len(r.Chain) == 1 && r.Chain[0] == assistant:
			issued++ // the delegation assistant → research
		}
	}
	if refused != 1 || issued == 0 {
		t.Errorf("audit: %d records of the refused call, %d of delegation tokens", refused, issued)
	}
	raw, _ := json.Marshal(entries)
	if strings.Contains(string(raw), alice) {
		t.Error("alice's token is in the audit log")
	}
}

// BenchmarkDelegationChain: the host's side of a delegated remote call
// for assistant → research, made when the remote's token has to be
// acquired: the user's token for the assistant (issued in process) and
// the delegation exchanged at the host's own authorization server; cold
// (nothing cached) and with both cached.
func BenchmarkDelegationChain(b *testing.B) {
	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		b.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(b)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.Agents = []config.AgentConfig{
		{Name: "research", Path: exe, Env: map[string]string{testAgentEnv: "1"}, Scopes: []string{"docs:read"}},
		{Name: "assistant", Path: exe, Env: map[string]string{testAgentEnv: "1"}, CallAgents: []string{"research"}, Scopes: []string{"docs:read"}},
	}
	h := runHost(b, cfg, filepath.Join(b.TempDir(), "data"))
	alice := signIn(b, h, "alice", "alice-pw", TaskResource(h.Issuer())).AccessToken
	defer h.holdUserToken("txn-bench", "alice", alice)()
	ctx := context.Background()
	d := h.delegation
	chain := []string{"assistant", "research"}
	for _, bc := range []struct {
		name string
		cold bool
	}{{"cold", true}, {"cached", false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.cold {
					d.mu.Lock()
					clear(d.agentTokens)
					clear(d.clients)
					d.mu.Unlock()
				}
				if _, err := d.subjectToken(ctx, "txn-bench", chain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
