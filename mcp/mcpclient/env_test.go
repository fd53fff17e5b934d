package mcpclient_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpgoserver "github.com/mark3labs/mcp-go/server"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpclient"
)

const (
	agentID = "spiffe://example.org/agent/research"
	userID  = "spiffe://example.org/agent/alice"
	prmPath = "/.well-known/oauth-protected-resource/mcp"
)

var allScopes = []string{"tools:read", "tools:call"}

// envOpts shapes the test world.
type envOpts struct {
	// agentScopes are the research agent's scopes at the AS; default
	// allScopes.
	agentScopes []string
	// challengeScopes go into the server's 401 challenge; default
	// allScopes.
	challengeScopes []string
	// needScope is what tools/call requires; default tools:call.
	needScope string
	// stepUpScope is what the 403 challenge names; default needScope.
	stepUpScope string
	// dpopKey, when set, binds the research agent's tokens to it and
	// makes the server accept DPoP-bound tokens.
	dpopKey *ecdsa.PrivateKey
	// dpop makes the MCP server take DPoP-bound tokens (a DPoP
	// challenge, proofs verified with a replay cache); rsNonce makes it
	// require its own nonces in proofs as well.
	dpop, rsNonce bool
	// asNonce makes the authorization server require nonces in token
	// request proofs; asWithoutDPoP leaves
	// dpop_signing_alg_values_supported out of its metadata.
	asNonce, asWithoutDPoP bool
}

// env is an embedded authorization server and an MCP server protected
// by a resource.Verifier that trusts it, both on httptest servers.
type env struct {
	t       testing.TB
	opts    envOpts
	ca      *ca.CA
	as      *authserver.Server
	asMD    *oauth.ServerMetadata
	mcpURL  string
	prmURL  string
	srvURL  string
	fetcher *fetch.Fetcher
	v       *resource.Verifier

	// prm is served at prmURL unless prmHandler is set.
	prm        oauth.ResourceMetadata
	prmHandler http.Handler

	tokenRequests atomic.Int32 // at the AS token endpoint
	ownAuthority  atomic.Int32 // client_credentials requests among them
	mcpRequests   atomic.Int32 // at the MCP endpoint
	unauthorized  atomic.Int32 // 401s sent by the MCP endpoint
	forbidden     atomic.Int32 // 403s sent by the MCP endpoint
	// rejectNext answers this many token-carrying requests with 401
	// invalid_token before they reach the verifier.
	rejectNext atomic.Int32
	// redirectTo, when set, answers token-carrying requests with a 307
	// to it.
	redirectTo atomic.Value

	mu sync.Mutex
	// seen are the token-carrying requests at the MCP endpoint.
	seen []seenRequest
	// tokenProofs counts token requests that carried a DPoP proof.
	tokenProofs atomic.Int32
}

// seenRequest is what the MCP endpoint got with a token.
type seenRequest struct {
	method, authorization string
	proofs                []string
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if o.agentScopes == nil {
		o.agentScopes = allScopes
	}
	if o.challengeScopes == nil {
		o.challengeScopes = allScopes
	}
	if o.needScope == "" {
		o.needScope = "tools:call"
	}
	if o.stepUpScope == "" {
		o.stepUpScope = o.needScope
	}
	ctx := context.Background()
	e := &env{t: t, opts: o}
	var err error
	e.ca, err = ca.New(ctx, ca.Config{TrustDomain: "spiffe://example.org", Journal: &ca.MemoryJournal{}})
	if err != nil {
		t.Fatal(err)
	}

	var mcpHandler http.Handler = http.NotFoundHandler()
	mcpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mcpHandler.ServeHTTP(w, r) }))
	t.Cleanup(mcpSrv.Close)
	e.srvURL = mcpSrv.URL
	e.mcpURL = mcpSrv.URL + "/mcp"
	e.prmURL = mcpSrv.URL + prmPath

	var asHandler http.Handler
	asSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == authserver.PathToken {
			e.tokenRequests.Add(1)
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if f, err := url.ParseQuery(string(body)); err == nil && f.Get("grant_type") == oauth.GrantClientCredentials {
				e.ownAuthority.Add(1)
			}
			if r.Header.Get("DPoP") != "" {
				e.tokenProofs.Add(1)
			}
		}
		if o.asWithoutDPoP && (strings.Contains(r.URL.Path, "oauth-authorization-server") || strings.Contains(r.URL.Path, "openid-configuration")) {
			rec := httptest.NewRecorder()
			asHandler.ServeHTTP(rec, r)
			var md map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &md); err == nil {
				delete(md, "dpop_signing_alg_values_supported")
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(md)
			return
		}
		asHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(asSrv.Close)
	e.as, err = authserver.New(ctx, authserver.Config{
		Issuer: asSrv.URL, Store: authserver.NewMemoryStore(nil), TrustDomain: "example.org", SVIDs: e.ca,
		Agents: []authserver.AgentClient{
			{ID: credentials.MustParseIdentity(agentID), Scopes: o.agentScopes},
			{ID: credentials.MustParseIdentity(userID), Scopes: allScopes},
		},
		Resources:        []authserver.Resource{{URI: e.mcpURL, Scopes: allScopes}},
		RequireDPoPNonce: o.asNonce,
	})
	if err != nil {
		t.Fatal(err)
	}
	asHandler = e.as.Handler()
	e.fetcher = fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true})
	e.asMD, err = oauth.DiscoverServer(ctx, e.fetcher, asSrv.URL)
	if err != nil {
		t.Fatal(err)
	}

	var dv *dpop.Verifier
	if o.dpopKey != nil || o.dpop || o.rsNonce {
		vc := dpop.VerifierConfig{Replay: dpop.NewMemoryReplayCache(nil)}
		if o.rsNonce {
			key := make([]byte, dpop.MinNonceKeySize)
			if _, err := rand.Read(key); err != nil {
				t.Fatal(err)
			}
			if vc.Nonces, err = dpop.NewHMACNonces(key, 0, nil); err != nil {
				t.Fatal(err)
			}
		}
		if dv, err = dpop.NewVerifier(vc); err != nil {
			t.Fatal(err)
		}
	}
	e.v, err = resource.New(resource.Config{
		Resource: e.mcpURL, MetadataURL: e.prmURL, Issuer: asSrv.URL, Keys: e.as.Keys(),
		ScopesSupported: o.challengeScopes, DPoP: dv,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.prm = oauth.ResourceMetadata{Resource: e.mcpURL, AuthorizationServers: []string{asSrv.URL}, ScopesSupported: allScopes}

	ms := mcpgoserver.NewMCPServer("test", "1.0.0", mcpgoserver.WithToolCapabilities(false))
	ms.AddTool(mcpgo.NewTool("whoami", mcpgo.WithDescription("Says who called."), mcpgo.WithString("msg")),
		func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			c, ok := resource.CallerFrom(ctx)
			if !ok {
				return mcpgo.NewToolResultError("no caller"), nil
			}
			act := ""
			if c.Actor != nil {
				act = c.Actor.Subject
			}
			return mcpgo.NewToolResultText("sub=" + c.Subject + " act=" + act + " msg=" + req.GetString("msg", "")), nil
		})
	ms.AddTool(mcpgo.NewTool("binding", mcpgo.WithDescription("Says what the caller's token is bound to.")),
		func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			c, ok := resource.CallerFrom(ctx)
			if !ok {
				return mcpgo.NewToolResultError("no caller"), nil
			}
			return mcpgo.NewToolResultText("sub=" + c.Subject + " jkt=" + c.JKT), nil
		})
	ms.AddTool(mcpgo.NewTool("fail", mcpgo.WithDescription("Always fails.")),
		func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return mcpgo.NewToolResultError("boom"), nil
		})
	streamable := mcpgoserver.NewStreamableHTTPServer(ms,
		mcpgoserver.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			if c, ok := resource.CallerFrom(r.Context()); ok {
				return resource.WithCaller(ctx, c)
			}
			return ctx
		}))

	// gate answers tools/call without needScope with a step-up challenge.
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &msg)
		c, _ := resource.CallerFrom(r.Context())
		if msg.Method == "tools/call" && (c == nil || !c.HasScope(o.needScope)) {
			e.v.InsufficientScope(o.stepUpScope).Write(w)
			return
		}
		streamable.ServeHTTP(w, r)
	})
	protected := e.v.Middleware(gate)
	mux := http.NewServeMux()
	mux.Handle(prmPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.prmHandler != nil {
			e.prmHandler.ServeHTTP(w, r)
			return
		}
		resource.MetadataHandler(e.prm).ServeHTTP(w, r)
	}))
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mcpRequests.Add(1)
		if a := r.Header.Get("Authorization"); a != "" {
			e.mu.Lock()
			e.seen = append(e.seen, seenRequest{method: r.Method, authorization: a, proofs: r.Header.Values("DPoP")})
			e.mu.Unlock()
		}
		if to, _ := e.redirectTo.Load().(string); to != "" && r.Header.Get("Authorization") != "" {
			http.Redirect(w, r, to, http.StatusTemporaryRedirect)
			return
		}
		if r.Header.Get("Authorization") != "" && e.rejectNext.Load() > 0 {
			e.rejectNext.Add(-1)
			(&resource.Challenge{Status: http.StatusUnauthorized, Code: oauth.CodeInvalidToken,
				Description: "the access token was revoked", ResourceMetadata: e.prmURL}).Write(w)
			e.unauthorized.Add(1)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		protected.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusUnauthorized:
			e.unauthorized.Add(1)
		case http.StatusForbidden:
			e.forbidden.Add(1)
		}
	}))
	mcpHandler = mux
	return e
}

// statusRecorder notes the status code written.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// tokens is an oauth.Client authenticating as id with JWT-SVIDs.
func (e *env) tokens(id string) *oauth.Client {
	return e.tokensWithKeys(id, nil)
}

// tokensWithKeys is tokens with DPoP keys (nil: for the research agent,
// envOpts.dpopKey if set, else none).
func (e *env) tokensWithKeys(id string, keys *dpop.Keys) *oauth.Client {
	e.t.Helper()
	sid := spiffeid.RequireFromString(id)
	cfg := oauth.ClientConfig{
		ClientID: id,
		Assertion: func(ctx context.Context, aud string) (string, error) {
			tok, _, err := e.ca.NewJWTSVID(ctx, sid, []string{aud})
			return tok, err
		},
		DPoPKeys: keys,
	}
	if keys == nil && id == agentID && e.opts.dpopKey != nil {
		cfg.DPoPKey = e.opts.dpopKey
	}
	c, err := oauth.NewClient(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// client is the research agent's MCP client for the env's server.
func (e *env) client() *mcpclient.Client {
	return e.clientWith(e.tokens(agentID))
}

// clientWith is an MCP client for the env's server getting its tokens
// from tokens.
func (e *env) clientWith(tokens *oauth.Client) *mcpclient.Client {
	e.t.Helper()
	c, err := mcpclient.New(mcpclient.Config{URL: e.mcpURL, Tokens: tokens, Fetcher: e.fetcher})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// userToken is an access token of the user agent, issued for the
// research agent, to stand in for a user's token.
func (e *env) userToken() string {
	e.t.Helper()
	tok, err := e.tokens(userID).Token(context.Background(),
		oauth.TokenRequest{Server: e.asMD, Resource: agentID, Scopes: allScopes})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok.AccessToken
}

func toolNames(tools []mcpclient.Tool) []string {
	var out []string
	for _, t := range tools {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return out
}

// takeSeen returns and forgets the token-carrying requests seen so far.
func (e *env) takeSeen() []seenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.seen
	e.seen = nil
	return out
}
