package host

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/mcp/mcpbare"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// The remote's authorization server here is zitadel/oidc's OpenID Provider
// (op), an implementation written elsewhere, configured as a deployment
// would configure it to trust the host:
//
//   - client authentication: op takes private_key_jwt assertions only, and
//     checks them as RFC 7523 assertions with iss = sub; a JWT-SVID has no
//     iss. The op.Server below verifies the assertion as OAuth SPIFFE client
//     authentication does (a JWT-SVID of the host's trust domain, sole
//     audience the issuer, sub = client_id) and takes everything else from
//     op's LegacyServer;
//   - token exchange: op's TokenExchangeTokensVerifierStorage verifies the
//     subject token with op's own access token verifier and the host's
//     published JWK Set (iss = the host), the actor token as a JWT-SVID;
//     the storage's policy wants the subject token addressed to the client
//     and the actor to be the client, caps the scope by the subject
//     token's, and nests act;
//   - op takes aud from the audience parameter only: the server maps the
//     RFC 8707 resource the host sends onto it.

// zitadelAS is an op-based authorization server trusting the host h.
type zitadelAS struct {
	*storage.Storage
	h        *Host
	issuer   string
	hostKeys oidc.KeySet

	mu     sync.Mutex
	grants map[string]int
}

// zitadelClient is a hosted agent as op's client: private_key_jwt (its
// JWT-SVID), token exchange only, JWT access tokens.
type zitadelClient struct{ id string }

func (c zitadelClient) GetID() string                      { return c.id }
func (zitadelClient) RedirectURIs() []string               { return nil }
func (zitadelClient) PostLogoutRedirectURIs() []string     { return nil }
func (zitadelClient) ApplicationType() op.ApplicationType  { return op.ApplicationTypeWeb }
func (zitadelClient) AuthMethod() oidc.AuthMethod          { return oidc.AuthMethodPrivateKeyJWT }
func (zitadelClient) ResponseTypes() []oidc.ResponseType   { return nil }
func (zitadelClient) LoginURL(string) string               { return "" }
func (zitadelClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (zitadelClient) IDTokenLifetime() time.Duration       { return time.Minute }
func (zitadelClient) DevMode() bool                        { return false }
func (zitadelClient) IsScopeAllowed(scope string) bool     { return scope == "docs:read" }
func (zitadelClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (zitadelClient) ClockSkew() time.Duration             { return 0 }
func (zitadelClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeTokenExchange}
}
func (zitadelClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (zitadelClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// GetClientByClientID knows the host's agents.
func (z *zitadelAS) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	for _, aid := range z.h.agentIDs {
		if aid.String() == id {
			return zitadelClient{id: id}, nil
		}
	}
	return z.Storage.GetClientByClientID(ctx, id)
}

// VerifyExchangeSubjectToken accepts access tokens of the host's issuer,
// checked with op's verifier and the host's JWK Set.
func (z *zitadelAS) VerifyExchangeSubjectToken(ctx context.Context, token string, typ oidc.TokenType) (string, string, map[string]any, error) {
	if typ != oidc.AccessTokenType {
		return "", "", nil, errors.New("only access tokens")
	}
	c, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, op.NewAccessTokenVerifier(z.h.Issuer(), z.hostKeys))
	if err != nil {
		return "", "", nil, err
	}
	claims, err := jwtClaims(token)
	if err != nil {
		return "", "", nil, err
	}
	return c.JWTID, c.Subject, claims, nil
}

// VerifyExchangeActorToken accepts JWT-SVIDs of the host's trust domain
// addressed to this server alone.
func (z *zitadelAS) VerifyExchangeActorToken(ctx context.Context, token string, typ oidc.TokenType) (string, string, map[string]any, error) {
	if typ != oidc.JWTTokenType {
		return "", "", nil, errors.New("only JWT-SVIDs")
	}
	id, claims, err := z.h.CA().ValidateJWTSVID(ctx, token, z.issuer)
	if err != nil {
		return "", "", nil, err
	}
	return token, id.String(), claims, nil
}

// ValidateTokenExchangeRequest is the server's policy: the subject token
// was addressed to the client, the actor is the client, the scope is at
// most the subject token's.
func (z *zitadelAS) ValidateTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) error {
	sc := req.GetExchangeSubjectTokenClaims()
	var aud []string
	switch a := sc["aud"].(type) {
	case string:
		aud = []string{a}
	case []any:
		for _, v := range a {
			s, _ := v.(string)
			aud = append(aud, s)
		}
	}
	switch {
	case !slices.Contains(aud, req.GetClientID()):
		return oidc.ErrInvalidRequest().WithDescription("subject_token was not issued for this client")
	case req.GetExchangeActor() != req.GetClientID():
		return oidc.ErrInvalidRequest().WithDescription("the actor is not the client")
	}
	have, _ := sc["scope"].(string)
	var scopes []string
	want := req.GetScopes()
	for _, s := range strings.Fields(have) {
		if (len(want) == 0 || slices.Contains(want, s)) && s == "docs:read" {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) == 0 {
		return oidc.ErrInvalidScope().WithDescription("nothing the subject token allows")
	}
	req.SetCurrentScopes(scopes)
	if req.GetRequestedTokenType() == "" {
		req.SetRequestedTokenType(oidc.AccessTokenType)
	}
	return nil
}

// GetPrivateClaimsFromTokenExchangeRequest nests act: the actor, then the
// subject token's actors.
func (z *zitadelAS) GetPrivateClaimsFromTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) (map[string]any, error) {
	act := map[string]any{"sub": req.GetExchangeActor()}
	if prior, ok := req.GetExchangeSubjectTokenClaims()["act"]; ok {
		act["act"] = prior
	}
	return map[string]any{"act": act, "scope": strings.Join(req.GetScopes(), " ")}, nil
}

// zitadelServer is op's LegacyServer with SPIFFE client authentication and
// RFC 8707 resource as audience.
type zitadelServer struct {
	*op.LegacyServer
	z *zitadelAS
}

func (s zitadelServer) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	cc := r.Data
	if cc.ClientAssertionType != oidc.ClientAssertionTypeJWTAssertion || cc.ClientAssertion == "" {
		return nil, oidc.ErrInvalidClient().WithDescription("a JWT-SVID client assertion is required")
	}
	id, _, err := s.z.h.CA().ValidateJWTSVID(ctx, cc.ClientAssertion, s.z.issuer)
	if err != nil || (cc.ClientID != "" && cc.ClientID != id.String()) {
		return nil, oidc.ErrInvalidClient().WithDescription("the client assertion is not a valid JWT-SVID of the client")
	}
	return s.z.GetClientByClientID(ctx, id.String())
}

func (s zitadelServer) TokenExchange(ctx context.Context, r *op.ClientRequest[oidc.TokenExchangeRequest]) (*op.Response, error) {
	s.z.count(oidc.GrantTypeTokenExchange)
	if len(r.Data.Audience) == 0 {
		r.Data.Audience = oidc.Audience(r.Data.Resource)
	}
	return s.LegacyServer.TokenExchange(ctx, r)
}

func (s zitadelServer) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	s.z.count(oidc.GrantTypeClientCredentials)
	return s.LegacyServer.ClientCredentialsExchange(ctx, r)
}

func (z *zitadelAS) count(g oidc.GrantType) {
	z.mu.Lock()
	z.grants[string(g)]++
	z.mu.Unlock()
}

// jwtClaims decodes the payload of a JWT already verified.
func jwtClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}

// TestDelegationWithZitadelAS: alice → assistant → research → a remote MCP
// server whose authorization server is zitadel/oidc's op. The remote gets a
// token op issued by token exchange, with sub alice and act nested two deep
// (research, then assistant), verified with op's own access token verifier
// and keys; op was never asked for client_credentials.
func TestDelegationWithZitadelAS(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var late atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := late.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	endpoint := srv.URL + "/zdocs/mcp"

	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.Models = map[string]config.ModelConfig{"default": {Provider: config.ProviderOffline}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "zdocs", URL: endpoint, Tools: []string{mcpbare.ToolName}}}
	cfg.Agents = []config.AgentConfig{
		{Name: "research", Path: exampleAgent(t, "research"), Model: "default", Tools: []string{"zdocs/" + mcpbare.ToolName}, Scopes: []string{"docs:read"}},
		{Name: "assistant", Path: exampleAgent(t, "assistant"), CallAgents: []string{"research"}, Scopes: []string{"docs:read"}},
	}
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)

	z := &zitadelAS{Storage: storage.NewStorage(storage.NewUserStore(srv.URL)), h: h, issuer: srv.URL, grants: map[string]int{},
		hostKeys: rp.NewRemoteKeySet(http.DefaultClient, h.Issuer()+"/oauth2/jwks")}
	provider, err := op.NewProvider(&op.Config{CryptoKey: [32]byte{1, 2, 3}, AuthMethodPrivateKeyJWT: true, CodeMethodS256: true},
		z, op.StaticIssuer(srv.URL), op.WithAllowInsecure(), op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	asHandler := op.RegisterLegacyServer(zitadelServer{LegacyServer: op.NewLegacyServer(provider, *op.DefaultEndpoints), z: z},
		op.AuthorizeCallbackHandler(provider), op.WithFallbackLogger(slog.New(slog.DiscardHandler)))

	// The MCP server: the bare mcp-go server behind a bearer check with
	// op's verifier and keys, aud = the endpoint.
	verifier := op.NewAccessTokenVerifier(srv.URL, rp.NewRemoteKeySet(http.DefaultClient, srv.URL+"/keys"))
	prm := srv.URL + "/.well-known/oauth-protected-resource/zdocs/mcp"
	var mu sync.Mutex
	var seen []string
	mux := http.NewServeMux()
	mux.Handle("/.well-known/oauth-protected-resource/zdocs/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(oauth.ResourceMetadata{Resource: endpoint, AuthorizationServers: []string{srv.URL},
			ScopesSupported: []string{"docs:read"}, BearerMethodsSupported: []string{"header"}})
	}))
	bare := mcpbare.Handler()
	mux.Handle("/zdocs/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var claims map[string]any
		if ok {
			c, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](r.Context(), tok, verifier)
			if err == nil && slices.Contains([]string(c.Audience), endpoint) {
				claims, _ = jwtClaims(tok)
			}
		}
		if claims == nil {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata=%q, scope="docs:read"`, prm))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		if strings.Contains(string(body), `"tools/call"`) {
			act, _ := json.Marshal(claims["act"])
			mu.Lock()
			seen = append(seen, fmt.Sprintf("sub=%v scope=%v act=%s", claims["sub"], claims["scope"], act))
			mu.Unlock()
		}
		bare.ServeHTTP(w, r)
	}))
	mux.Handle("/", asHandler)
	var handler http.Handler = mux
	late.Store(&handler)

	waitAllRunning(ctx, t, dir, len(cfg.Agents))
	if _, err := oauth.DiscoverServer(ctx, fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true}), srv.URL); err != nil {
		t.Fatalf("discovery of op: %v", err)
	}
	alice := signIn(t, h, "alice", "alice-pw", TaskResource(h.Issuer())).AccessToken
	var final, failure string
	if err := h.RunTask(ctx, localapi.TaskRequest{Agent: "assistant", Input: "what time is it now at zdocs", AccessToken: alice},
		func(ev localapi.TaskEvent) error {
			switch ev.Type {
			case "final":
				final = ev.Text
			case "error":
				failure = ev.Text
			}
			return nil
		}); err != nil || failure != "" {
		t.Fatalf("task: %v %s", err, failure)
	}
	mu.Lock()
	defer mu.Unlock()
	want := `sub=alice scope=docs:read act={"act":{"client_id":"spiffe://test.local/agent/assistant","iss":"spiffe://test.local",` +
		`"sub":"spiffe://test.local/agent/assistant"},"sub":"spiffe://test.local/agent/research"}`
	if len(seen) != 1 || seen[0] != want {
		t.Fatalf("the remote saw %q, want [%q] (answer %q)", seen, want, final)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.grants[string(oidc.GrantTypeTokenExchange)] != 1 || z.grants[string(oidc.GrantTypeClientCredentials)] != 0 {
		t.Fatalf("op's token requests: %v", z.grants)
	}
}
