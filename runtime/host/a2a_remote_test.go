package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/a2a/a2aserver"
	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/wimse"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/plugins/sdk"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// callerAgent calls the agent its task names first ("worker hello" calls
// worker with "hello") and answers with what that agent said.
type callerAgent struct{}

func (callerAgent) Describe() sdk.Description { return sdk.Description{Name: "caller"} }

func (callerAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	agent, input, _ := strings.Cut(t.Input, " ")
	out, err := t.CallAgent(ctx, agent, input)
	if err != nil {
		return "", err
	}
	return agent + " said: " + out, nil
}

// remoteTD is the trust domain of the remote A2A agents.
const remoteTD = "remote.test"

// remoteJWTKID is the kid of the JWT authority the remote's bundle holds
// besides its CA's own: the key the card of "keyed" is signed with.
const remoteJWTKID = "remote-jwt-1"

// remoteA2A is a remote side for the remote-agent tests: one HTTP server
// with an embedded authorization server (at its origin, trusting the
// host's issuer and the host's agents' JWT-SVIDs) and an A2A server
// (a2aserver) whose agents are resources of it. Their cards are signed
// in the trust domain remote.test (research, tampered: an X.509-SVID
// with x5c; keyed: a JWT authority of remote.test's bundle, by kid), or
// in another one (foreign); tampered's card is changed after signing on
// its way out.
type remoteA2A struct {
	url        string
	late       atomic.Pointer[http.Handler]
	home       *ca.CA // remote.test
	other      *ca.CA // other.test
	jwtKey     *ecdsa.PrivateKey
	bundleFile string
	as         *authserver.Server
	release    chan struct{}
	// refuseNext makes the next call to research fail with 401 and a
	// challenge naming research's metadata.
	refuseNext atomic.Bool

	mu     sync.Mutex
	seen   []remoteSeen
	tokens []string
	grants int
	// proofs are the workloads whose WIT and proof a call presented and
	// the remote verified (against the host's trust domain), one per
	// call ("" for a call without one).
	proofs []string
}

// remoteSeen is what the remote agent saw of one task.
type remoteSeen struct {
	agent, input    string
	subject, client string
	// act lists the actors, outermost (the current one) first.
	act      []string
	audience []string
}

var remoteAgentNames = []string{"research", "tampered", "foreign", "keyed"}

func newRemoteA2A(t *testing.T) *remoteA2A {
	t.Helper()
	ctx := context.Background()
	r := &remoteA2A{release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := r.late.Load()
		if h == nil {
			http.NotFound(w, req)
			return
		}
		(*h).ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	var err error
	if r.home, err = ca.New(ctx, ca.Config{TrustDomain: remoteTD, Journal: &ca.MemoryJournal{}}); err != nil {
		t.Fatal(err)
	}
	if r.other, err = ca.New(ctx, ca.Config{TrustDomain: "other.test", Journal: &ca.MemoryJournal{}}); err != nil {
		t.Fatal(err)
	}
	r.jwtKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// The bundle: remote.test's CA's, and one more JWT authority.
	var bundle map[string]any
	if err := json.Unmarshal(r.home.BundleJSON(), &bundle); err != nil {
		t.Fatal(err)
	}
	jwk, err := jose.PublicJWK(r.jwtKey.Public(), remoteJWTKID, "ES256", "")
	if err != nil {
		t.Fatal(err)
	}
	jwk["use"] = "jwt-svid"
	bundle["keys"] = append(bundle["keys"].([]any), jwk)
	b, _ := json.Marshal(bundle)
	r.bundleFile = filepath.Join(t.TempDir(), "remote-bundle.json")
	if err := os.WriteFile(r.bundleFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *remoteA2A) agentURL(agent string) string { return r.url + a2aserver.PathPrefix + agent }

// serve starts the remote side for host h.
func (r *remoteA2A) serve(t *testing.T, h *Host) {
	t.Helper()
	ctx := context.Background()
	var resources []authserver.Resource
	for _, a := range remoteAgentNames {
		resources = append(resources, authserver.Resource{URI: r.agentURL(a)})
	}
	var clients []authserver.AgentClient
	for _, a := range []string{"lead", "front"} {
		clients = append(clients, authserver.AgentClient{ID: credentials.MustParseIdentity("spiffe://test.local/agent/" + a)})
	}
	var err error
	r.as, err = authserver.New(ctx, authserver.Config{Issuer: r.url, Store: authserver.NewMemoryStore(nil),
		TrustDomain: "test.local", SVIDs: h.CA(), Agents: clients, Resources: resources,
		TrustedIssuers: []authserver.TrustedIssuer{{Issuer: h.Issuer(), JWKS: h.as.JWKS()}}})
	if err != nil {
		t.Fatal(err)
	}
	md := r.as.Metadata()
	a2a, err := a2aserver.New(ctx, a2aserver.Config{
		BaseURL: r.url,
		Agents: []a2acard.AgentInfo{{Name: "research", Description: "Finds papers"}, {Name: "tampered", Description: "Books trips"},
			{Name: "foreign", Description: "Says it is research"}, {Name: "keyed", Description: "Finds papers too"}},
		Runner: a2aserver.RunnerFunc(r.run),
		Authenticator: func(_, res, mdURL string) (a2aserver.Authenticator, error) {
			return resource.New(resource.Config{Resource: res, MetadataURL: mdURL, Issuer: r.as.Issuer(), Keys: r.as.Keys(), Revoked: r.as.Revoked})
		},
		AuthServer: &md,
		CardKey:    r.cardKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a2a.Close() })
	// The remote accepts WIMSE from the host's trust domain.
	witKeys, err := wimse.WITAuthorityKeys(h.CA().BundleJSON())
	if err != nil {
		t.Fatal(err)
	}
	wv, err := wimse.NewVerifier(wimse.Config{TrustDomains: map[string]wimse.Authority{"test.local": {Keys: witKeys}}, BaseURL: r.url})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", r.as.Handler())
	a2a.Mount(mux)
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case strings.HasSuffix(req.URL.Path, authserver.PathToken):
			r.mu.Lock()
			r.grants++
			r.mu.Unlock()
		case req.Method == http.MethodPost && strings.HasPrefix(req.URL.Path, a2aserver.PathPrefix):
			tok := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
			proof := ""
			if req.Header.Get(wimse.HeaderWIT) != "" {
				peer, err := wv.Verify(req)
				if err != nil {
					wimse.WriteError(w, err)
					return
				}
				proof = peer.Identity().String()
			}
			r.mu.Lock()
			r.tokens = append(r.tokens, tok)
			r.proofs = append(r.proofs, proof)
			r.mu.Unlock()
			if req.URL.Path == r.agentURL("research")[len(r.url):] && r.refuseNext.CompareAndSwap(true, false) {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="`+
					r.url+"/.well-known/oauth-protected-resource/a2a/research"+`"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		case req.URL.Path == "/a2a/tampered"+a2aserver.CardPath:
			// The card is changed after it was signed.
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			var card map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &card)
			card["description"] = "Transfers money"
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(card)
			return
		}
		mux.ServeHTTP(w, req)
	})
	r.late.Store(&handler)
}

// cardKey signs each agent's card: see remoteA2A.
func (r *remoteA2A) cardKey(ctx context.Context, agent string) (a2acard.Key, error) {
	if agent == "keyed" {
		return a2acard.Key{Signer: r.jwtKey, KID: remoteJWTKID}, nil
	}
	authority, id := r.home, "spiffe://"+remoteTD+"/agent/"+agent
	if agent == "foreign" {
		authority, id = r.other, "spiffe://other.test/agent/research"
	}
	sid, err := workloadapi.IDFromIdentity(credentials.MustParseIdentity(id))
	if err != nil {
		return a2acard.Key{}, err
	}
	svid, err := authority.NewX509SVID(ctx, sid)
	if err != nil {
		return a2acard.Key{}, err
	}
	kid, err := jose.Thumbprint(svid.PrivateKey.Public())
	if err != nil {
		return a2acard.Key{}, err
	}
	return a2acard.Key{Signer: svid.PrivateKey, KID: kid, Chain: svid.Certificates}, nil
}

// run is the remote agents' Runner.
func (r *remoteA2A) run(ctx context.Context, req *a2aserver.Request, emit func(a2aserver.Event) error) (string, error) {
	c := req.Caller
	seen := remoteSeen{agent: req.Agent, input: req.Input, subject: c.Subject, client: c.ClientID, audience: c.Audience}
	for a := c.Actor; a != nil; a = a.Actor {
		seen.act = append(seen.act, a.Subject)
	}
	r.mu.Lock()
	r.seen = append(r.seen, seen)
	r.mu.Unlock()
	switch req.Input {
	case "approve":
		if err := emit(a2aserver.Event{Kind: a2aserver.EventApproval, Text: "Approve the trip to Lisbon", URL: "https://remote.example/approve/7"}); err != nil {
			return "", err
		}
		select {
		case <-r.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return "the trip is booked", nil
	case "signin":
		return "", a2aserver.AuthRequired("Sign in to the travel site", "https://remote.example/signin")
	case "ask":
		return "", a2aserver.InputRequired("Which city?")
	case "fail":
		return "", a2aserver.Failed("no seats left")
	}
	return req.Agent + " found the papers for " + c.Subject, nil
}

// take returns and forgets what the remote saw so far.
func (r *remoteA2A) take() (seen []remoteSeen, tokens []string, grants int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen, tokens, grants = r.seen, r.tokens, r.grants
	r.seen, r.tokens, r.grants = nil, nil, 0
	return seen, tokens, grants
}

// TestA2ARemoteAgents: hosted agents call remote A2A agents by their
// configured names, through CallAgent, against a remote A2A server with
// an authorization server of its own:
//
//   - alice → lead → front → worker (acting as the user): the answer
//     arrives; the remote saw a token for its URL with sub alice and act
//     front, then lead, obtained by token exchange at its own server;
//   - acting_as agent, and a task without a user's token: sub = front;
//   - a card changed after signing, and a card signed in another trust
//     domain, are refused and the call fails saying so, before any token
//     is asked for; a card signed by kid with a JWT authority of the
//     bundle is accepted;
//   - an auth-required update surfaces an approval event with the
//     remote's URL on the task's stream, and the task goes on; a task that
//     stops in auth-required is surfaced too, and fails once the wait is
//     over; input-required fails saying the remote asked for input;
//   - the remote's authorization server refusing the exchange fails the
//     call, naming the server and its error;
//   - a 401 with a challenge is answered once with a fresh token;
//   - each remote task is audited with its id, state and token hash;
//   - no token reaches a plugin, the task's events or the audit log.
func TestA2ARemoteAgents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer func(poll, wait time.Duration) { remoteAuthPoll, remoteAuthWait = poll, wait }(remoteAuthPoll, remoteAuthWait)
	remoteAuthPoll, remoteAuthWait = 50*time.Millisecond, 500*time.Millisecond

	remote := newRemoteA2A(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.Auth.AllowPrivateFetch = true
	remoteCfg := func(name, agent string, as config.ActingAs) config.A2ARemoteConfig {
		return config.A2ARemoteConfig{Name: name, URL: remote.agentURL(agent), ActingAs: as, TrustDomain: remoteTD, BundleFile: remote.bundleFile}
	}
	cfg.A2A.Remotes = []config.A2ARemoteConfig{
		remoteCfg("worker", "research", ""),
		remoteCfg("worker-agent", "research", config.ActingAsAgent),
		remoteCfg("tampered", "tampered", ""),
		remoteCfg("foreign", "foreign", ""),
		remoteCfg("keyed", "keyed", ""),
	}
	cfg.Agents = []config.AgentConfig{
		{Name: "lead", Path: exe, CallAgents: []string{"front"}, Env: map[string]string{testAgentEnv: "caller"}},
		{Name: "front", Path: exe, CallAgents: []string{"worker", "worker-agent", "tampered", "foreign", "keyed"},
			Env: map[string]string{testAgentEnv: "caller"}},
		// solo is no client of the remote's authorization server.
		{Name: "solo", Path: exe, CallAgents: []string{"worker"}, Env: map[string]string{testAgentEnv: "caller"}},
	}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	remote.serve(t, h)
	for _, a := range []string{"lead", "front", "solo"} {
		if _, err := h.sup.WaitFor(ctx, a, func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
			t.Fatal(err)
		}
	}
	alice := signIn(t, h, "alice", "alice-pw", TaskResource(h.Issuer())).AccessToken

	const (
		front = "spiffe://test.local/agent/front"
		lead  = "spiffe://test.local/agent/lead"
	)
	var (
		allEvents []localapi.TaskEvent
		allTokens []string
	)
	run := func(req localapi.TaskRequest, onEvent func(localapi.TaskEvent)) (final, failure string, events []localapi.TaskEvent) {
		t.Helper()
		err := h.RunTask(ctx, req, func(ev localapi.TaskEvent) error {
			events = append(events, ev)
			switch ev.Type {
			case "final":
				final = ev.Text
			case "error":
				failure = ev.Text
			}
			if onEvent != nil {
				onEvent(ev)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("task %s %q: %v", req.Agent, req.Input, err)
		}
		allEvents = append(allEvents, events...)
		return final, failure, events
	}
	check := func(name string, seen []remoteSeen, agent, subject string, act ...string) {
		t.Helper()
		if len(seen) != 1 || seen[0].agent != agent || seen[0].subject != subject || seen[0].client != front ||
			!slices.Equal(seen[0].act, act) || !slices.Equal(seen[0].audience, []string{remote.agentURL(agent)}) {
			t.Errorf("%s: the remote saw %+v, want one task of %s for %s, client %s, act %v, aud %s",
				name, seen, agent, subject, front, act, remote.agentURL(agent))
		}
	}

	// alice → lead → front → worker, acting as alice.
	final, failure, _ := run(localapi.TaskRequest{Agent: "lead", Input: "front worker hello", AccessToken: alice}, nil)
	if final != "front said: worker said: research found the papers for alice" || failure != "" {
		t.Errorf("delegated to the remote: %q %q", final, failure)
	}
	seen, tokens, grants := remote.take()
	allTokens = append(allTokens, tokens...)
	check("as alice", seen, "research", "alice", front, lead)
	if grants != 1 || len(tokens) != 1 {
		t.Errorf("as alice: %d token requests at the remote's server, %d calls", grants, len(tokens))
	}

	// The same again: the card, the server's metadata and the token are
	// kept.
	run(localapi.TaskRequest{Agent: "lead", Input: "front worker hello", AccessToken: alice}, nil)
	seen, tokens, grants = remote.take()
	allTokens = append(allTokens, tokens...)
	check("as alice, again", seen, "research", "alice", front, lead)
	if grants != 0 {
		t.Errorf("as alice, again: %d token requests", grants)
	}

	// acting_as agent: front's own authority, with alice's token too.
	final, _, _ = run(localapi.TaskRequest{Agent: "front", Input: "worker-agent hello", AccessToken: alice}, nil)
	seen, tokens, _ = remote.take()
	allTokens = append(allTokens, tokens...)
	check("acting_as agent", seen, "research", front)
	if final != "worker-agent said: research found the papers for "+front {
		t.Errorf("acting_as agent: %q", final)
	}
	// No user's token (the operator names alice): front's own authority.
	run(localapi.TaskRequest{Agent: "front", Input: "worker hello", Subject: "alice"}, nil)
	seen, tokens, _ = remote.take()
	allTokens = append(allTokens, tokens...)
	check("operator's task", seen, "research", front)

	// A card signed by kid with a JWT authority of the bundle.
	final, failure, _ = run(localapi.TaskRequest{Agent: "front", Input: "keyed hello", AccessToken: alice}, nil)
	seen, tokens, _ = remote.take()
	allTokens = append(allTokens, tokens...)
	check("card signed by kid", seen, "keyed", "alice", front)
	if final != "keyed said: keyed found the papers for alice" || failure != "" {
		t.Errorf("card signed by kid: %q %q", final, failure)
	}

	// Refused cards: the call fails naming the remote and why, and
	// nothing reaches the remote agent, not even a token request.
	for _, tc := range []struct{ remote, want string }{
		{"tampered", "a2acard: the card signature does not verify"},
		{"foreign", "a2acard: the card is signed by an unknown key: the x5c chain"},
	} {
		_, failure, _ := run(localapi.TaskRequest{Agent: "front", Input: tc.remote + " hello", AccessToken: alice}, nil)
		for _, w := range []string{"remote agent " + tc.remote + ": its card at " + remote.agentURL(tc.remote) + "/.well-known/agent-card.json is refused", tc.want} {
			if !strings.Contains(failure, w) {
				t.Errorf("%s: the failure %q does not say %q", tc.remote, failure, w)
			}
		}
		if seen, tokens, grants := remote.take(); len(seen) != 0 || len(tokens) != 0 || grants != 0 {
			t.Errorf("%s: the remote saw %v, %d calls, %d token requests", tc.remote, seen, len(tokens), grants)
		}
	}

	// The remote's authorization server refuses the exchange: the call
	// fails naming the remote, the server and its error, and the remote
	// agent is not called.
	_, failure, _ = run(localapi.TaskRequest{Agent: "solo", Input: "worker hello", AccessToken: alice}, nil)
	if want := "remote agent worker: its authorization server " + remote.url + " refused the token exchange: invalid_client"; !strings.Contains(failure, want) {
		t.Errorf("refused exchange: %q does not say %q", failure, want)
	}
	if seen, tokens, grants := remote.take(); len(seen) != 0 || len(tokens) != 0 || grants != 1 {
		t.Errorf("refused exchange: the remote saw %v, %d calls, %d token requests", seen, len(tokens), grants)
	}

	// An approval the remote asks for mid-task: surfaced with its URL on
	// the task's stream; the task goes on once given.
	var approvals []localapi.TaskEvent
	final, failure, _ = run(localapi.TaskRequest{Agent: "lead", Input: "front worker approve", AccessToken: alice}, func(ev localapi.TaskEvent) {
		if ev.Type == "approval" {
			if approvals = append(approvals, ev); len(approvals) == 1 {
				close(remote.release)
			}
		}
	})
	if len(approvals) != 1 || approvals[0].URL != "https://remote.example/approve/7" ||
		!strings.HasPrefix(approvals[0].Text, "remote agent worker: Approve the trip to Lisbon") || approvals[0].TaskID == "" || approvals[0].Txn == "" {
		t.Errorf("approval events %+v", approvals)
	}
	if final != "front said: worker said: the trip is booked" || failure != "" {
		t.Errorf("approved remote task: %q %q", final, failure)
	}
	_, tokens, _ = remote.take()
	allTokens = append(allTokens, tokens...)

	// A task that stops in auth-required: surfaced, waited for, then
	// the call fails saying so.
	approvals = nil
	_, failure, _ = run(localapi.TaskRequest{Agent: "front", Input: "worker signin", AccessToken: alice}, func(ev localapi.TaskEvent) {
		if ev.Type == "approval" {
			approvals = append(approvals, ev)
		}
	})
	if len(approvals) != 1 || approvals[0].URL != "https://remote.example/signin" {
		t.Errorf("auth-required: approval events %+v", approvals)
	}
	if !strings.Contains(failure, "remote agent worker still needs authorization") || !strings.Contains(failure, "https://remote.example/signin") {
		t.Errorf("auth-required: %q", failure)
	}
	_, tokens, _ = remote.take()
	allTokens = append(allTokens, tokens...)

	// input-required and failed tasks fail the call with the remote's
	// words.
	for input, want := range map[string]string{
		"ask":  "remote agent worker asked for input (remote task ",
		"fail": "remote agent worker: its task ",
	} {
		_, failure, _ := run(localapi.TaskRequest{Agent: "front", Input: "worker " + input, AccessToken: alice}, nil)
		if !strings.Contains(failure, want) || (input == "ask" && !strings.Contains(failure, "Which city?")) ||
			(input == "fail" && !strings.Contains(failure, "failed: no seats left")) {
			t.Errorf("%s: %q", input, failure)
		}
	}
	_, tokens, _ = remote.take()
	allTokens = append(allTokens, tokens...)

	// A 401 with a challenge: the host finds the server again from the
	// challenge's metadata, asks for a new token, and calls once more.
	remote.refuseNext.Store(true)
	final, failure, _ = run(localapi.TaskRequest{Agent: "front", Input: "worker hello", AccessToken: alice}, nil)
	seen, tokens, grants = remote.take()
	allTokens = append(allTokens, tokens...)
	if final != "worker said: research found the papers for alice" || failure != "" || len(tokens) != 2 || grants != 1 || len(seen) != 1 {
		t.Errorf("after a 401: %q %q, %d calls, %d token requests", final, failure, len(tokens), grants)
	}

	// The remote tasks are audited with their ids, states and the hash
	// of the token each call carried; no token is in the log.
	entries, err := audit.Read(ctx, syncedStore(t, h), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	for _, tok := range allTokens {
		refs[audit.TokenRef(tok)] = true
	}
	states := map[string]int{}
	for _, e := range entries {
		r := e.Record
		if r.Action != actionRemoteTask {
			continue
		}
		_, state, _ := strings.Cut(strings.TrimPrefix(r.Reason, "remote task "), " ")
		states[state]++
		if r.Agent != "front" || r.Task == "" || r.Txn == "" || !refs[r.TokenSHA256] || !strings.HasPrefix(r.Resource, remote.url+"/a2a/") {
			t.Errorf("remote task record %+v", r)
		}
	}
	if states["completed"] != 7 || states["auth-required"] != 1 || states["input-required"] != 1 || states["failed"] != 1 {
		t.Errorf("remote task records by state: %v", states)
	}
	raw, _ := json.Marshal(entries)
	for _, tok := range append(allTokens, alice) {
		if strings.Contains(string(raw), tok) {
			t.Fatal("a token is in the audit log")
		}
	}

	// No token reached the plugins: what they sent is in the events,
	// and what they got from CallAgent is in their answers and errors.
	evs, _ := json.Marshal(allEvents)
	if jwtPattern.Match(evs) {
		t.Errorf("a JWT reached a task's events: %s", jwtPattern.Find(evs))
	}
	for _, tok := range allTokens {
		if tok == "" || strings.Contains(string(evs), tok) {
			t.Fatalf("a token the remote got reached a task's events (or a call carried none)")
		}
	}
}

// TestA2ARemoteWorkloadProof: a remote configured with workload_proof
// gets the calling agent's WIT and a proof of it with each call, in the
// configured form, and verifies them against the host's trust domain; a
// remote without it gets neither.
func TestA2ARemoteWorkloadProof(t *testing.T) {
	for _, proof := range []config.WorkloadProof{config.ProofWPT, config.ProofHTTPSignature} {
		t.Run(string(proof), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			remote := newRemoteA2A(t)
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t)
			cfg.Auth.AllowPrivateFetch = true
			cfg.A2A.Proof = proof
			cfg.A2A.Remotes = []config.A2ARemoteConfig{
				{Name: "worker", URL: remote.agentURL("research"), TrustDomain: remoteTD, BundleFile: remote.bundleFile},
				{Name: "proved", URL: remote.agentURL("research"), TrustDomain: remoteTD, BundleFile: remote.bundleFile,
					WorkloadProof: true},
			}
			cfg.Agents = []config.AgentConfig{{Name: "front", Path: exe, CallAgents: []string{"worker", "proved"},
				Env: map[string]string{testAgentEnv: "caller"}}}
			h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
			remote.serve(t, h)
			if _, err := h.sup.WaitFor(ctx, "front", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
				t.Fatal(err)
			}
			for _, target := range []string{"worker", "proved"} {
				final, failure, err := taskAnswer(ctx, h, "front", target+" find the papers")
				if err != nil || failure != "" || final == "" {
					t.Fatalf("call of %s: %q %q %v", target, final, failure, err)
				}
			}
			remote.mu.Lock()
			proofs := append([]string(nil), remote.proofs...)
			remote.mu.Unlock()
			if len(proofs) != 2 || proofs[0] != "" || proofs[1] != "spiffe://test.local/agent/front" {
				t.Fatalf("the remote saw workload proofs %q, want none then front's", proofs)
			}
		})
	}
}
