package host

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/agenthost/agenthost/credentials"
	ahjose "github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
	"github.com/agenthost/agenthost/mcp/mcpbare"
	"github.com/agenthost/agenthost/runtime/config"
)

// The authorization servers here are zitadel/oidc's OpenID Provider (op),
// an implementation written elsewhere, that knows nothing of the host's
// trust domain: no JWT-SVID is accepted, and the host's agents are
// clients of it the way any OAuth client can be one:
//
//   - a static client with a secret (client_secret_basic or _post): how a
//     caller outside the host gets tokens the host's resources take;
//   - a client ID metadata document (SPECS.md §11.5): a client_id that is
//     an https URL is resolved by fetching the document (trusting the
//     test certificate, no redirects, at most 5 KB, 200 and JSON only),
//     which must name that exact URL as its client_id; the client
//     authenticates with private_key_jwt, its keys read from the
//     document's jwks_uri. op verifies the assertion itself
//     (op.AuthorizePrivateJWTKey, with the storage's keys);
//   - a dynamically registered client (RFC 7591): op has no registration
//     endpoint, so the test adds one that keeps the client's metadata.
//
// op's client_credentials grant authenticates clients by secret only; the
// op.Server below takes private_key_jwt assertions for it too, and maps
// the RFC 8707 resource onto the token's audience (op takes aud from the
// audience parameter only).

// extAS is an op-based authorization server on srv, with room (mux) for
// the resources it protects.
type extAS struct {
	*storage.Storage
	t        *testing.T
	srv      *httptest.Server
	issuer   string
	provider *op.Provider
	mux      *http.ServeMux
	// fetch gets client ID metadata documents and JWK Sets.
	fetch *http.Client
	// scopes are the scopes any client may have.
	scopes []string
	// registration adds a registration endpoint.
	registration bool

	mu         sync.Mutex
	secrets    map[string]string
	registered map[string]registeredClient
	regCount   int
	fetched    []string
	// assertions are the client assertions and actor tokens presented
	// at the token endpoint.
	assertions []string
	actors     []string
}

type registeredClient struct {
	jwks    json.RawMessage
	jwksURI string
}

// newExtAS starts an op-based authorization server. roots are the
// certificates it trusts when fetching client documents (nil: none).
func newExtAS(t *testing.T, scopes []string, roots *x509.CertPool, registration bool) *extAS {
	t.Helper()
	z := &extAS{t: t, mux: http.NewServeMux(), scopes: scopes, registration: registration,
		secrets: map[string]string{}, registered: map[string]registeredClient{},
		fetch: &http.Client{Timeout: 5 * time.Second,
			Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	var handler http.Handler = http.NotFoundHandler()
	var ready sync.WaitGroup
	ready.Add(1)
	z.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ready.Wait()
		if r.Method == http.MethodPost && r.URL.Path == "/oauth/token" {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, err := url.ParseQuery(string(body)); err == nil {
				z.mu.Lock()
				if a := form.Get("client_assertion"); a != "" {
					z.assertions = append(z.assertions, a)
				}
				if a := form.Get("actor_token"); a != "" {
					z.actors = append(z.actors, a)
				}
				z.mu.Unlock()
			}
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(z.srv.Close)
	z.issuer = z.srv.URL
	z.Storage = storage.NewStorage(storage.NewUserStore(z.issuer))
	provider, err := op.NewProvider(&op.Config{CryptoKey: [32]byte{4, 5, 6}, AuthMethodPrivateKeyJWT: true, AuthMethodPost: true,
		CodeMethodS256: true}, z, op.StaticIssuer(z.issuer), op.WithAllowInsecure(), op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	z.provider = provider
	if registration {
		z.mux.HandleFunc("POST /register", z.register)
	}
	z.mux.Handle("/", op.RegisterLegacyServer(extServer{LegacyServer: op.NewLegacyServer(provider, *op.DefaultEndpoints), z: z},
		op.AuthorizeCallbackHandler(provider), op.WithFallbackLogger(slog.New(slog.DiscardHandler))))
	handler = z.mux
	ready.Done()
	return z
}

// extClient is a client of the extAS: client_credentials, JWT access
// tokens.
type extClient struct {
	id     string
	method oidc.AuthMethod
	scopes []string
}

func (c extClient) GetID() string                      { return c.id }
func (extClient) RedirectURIs() []string               { return nil }
func (extClient) PostLogoutRedirectURIs() []string     { return nil }
func (extClient) ApplicationType() op.ApplicationType  { return op.ApplicationTypeWeb }
func (c extClient) AuthMethod() oidc.AuthMethod        { return c.method }
func (extClient) ResponseTypes() []oidc.ResponseType   { return nil }
func (extClient) LoginURL(string) string               { return "" }
func (extClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (extClient) IDTokenLifetime() time.Duration       { return time.Minute }
func (extClient) DevMode() bool                        { return false }
func (c extClient) IsScopeAllowed(s string) bool       { return slices.Contains(c.scopes, s) }
func (extClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (extClient) ClockSkew() time.Duration             { return 0 }
func (extClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeClientCredentials}
}
func (extClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (extClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// addSecretClient registers a static client with a secret.
func (z *extAS) addSecretClient(id, secret string) {
	z.mu.Lock()
	z.secrets[id] = secret
	z.mu.Unlock()
}

// clientDocument is the part of a client ID metadata document the server
// reads.
type clientDocument struct {
	ClientID                string          `json:"client_id"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	JWKSURI                 string          `json:"jwks_uri"`
	JWKS                    json.RawMessage `json:"jwks"`
}

// get fetches rawURL: 200 and JSON only, no redirects, at most max bytes.
func (z *extAS) get(ctx context.Context, rawURL string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := z.fetch.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", rawURL, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("%s is %q, not JSON", rawURL, mt)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("%s exceeds %d bytes", rawURL, max)
	}
	return body, nil
}

// document resolves a URL-shaped client_id: the document it names, which
// must say that exact URL as its client_id and use private_key_jwt with
// a jwks_uri.
func (z *extAS) document(ctx context.Context, id string) (*clientDocument, error) {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "https" || u.Path == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client_id %q is not a client ID metadata document URL", id)
	}
	body, err := z.get(ctx, id, 5<<10)
	if err != nil {
		return nil, err
	}
	z.mu.Lock()
	z.fetched = append(z.fetched, id)
	z.mu.Unlock()
	var d clientDocument
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("client document %s: %w", id, err)
	}
	switch {
	case d.ClientID != id:
		return nil, fmt.Errorf("client document %s names client_id %q", id, d.ClientID)
	case d.TokenEndpointAuthMethod != string(oidc.AuthMethodPrivateKeyJWT):
		return nil, fmt.Errorf("client document %s: token_endpoint_auth_method %q", id, d.TokenEndpointAuthMethod)
	case !strings.HasPrefix(d.JWKSURI, "https://"):
		return nil, fmt.Errorf("client document %s: no https jwks_uri", id)
	case !slices.Contains(d.GrantTypes, string(oidc.GrantTypeClientCredentials)):
		return nil, fmt.Errorf("client document %s: no client_credentials grant", id)
	}
	return &d, nil
}

// GetClientByClientID knows static clients, registered clients and
// clients by metadata document.
func (z *extAS) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	z.mu.Lock()
	_, static := z.secrets[id]
	_, registered := z.registered[id]
	z.mu.Unlock()
	switch {
	case static:
		return extClient{id: id, method: oidc.AuthMethodBasic, scopes: z.scopes}, nil
	case registered:
		return extClient{id: id, method: oidc.AuthMethodPrivateKeyJWT, scopes: z.scopes}, nil
	case strings.HasPrefix(id, "https://"):
		if _, err := z.document(ctx, id); err != nil {
			return nil, oidc.ErrInvalidClient().WithDescription("client metadata document refused").WithParent(err)
		}
		return extClient{id: id, method: oidc.AuthMethodPrivateKeyJWT, scopes: z.scopes}, nil
	}
	return z.Storage.GetClientByClientID(ctx, id)
}

// GetKeyByIDAndClientID is the key kid of a private_key_jwt client: from
// its document's jwks_uri, or from its registration.
func (z *extAS) GetKeyByIDAndClientID(ctx context.Context, kid, clientID string) (*jose.JSONWebKey, error) {
	z.mu.Lock()
	reg, registered := z.registered[clientID]
	z.mu.Unlock()
	set, jwksURI := json.RawMessage(nil), ""
	switch {
	case registered:
		set, jwksURI = reg.jwks, reg.jwksURI
	case strings.HasPrefix(clientID, "https://"):
		d, err := z.document(ctx, clientID)
		if err != nil {
			return nil, err
		}
		jwksURI = d.JWKSURI
	default:
		return z.Storage.GetKeyByIDAndClientID(ctx, kid, clientID)
	}
	if jwksURI != "" {
		var err error
		if set, err = z.get(ctx, jwksURI, 64<<10); err != nil {
			return nil, err
		}
	}
	var keys jose.JSONWebKeySet
	if err := json.Unmarshal(set, &keys); err != nil {
		return nil, err
	}
	found := keys.Key(kid)
	if len(found) != 1 {
		return nil, fmt.Errorf("no key %q for client %s", kid, clientID)
	}
	return &found[0], nil
}

// ClientCredentials authenticates static clients by secret.
func (z *extAS) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	z.mu.Lock()
	want, ok := z.secrets[id]
	z.mu.Unlock()
	if !ok || secret == "" || secret != want {
		return nil, oidc.ErrInvalidClient().WithDescription("wrong client or secret")
	}
	return extClient{id: id, method: oidc.AuthMethodBasic, scopes: z.scopes}, nil
}

// GetPrivateClaimsFromScopes puts the granted scopes in the token.
func (z *extAS) GetPrivateClaimsFromScopes(_ context.Context, _, _ string, scopes []string) (map[string]any, error) {
	return map[string]any{"scope": strings.Join(scopes, " ")}, nil
}

// register is a registration endpoint (RFC 7591 §3): private_key_jwt
// clients with their JWK Set inline or by URL.
func (z *extAS) register(w http.ResponseWriter, r *http.Request) {
	var md struct {
		TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
		JWKS                    json.RawMessage `json:"jwks"`
		JWKSURI                 string          `json:"jwks_uri"`
		GrantTypes              []string        `json:"grant_types"`
	}
	fail := func(desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client_metadata", "error_description": desc})
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&md); err != nil {
		fail("not JSON")
		return
	}
	if md.TokenEndpointAuthMethod != string(oidc.AuthMethodPrivateKeyJWT) || (len(md.JWKS) == 0) == (md.JWKSURI == "") {
		fail("private_key_jwt with jwks or jwks_uri only")
		return
	}
	z.mu.Lock()
	z.regCount++
	id := fmt.Sprintf("reg-%d", z.regCount)
	z.registered[id] = registeredClient{jwks: md.JWKS, jwksURI: md.JWKSURI}
	z.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"client_id": id, "client_id_issued_at": time.Now().Unix(),
		"token_endpoint_auth_method": md.TokenEndpointAuthMethod, "grant_types": md.GrantTypes})
}

// registrations counts the clients registered so far.
func (z *extAS) registrations() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.regCount
}

// forget drops a registered client, as a server that cleans up does.
func (z *extAS) forget(id string) {
	z.mu.Lock()
	delete(z.registered, id)
	z.mu.Unlock()
}

// extServer is op's LegacyServer with private_key_jwt for
// client_credentials, RFC 8707 resource as audience, and a registration
// endpoint in its metadata when the extAS has one.
type extServer struct {
	*op.LegacyServer
	z *extAS
}

func (s extServer) Discovery(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	resp, err := s.LegacyServer.Discovery(ctx, r)
	if err != nil || !s.z.registration {
		return resp, err
	}
	if d, ok := resp.Data.(*oidc.DiscoveryConfiguration); ok {
		d.RegistrationEndpoint = s.z.issuer + "/register"
	}
	return resp, nil
}

func (s extServer) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	cc := r.Data
	if cc.ClientAssertionType != oidc.ClientAssertionTypeJWTAssertion {
		return s.LegacyServer.VerifyClient(ctx, r)
	}
	client, err := op.AuthorizePrivateJWTKey(ctx, cc.ClientAssertion, s.z.provider)
	if err != nil {
		return nil, oidc.ErrInvalidClient().WithDescription("client assertion refused").WithParent(err)
	}
	if cc.ClientID != "" && cc.ClientID != client.GetID() {
		return nil, oidc.ErrInvalidClient().WithDescription("client_id is not the assertion's")
	}
	return client, nil
}

func (s extServer) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	var scopes []string
	for _, sc := range r.Data.Scope {
		if r.Client.IsScopeAllowed(sc) {
			scopes = append(scopes, sc)
		}
	}
	if len(scopes) == 0 {
		return nil, oidc.ErrInvalidScope().WithDescription("no scope the client may have")
	}
	var aud []string
	if res := r.Form.Get("resource"); res != "" {
		aud = []string{res}
	}
	tr := &oidc.JWTTokenRequest{Subject: r.Client.GetID(), Audience: aud, Scopes: scopes}
	resp, err := op.CreateClientCredentialsTokenResponse(ctx, tr, s.z.provider, r.Client)
	if err != nil {
		return nil, err
	}
	return op.NewResponse(resp), nil
}

// protect serves an MCP server (mcpbare) at path behind a bearer check
// with the extAS's verifier and keys (aud = the endpoint), and returns
// its URL and the claims of the tokens its tools/call requests carried.
func (z *extAS) protect(path string, scopes []string) (string, func() []map[string]any) {
	endpoint := z.issuer + path
	prm := z.issuer + "/.well-known/oauth-protected-resource" + path
	verifier := op.NewAccessTokenVerifier(z.issuer, rp.NewRemoteKeySet(http.DefaultClient, z.issuer+"/keys"))
	var mu sync.Mutex
	var seen []map[string]any
	z.mux.Handle("/.well-known/oauth-protected-resource"+path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(oauth.ResourceMetadata{Resource: endpoint, AuthorizationServers: []string{z.issuer},
			ScopesSupported: scopes, BearerMethodsSupported: []string{"header"}})
	}))
	bare := mcpbare.Handler()
	z.mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var claims map[string]any
		if ok {
			c, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](r.Context(), tok, verifier)
			if err == nil && slices.Contains([]string(c.Audience), endpoint) {
				claims, _ = jwtClaims(tok)
			}
		}
		if claims == nil {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata=%q, scope=%q`, prm, strings.Join(scopes, " ")))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(string(body), `"tools/call"`) {
			mu.Lock()
			seen = append(seen, claims)
			mu.Unlock()
		}
		bare.ServeHTTP(w, r)
	}))
	return endpoint, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// token gets a token of a static client by client_credentials.
func (z *extAS) token(t *testing.T, id, secret, scope, resource string) string {
	t.Helper()
	resp, err := http.PostForm(z.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id},
		"client_secret": {secret}, "scope": {scope}, "resource": {resource}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr oauth.TokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("op's client_credentials: %d %v %+v", resp.StatusCode, err, tr)
	}
	return tr.AccessToken
}

// seenAssertions are the client assertions and actor tokens presented
// at the token endpoint so far.
func (z *extAS) seenAssertions() (assertions, actors []string, fetched []string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.assertions), slices.Clone(z.actors), slices.Clone(z.fetched)
}

// extMCPCall posts one JSON-RPC request to an MCP endpoint with a bearer
// token and returns the status, the WWW-Authenticate header and the
// JSON-RPC response (from a JSON body or the first SSE data line).
func extMCPCall(t *testing.T, endpoint, token, method, params string) (int, string, map[string]any) {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":%s}`, method, params)
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), nil
	}
	data := raw
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if d, ok := strings.CutPrefix(line, "data:"); ok {
				data = []byte(strings.TrimSpace(d))
				break
			}
		}
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: %q is not a JSON-RPC response", method, raw)
	}
	return resp.StatusCode, "", out
}

// TestExternalIssuerTokensAtHostedMCP: with auth.trusted_issuers naming
// an op-based authorization server for access tokens, a hosted MCP server
// takes that server's tokens for it (tools/list, tools/call), names both
// issuers in its RFC 9728 metadata, and refuses with 401 and a challenge
// a token of another op instance it does not trust and a token of the
// trusted one for another audience.
func TestExternalIssuerTokensAtHostedMCP(t *testing.T) {
	z := newExtAS(t, []string{"clock:read"}, nil, false)
	z.addSecretClient("svc", "svc-secret")
	other := newExtAS(t, []string{"clock:read"}, nil, false)
	other.addSecretClient("svc", "svc-secret")

	cfg := testConfig(t)
	cfg.Auth.AllowPrivateFetch = true // op is on a loopback address
	cfg.Auth.TrustedIssuers = []config.TrustedIssuerConfig{{Issuer: z.issuer, AccessTokens: true,
		// op types its access tokens JWT, not at+jwt.
		AcceptJWTTyp: true}}
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "clock", Tools: []string{"clock/now"}}}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	endpoint := h.Issuer() + "/mcp/clock"

	tok := z.token(t, "svc", "svc-secret", "clock:read", endpoint)
	claims, err := jwtClaims(tok)
	if err != nil || claims["iss"] != z.issuer || claims["aud"] == nil {
		t.Fatalf("op's token: %v %v", claims, err)
	}
	status, challenge, list := extMCPCall(t, endpoint, tok, "tools/list", "{}")
	if status != http.StatusOK {
		t.Fatalf("tools/list with the trusted issuer's token: %d %s", status, challenge)
	}
	tools, _ := list["result"].(map[string]any)["tools"].([]any)
	if len(tools) != 1 || tools[0].(map[string]any)["name"] != "now" {
		t.Fatalf("tools/list: %v", list)
	}
	status, _, call := extMCPCall(t, endpoint, tok, "tools/call", `{"name":"now","arguments":{}}`)
	res, _ := call["result"].(map[string]any)
	if status != http.StatusOK || res == nil || res["isError"] == true {
		t.Fatalf("tools/call: %d %v", status, call)
	}
	if content, _ := res["content"].([]any); len(content) != 1 {
		t.Fatalf("tools/call result: %v", res)
	}

	resp, err := http.Get(h.Issuer() + "/.well-known/oauth-protected-resource/mcp/clock")
	if err != nil {
		t.Fatal(err)
	}
	var prm oauth.ResourceMetadata
	err = json.NewDecoder(resp.Body).Decode(&prm)
	resp.Body.Close()
	if err != nil || prm.Resource != endpoint || !slices.Equal(prm.AuthorizationServers, []string{h.Issuer(), z.issuer}) {
		t.Fatalf("protected resource metadata: %+v %v", prm, err)
	}

	for _, tt := range []struct {
		name, token string
	}{
		{"an issuer not trusted", other.token(t, "svc", "svc-secret", "clock:read", endpoint)},
		{"another audience", z.token(t, "svc", "svc-secret", "clock:read", "https://elsewhere.example/mcp")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{"tools/list", "tools/call"} {
				status, challenge, _ := extMCPCall(t, endpoint, tt.token, method, `{"name":"now","arguments":{}}`)
				if status != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer ") ||
					!strings.Contains(challenge, `resource_metadata="`+h.Issuer()+"/.well-known/oauth-protected-resource/mcp/clock") {
					t.Fatalf("%s: %d %q, want 401 with a challenge", method, status, challenge)
				}
			}
		})
	}
}

// TestExternalASKnowsAgentByCIMD: the host serves HTTPS with an https
// issuer, so each agent has a client ID metadata document at
// <issuer>/oauth-client/<agent>. The example research agent calls a tool
// of a remote MCP server behind an op-based authorization server that
// does not trust the host's trust domain; the remote is set to client
// method cimd and acting_as agent. op resolves the agent's client_id by
// fetching its document, takes its keys from the document's jwks_uri and
// verifies the private_key_jwt assertion: the remote sees a token whose
// client_id and sub are the document's URL, and no JWT-SVID was
// presented. A document whose client_id is not its own URL is refused by
// op's storage; the host's says its URL exactly and is served at that
// URL alone.
func TestExternalASKnowsAgentByCIMD(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	certFile, keyFile, cert := writeSelfSigned(t)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	// A server of client documents that lie about their URL.
	liar := httptest.NewTLSServer(http.NotFoundHandler())
	defer liar.Close()
	roots.AddCert(liar.Certificate())

	z := newExtAS(t, []string{"docs:read"}, roots, false)
	endpoint, seen := z.protect("/cdocs/mcp", []string{"docs:read"})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := testConfig(t)
	cfg.Listen.Address = config.Address(addr)
	cfg.Listen.Issuer = "https://" + addr
	cfg.Listen.TLS = &config.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	cfg.Models = map[string]config.ModelConfig{"default": {Provider: config.ProviderOffline}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "cdocs", URL: endpoint, Tools: []string{mcpbare.ToolName},
		ActingAs: config.ActingAsAgent, Client: &config.RemoteClientConfig{Method: config.ClientMethodCIMD}}}
	cfg.Agents = []config.AgentConfig{{Name: "research", Path: exampleAgent(t, "research"), Model: "default",
		Tools: []string{"cdocs/" + mcpbare.ToolName}, Scopes: []string{"docs:read"}}}
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	if h.Issuer() != "https://"+addr {
		t.Fatalf("issuer %s", h.Issuer())
	}
	docURL := h.Issuer() + PathOAuthClient + "research"
	agentID := credentials.MustParseIdentity("spiffe://test.local/agent/research")

	waitAllRunning(ctx, t, dir, 1)
	final, failure, err := taskAnswer(ctx, h, "research", "what time is it now at cdocs")
	if err != nil || failure != "" {
		t.Fatalf("task: %v %s", err, failure)
	}
	calls := seen()
	if len(calls) != 1 || calls[0]["client_id"] != docURL || calls[0]["sub"] != docURL || calls[0]["scope"] != "docs:read" {
		t.Fatalf("the remote saw %v, want one call with client_id and sub %s (answer %q)", calls, docURL, final)
	}
	assertions, actors, fetched := z.seenAssertions()
	if !slices.Contains(fetched, docURL) {
		t.Fatalf("op fetched %v, not the agent's document", fetched)
	}
	if len(assertions) == 0 || len(actors) != 0 {
		t.Fatalf("%d client assertions, %d actor tokens; want client_credentials with assertions", len(assertions), len(actors))
	}
	for _, a := range assertions {
		c, err := jwtClaims(a)
		if err != nil || c["iss"] != docURL || c["sub"] != docURL || c["aud"] != z.issuer {
			t.Fatalf("client assertion claims %v (%v): want iss and sub the document URL, aud op's issuer alone", c, err)
		}
		if _, _, err := h.CA().ValidateJWTSVID(ctx, a, z.issuer); err == nil {
			t.Fatal("a JWT-SVID was presented to an authorization server that does not trust the trust domain")
		}
	}

	// The host's document: its URL exactly, and nowhere else.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Get(docURL)
	if err != nil {
		t.Fatal(err)
	}
	var doc clientid.Document
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || doc.ClientID != docURL || doc.JWKSURI != docURL+"/jwks.json" ||
		doc.TokenEndpointAuthMethod != oauth.AuthPrivateKeyJWT || doc.SPIFFEID != agentID.String() {
		t.Fatalf("the agent's document: %d %+v %v", resp.StatusCode, doc, err)
	}
	for _, u := range []string{docURL + "/", h.Issuer() + PathOAuthClient + "Research", h.Issuer() + PathOAuthClient + "assistant"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", u, resp.StatusCode)
		}
		if _, err := z.GetClientByClientID(ctx, u); err == nil {
			t.Fatalf("op took %s as a client", u)
		}
	}

	// A document that names another client_id than its URL: refused,
	// even with a valid assertion by a key its jwks_uri serves.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kid, _ := ahjose.Thumbprint(key.Public())
	set, _ := ahjose.MarshalKeySet([]ahjose.SetKey{{KID: kid, Key: key.Public(), Alg: "ES256", Use: "sig"}})
	liarURL := liar.URL + "/client"
	liar.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/client":
			_ = json.NewEncoder(w).Encode(clientid.Document{ClientID: docURL, ClientName: "impostor",
				TokenEndpointAuthMethod: oauth.AuthPrivateKeyJWT, GrantTypes: clientid.GrantTypes, JWKSURI: liar.URL + "/jwks.json"})
		case "/jwks.json":
			_, _ = w.Write(set)
		default:
			http.NotFound(w, r)
		}
	})
	if _, err := z.GetClientByClientID(ctx, liarURL); err == nil || !strings.Contains(err.Error(), "names client_id") {
		t.Fatalf("a document naming another client_id: %v, want refused", err)
	}
	src, err := oauth.PrivateKeyJWT(liarURL, key, kid, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertion, _ := src(ctx, z.issuer)
	resp, err = http.PostForm(z.issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {liarURL},
		"client_assertion_type": {oauth.AssertionJWTBearer}, "client_assertion": {assertion}, "scope": {"docs:read"}, "resource": {endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	var oe oauth.Error
	_ = json.NewDecoder(resp.Body).Decode(&oe)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || oe.Code != oauth.CodeInvalidClient {
		t.Fatalf("token request as a lying document's client: %d %q, want invalid_client", resp.StatusCode, oe.Code)
	}
}

// TestExternalASKnowsAgentByRegistration: the example research agent
// calls a remote set to client method registration, behind an op-based
// server with a registration endpoint. The agent registers once (with its
// JWK Set inline: the host's issuer is http, so nothing is published),
// the registration is kept in the store and reused by the next host on
// the same data directory with the same key, and when the server forgets
// the client (invalid_client) the host registers again once and the call
// goes through.
func TestExternalASKnowsAgentByRegistration(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	z := newExtAS(t, []string{"docs:read"}, nil, true)
	endpoint, seen := z.protect("/rdocs/mcp", []string{"docs:read"})
	cfg := testConfig(t)
	cfg.Models = map[string]config.ModelConfig{"default": {Provider: config.ProviderOffline}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "rdocs", URL: endpoint, Tools: []string{mcpbare.ToolName},
		ActingAs: config.ActingAsAgent, Client: &config.RemoteClientConfig{Method: config.ClientMethodRegistration}}}
	cfg.Agents = []config.AgentConfig{{Name: "research", Path: exampleAgent(t, "research"), Model: "default",
		Tools: []string{"rdocs/" + mcpbare.ToolName}, Scopes: []string{"docs:read"}}}
	dir := filepath.Join(t.TempDir(), "data")

	// run runs a host on dir until the agent has called the remote's tool
	// once, and returns the client_id the remote saw and the registration
	// the host kept.
	run := func(step string) (string, *clientid.Registration) {
		t.Helper()
		hctx, stop := context.WithCancel(ctx)
		h, err := New(hctx, Options{Config: cfg, DataDir: dir, Stderr: io.Discard})
		if err != nil {
			stop()
			t.Fatalf("%s: %v", step, err)
		}
		done := make(chan error, 1)
		go func() { done <- h.Run(hctx) }()
		defer func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", step, err)
			}
		}()
		waitAllRunning(ctx, t, dir, 1)
		before := len(seen())
		if final, failure, err := taskAnswer(ctx, h, "research", "what time is it now at rdocs"); err != nil || failure != "" {
			t.Fatalf("%s: task: %v %s (answer %q)", step, err, failure, final)
		}
		calls := seen()
		if len(calls) != before+1 {
			t.Fatalf("%s: the remote saw %d calls", step, len(calls)-before)
		}
		reg, err := (&storeRegistrations{kv: h.Store()}).Load(ctx, z.issuer, "research")
		if err != nil {
			t.Fatalf("%s: registration kept: %v", step, err)
		}
		id, _ := calls[len(calls)-1]["client_id"].(string)
		return id, reg
	}

	id, reg := run("first host")
	if id != "reg-1" || reg.ClientID != "reg-1" || reg.JWKSURI != "" || reg.KeyID == "" || reg.Renewed {
		t.Fatalf("first host: the remote saw %q, kept %+v", id, reg)
	}
	id, again := run("restarted host")
	if id != "reg-1" || again.ClientID != "reg-1" || again.KeyID != reg.KeyID || z.registrations() != 1 {
		t.Fatalf("restarted host: the remote saw %q, kept %+v, %d registrations; want reg-1 reused", id, again, z.registrations())
	}
	z.forget("reg-1")
	id, renewed := run("after the server forgot the client")
	if id != "reg-2" || renewed.ClientID != "reg-2" || !renewed.Renewed || renewed.KeyID != reg.KeyID || z.registrations() != 2 {
		t.Fatalf("after the server forgot the client: the remote saw %q, kept %+v, %d registrations", id, renewed, z.registrations())
	}
	assertions, actors, _ := z.seenAssertions()
	for _, a := range assertions {
		c, err := jwtClaims(a)
		if err != nil || !strings.HasPrefix(fmt.Sprint(c["iss"]), "reg-") || c["iss"] != c["sub"] {
			t.Fatalf("client assertion claims %v (%v): want a registered client's", c, err)
		}
	}
	if len(assertions) != 4 || len(actors) != 0 {
		t.Fatalf("%d client assertions, %d actor tokens; want 4 (one refused) and none", len(assertions), len(actors))
	}
}
