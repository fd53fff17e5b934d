package a2aserver_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2aclient"
	"github.com/a2aproject/a2a-go/a2aclient/agentcard"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/a2a/a2aserver"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

const (
	issuer     = "https://as.example"
	asKID      = "as-1"
	cardKID    = "research-card-1"
	scopeAgent = "agent:call"
)

// fixture is a Server over real HTTP (httptest) with two agents,
// research and payments, tokens minted by a test authorization server key
// and a scripted Runner.
type fixture struct {
	t       testing.TB
	asKey   *ecdsa.PrivateKey
	cardKey *ecdsa.PrivateKey
	http    *httptest.Server
	srv     *a2aserver.Server
	runner  *scriptRunner
}

// fixtureOption adjusts the Config before the server is built.
type fixtureOption func(*fixture, *a2aserver.Config)

func newFixture(t testing.TB, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{t: t, runner: newScriptRunner()}
	f.asKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.cardKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	f.http = httptest.NewServer(mux)
	t.Cleanup(f.http.Close)
	keys := jose.StaticKeys(map[string]crypto.PublicKey{asKID: f.asKey.Public()})
	cfg := a2aserver.Config{
		BaseURL: f.http.URL,
		Agents: []a2acard.AgentInfo{
			{Name: "research", Description: "Finds papers", Version: "1.0.0", Scopes: []string{scopeAgent},
				Skills: []a2acard.Skill{{ID: "search", Name: "Search", Description: "Searches papers", Tags: []string{"papers"}}}},
			{Name: "payments", Description: "Pays invoices"},
		},
		Runner: f.runner,
		Authenticator: func(agent, resourceURL, metadataURL string) (a2aserver.Authenticator, error) {
			return resource.New(resource.Config{Resource: resourceURL, MetadataURL: metadataURL, Issuer: issuer,
				Keys: keys, ScopesSupported: []string{scopeAgent}})
		},
		AuthServer: &oauth.ServerMetadata{Issuer: issuer, TokenEndpoint: issuer + "/token", AuthorizationEndpoint: issuer + "/authorize"},
		CardKey: func(_ context.Context, agent string) (a2acard.Key, error) {
			return a2acard.Key{Signer: f.cardKey, KID: agent + "-card-1"}, nil
		},
		MaxBodyBytes: 64 << 10,
	}
	for _, o := range opts {
		o(f, &cfg)
	}
	srv, err := a2aserver.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.Mount(mux)
	f.srv = srv
	return f
}

func (f *fixture) agentURL(agent string) string { return f.http.URL + "/a2a/" + agent }

func (f *fixture) cardKeys() jose.KeyFunc {
	return jose.StaticKeys(map[string]crypto.PublicKey{"research-card-1": f.cardKey.Public(), "payments-card-1": f.cardKey.Public()})
}

// token mints a JWT access token for agent as the subject sub of client
// cli, with the agent scope; mutate adjusts the claims.
func (f *fixture) token(agent, sub, cli string, mutate ...func(*oauth.AccessTokenClaims)) string {
	f.t.Helper()
	now := time.Now()
	jti := make([]byte, 8)
	_, _ = rand.Read(jti)
	c := oauth.AccessTokenClaims{Issuer: issuer, Subject: sub, Audience: oauth.Audience{f.agentURL(agent)}, ClientID: cli,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(5 * time.Minute).Unix(), ID: hex.EncodeToString(jti), Scope: scopeAgent,
		Actor: &oauth.Actor{Subject: "spiffe://td/agent/assistant"}}
	for _, m := range mutate {
		m(&c)
	}
	tok, err := jose.Sign(context.Background(), f.asKey, asKID, jose.TypAccessToken, c)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// headers is an a2aclient interceptor that adds fixed headers.
type headers struct {
	a2aclient.PassthroughInterceptor
	h map[string]string
}

func (h headers) Before(ctx context.Context, req *a2aclient.Request) (context.Context, error) {
	for k, v := range h.h {
		req.Meta[k] = []string{v}
	}
	return ctx, nil
}

// client is an a2a-go client for agent from its card (fetched with
// a2a-go's resolver), presenting tok and the extra headers kv (name,
// value pairs).
func (f *fixture) client(agent, tok string, kv ...string) *a2aclient.Client {
	f.t.Helper()
	ctx := context.Background()
	card, err := agentcard.NewResolver(f.http.Client()).Resolve(ctx, f.agentURL(agent))
	if err != nil {
		f.t.Fatal(err)
	}
	h := headers{h: map[string]string{}}
	if tok != "" {
		h.h["Authorization"] = "Bearer " + tok
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.h[kv[i]] = kv[i+1]
	}
	cl, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(f.http.Client()), a2aclient.WithInterceptors(h))
	if err != nil {
		f.t.Fatal(err)
	}
	return cl
}

// pollingClient is client with non-blocking message/send.
func (f *fixture) pollingClient(agent, tok string) *a2aclient.Client {
	f.t.Helper()
	ctx := context.Background()
	card, err := agentcard.NewResolver(f.http.Client()).Resolve(ctx, f.agentURL(agent))
	if err != nil {
		f.t.Fatal(err)
	}
	cl, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(f.http.Client()),
		a2aclient.WithConfig(a2aclient.Config{Polling: true}),
		a2aclient.WithInterceptors(headers{h: map[string]string{"Authorization": "Bearer " + tok}}))
	if err != nil {
		f.t.Fatal(err)
	}
	return cl
}

func text(s string) *a2a.MessageSendParams {
	return &a2a.MessageSendParams{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: s})}
}

// waitState polls tasks/get until the task is in state.
func waitState(t testing.TB, cl *a2aclient.Client, id a2a.TaskID, state a2a.TaskState) *a2a.Task {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		task, err := cl.GetTask(context.Background(), &a2a.TaskQueryParams{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if task.Status.State == state {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s is %s, want %s", id, task.Status.State, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// artifactText joins the text of a task's artifacts.
func artifactText(task *a2a.Task) string {
	var b strings.Builder
	for _, a := range task.Artifacts {
		for _, p := range a.Parts {
			if tp, ok := p.(a2a.TextPart); ok {
				b.WriteString(tp.Text)
			}
		}
	}
	return b.String()
}

func statusText(st a2a.TaskStatus) string {
	if st.Message == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range st.Message.Parts {
		if tp, ok := p.(a2a.TextPart); ok {
			b.WriteString(tp.Text)
		}
	}
	return b.String()
}

// scriptRunner is the test Runner; what it does depends on the input:
//
//	hello    streams "Hel", "lo", then answers "Hello, <sub>"
//	chunks   streams "a", "b" and answers ""
//	approve  asks for an approval, waits for release, answers "approved"
//	approve-then-stream  the same, then streams "paid"
//	block    waits for its context to end
//	ask      asks a question unless the task has history
//	fail     fails with an internal error
//	denied   fails with a message for the client
//	needauth ends in auth-required
//	anything else is echoed
type scriptRunner struct {
	mu       sync.Mutex
	requests []*a2aserver.Request
	started  chan string
	release  chan struct{}
	canceled chan string
}

func newScriptRunner() *scriptRunner {
	return &scriptRunner{started: make(chan string, 16), release: make(chan struct{}), canceled: make(chan string, 16)}
}

func (r *scriptRunner) last() *a2aserver.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.requests) == 0 {
		return nil
	}
	return r.requests[len(r.requests)-1]
}

func (r *scriptRunner) Run(ctx context.Context, req *a2aserver.Request, emit func(a2aserver.Event) error) (string, error) {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.mu.Unlock()
	switch req.Input {
	case "hello":
		for _, c := range []string{"Hel", "lo"} {
			if err := emit(a2aserver.Event{Kind: a2aserver.EventText, Text: c}); err != nil {
				return "", err
			}
		}
		return "Hello, " + req.Caller.Subject, nil
	case "chunks":
		_ = emit(a2aserver.Event{Kind: a2aserver.EventStatus, Text: "thinking"})
		_ = emit(a2aserver.Event{Kind: a2aserver.EventText, Text: "a"})
		_ = emit(a2aserver.Event{Kind: a2aserver.EventText, Text: "b"})
		return "", nil
	case "approve":
		if err := emit(a2aserver.Event{Kind: a2aserver.EventApproval, Text: "Approve the transfer of 3 EUR", URL: "https://as.example/approve/42"}); err != nil {
			return "", err
		}
		r.started <- req.TaskID
		select {
		case <-r.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return "approved", nil
	case "approve-then-stream":
		if err := emit(a2aserver.Event{Kind: a2aserver.EventApproval, URL: "https://as.example/approve/43"}); err != nil {
			return "", err
		}
		r.started <- req.TaskID
		<-r.release
		if err := emit(a2aserver.Event{Kind: a2aserver.EventText, Text: "paid"}); err != nil {
			return "", err
		}
		return "", nil
	case "block":
		r.started <- req.TaskID
		<-ctx.Done()
		r.canceled <- req.TaskID
		return "", ctx.Err()
	case "ask":
		if len(req.History) == 0 {
			return "", a2aserver.InputRequired("Which paper?")
		}
		return "found " + req.Input, nil
	case "fail":
		return "", errors.New("secret internal detail")
	case "denied":
		return "", a2aserver.Failed("denied by policy")
	case "needauth":
		return "", a2aserver.AuthRequired("Sign in to the bank", "https://bank.example/login")
	}
	if len(req.History) > 0 {
		return "continued with " + req.Input, nil
	}
	return req.Input, nil
}
