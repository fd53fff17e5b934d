package authserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/authserver/astest"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// These tests drive the authorization server with client libraries
// written elsewhere: they do discovery, registration, the code flow and
// token verification their own way, and the server must satisfy them.

const (
	interopUser        = "alice"
	interopDisplayName = "Alice Liddell"
	interopPassword    = "interop-password-for-alice"
	interopNotesURI    = "https://notes.example.org/mcp"
)

// interopUsers is built once: password hashing is deliberately slow.
var interopUsers = sync.OnceValues(func() (*userauth.Directory, error) {
	h, err := userauth.HashPassword(interopPassword)
	if err != nil {
		return nil, err
	}
	return userauth.NewDirectory([]userauth.User{
		{Name: interopUser, DisplayName: interopDisplayName, Email: "alice@example.org", PasswordHash: h},
	})
})

func interopDirectory(t *testing.T) *userauth.Directory {
	t.Helper()
	d, err := interopUsers()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// lateHandler is an httptest server whose handler is set after the
// server's URL is known.
type lateHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	h := l.h
	l.mu.RUnlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

func (l *lateHandler) set(h http.Handler) {
	l.mu.Lock()
	l.h = h
	l.mu.Unlock()
}

func newLateServer(t *testing.T) (*httptest.Server, *lateHandler) {
	t.Helper()
	l := &lateHandler{}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	return srv, l
}

// newInteropAS starts an authorization server on a loopback listener
// whose URL is the issuer; configure fills in the rest of the Config.
func newInteropAS(t *testing.T, configure func(*authserver.Config)) *authserver.Server {
	t.Helper()
	hs, late := newLateServer(t)
	cfg := authserver.Config{Issuer: hs.URL, Store: authserver.NewMemoryStore(nil)}
	if configure != nil {
		configure(&cfg)
	}
	s, err := authserver.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("authserver.New: %v", err)
	}
	late.set(s.Handler())
	return s
}

// TestInteropZitadelRelyingParty runs the code flow of the zitadel/oidc
// relying party: discovery, its own state and PKCE cookies, the code
// exchange with ID token verification (signature from jwks_uri, iss, aud,
// azp, nonce, at_hash) and the UserInfo request.
func TestInteropZitadelRelyingParty(t *testing.T) {
	const clientID = "zitadel-rp"
	users := interopDirectory(t)
	tests := []struct {
		name      string
		pkce      func(*httphelper.CookieHandler) rp.Option
		authStyle oauth2.AuthStyle
		decision  string
		wantError string // error the RP's callback receives
	}{
		{name: "pkce, client auth auto-detected", pkce: rp.WithPKCE, authStyle: oauth2.AuthStyleAutoDetect, decision: "allow"},
		{name: "pkce from discovery, client_id in body", pkce: rp.WithPKCEFromDiscovery, authStyle: oauth2.AuthStyleInParams, decision: "allow"},
		{name: "user denies", pkce: rp.WithPKCE, authStyle: oauth2.AuthStyleInParams, decision: "deny", wantError: oauth.CodeAccessDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			cb, late := newLateServer(t)
			redirectURI := cb.URL + "/callback"
			s := newInteropAS(t, func(c *authserver.Config) {
				c.Users = users
				c.Clients = []authserver.StaticClient{{ID: clientID, Name: "Zitadel RP", AuthMethod: oauth.AuthNone,
					RedirectURIs: []string{redirectURI}}}
			})

			nonce, state := rand.Text(), rand.Text()
			cookies := httphelper.NewCookieHandler(randomKey(t), randomKey(t), httphelper.WithUnsecure())
			type outcome struct {
				tokens  *oidc.Tokens[*oidc.IDTokenClaims]
				info    *oidc.UserInfo
				state   string
				errType string
			}
			results := make(chan outcome, 1)
			party, err := rp.NewRelyingPartyOIDC(ctx, s.Issuer(), clientID, "", redirectURI, []string{"openid", "profile"},
				tc.pkce(cookies),
				rp.WithHTTPClient(&http.Client{}),
				rp.WithAuthStyle(tc.authStyle),
				rp.WithVerifierOpts(rp.WithNonce(func(context.Context) string { return nonce })),
				rp.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, errorType, _, st string) {
					results <- outcome{errType: errorType, state: st}
					http.Error(w, errorType, http.StatusBadRequest)
				}),
				rp.WithUnauthorizedHandler(func(w http.ResponseWriter, _ *http.Request, desc, st string) {
					results <- outcome{errType: "unauthorized: " + desc, state: st}
					http.Error(w, desc, http.StatusUnauthorized)
				}),
			)
			if err != nil {
				t.Fatalf("NewRelyingPartyOIDC: %v", err)
			}
			if !party.IsPKCE() {
				t.Fatal("relying party does not use PKCE")
			}
			mux := http.NewServeMux()
			mux.Handle("/login", rp.AuthURLHandler(func() string { return state }, party, rp.WithURLParam("nonce", nonce)))
			mux.Handle("/callback", rp.CodeExchangeHandler(rp.UserinfoCallback(
				func(w http.ResponseWriter, _ *http.Request, tokens *oidc.Tokens[*oidc.IDTokenClaims], st string, _ rp.RelyingParty, info *oidc.UserInfo) {
					results <- outcome{tokens: tokens, info: info, state: st}
					_, _ = io.WriteString(w, "signed in")
				}), party))
			late.set(mux)

			b := astest.NewBrowser(redirectURI, interopUser, interopPassword, tc.decision)
			back, err := b.Authorize(ctx, cb.URL+"/login")
			if err != nil {
				t.Fatalf("browser: %v", err)
			}
			q := back.Query()
			if q.Get("state") != state || q.Get("iss") != s.Issuer() {
				t.Fatalf("authorization response state %q iss %q, want %q and %q", q.Get("state"), q.Get("iss"), state, s.Issuer())
			}
			// The browser follows the redirect: the relying party's
			// callback reads its cookies and redeems the code.
			p, err := b.Get(ctx, back.String())
			if err != nil {
				t.Fatal(err)
			}
			var got outcome
			select {
			case got = <-results:
			default:
				t.Fatalf("callback did not finish: status %d: %s", p.Status, p.Body)
			}
			if tc.wantError != "" {
				if got.errType != tc.wantError || got.tokens != nil {
					t.Fatalf("callback got error %q tokens %v, want error %q", got.errType, got.tokens != nil, tc.wantError)
				}
				return
			}
			if got.errType != "" || p.Status != http.StatusOK {
				t.Fatalf("callback failed: %s (status %d: %s)", got.errType, p.Status, p.Body)
			}
			if got.state != state {
				t.Errorf("callback state %q, want %q", got.state, state)
			}
			claims := got.tokens.IDTokenClaims
			switch {
			case claims.Subject != interopUser:
				t.Errorf("ID token sub %q, want %q", claims.Subject, interopUser)
			case claims.Issuer != s.Issuer():
				t.Errorf("ID token iss %q, want %q", claims.Issuer, s.Issuer())
			case !slices.Equal([]string(claims.Audience), []string{clientID}):
				t.Errorf("ID token aud %v, want [%s]", claims.Audience, clientID)
			case claims.Nonce != nonce:
				t.Errorf("ID token nonce %q, want %q", claims.Nonce, nonce)
			case claims.SignatureAlg != "ES256":
				t.Errorf("ID token signature algorithm %q, want ES256 (recorded when the signature is checked)", claims.SignatureAlg)
			case claims.AccessTokenHash == "":
				t.Error("ID token has no at_hash")
			case claims.AuthTime.AsTime().IsZero():
				t.Error("ID token has no auth_time")
			case claims.Name != interopDisplayName:
				t.Errorf("ID token name %q, want %q", claims.Name, interopDisplayName)
			}
			if got.info.Subject != interopUser || got.info.Name != interopDisplayName || got.info.Email != "" {
				t.Errorf("userinfo = sub %q name %q email %q, want %q %q and no email (no email scope)",
					got.info.Subject, got.info.Name, got.info.Email, interopUser, interopDisplayName)
			}
			if got.tokens.TokenType != oauth.TokenTypeBearer {
				t.Errorf("token_type %q, want Bearer", got.tokens.TokenType)
			}
			at, err := s.VerifyAccessToken(ctx, got.tokens.AccessToken, s.Issuer())
			if err != nil {
				t.Fatalf("VerifyAccessToken: %v", err)
			}
			if at.Subject != interopUser || at.ClientID != clientID {
				t.Errorf("access token sub %q client_id %q, want %q %q", at.Subject, at.ClientID, interopUser, clientID)
			}
			checkZitadelRejects(t, party, got.tokens.AccessToken, got.tokens.IDToken)
		})
	}
}

// checkZitadelRejects shows that the relying party's verifier really
// checks what it was given: the issued ID token passes, every alteration
// of it or of the expectations fails with the library's error.
func checkZitadelRejects(t *testing.T, party rp.RelyingParty, accessToken, idToken string) {
	t.Helper()
	base := party.IDTokenVerifier()
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("ID token has %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["sub"] = "mallory"
	forged, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	// One base64url character in the middle of the signature carries six
	// significant bits; replacing it keeps the encoding valid.
	sig := []byte(parts[2])
	if sig[len(sig)/2] == 'A' {
		sig[len(sig)/2] = 'B'
	} else {
		sig[len(sig)/2] = 'A'
	}
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	with := func(mutate func(*rp.IDTokenVerifier)) *rp.IDTokenVerifier {
		v := *base
		mutate(&v)
		return &v
	}

	tests := []struct {
		name        string
		idToken     string
		accessToken string
		verifier    *rp.IDTokenVerifier
		want        error // nil: accepted
	}{
		{name: "as issued", idToken: idToken, accessToken: accessToken, verifier: base},
		{name: "signature altered", idToken: parts[0] + "." + parts[1] + "." + string(sig), accessToken: accessToken,
			verifier: base, want: oidc.ErrSignatureInvalid},
		{name: "payload altered", idToken: parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2],
			accessToken: accessToken, verifier: base, want: oidc.ErrSignatureInvalid},
		{name: "alg none", idToken: noneHeader + "." + parts[1] + ".", accessToken: accessToken, verifier: base,
			want: oidc.ErrSignatureUnsupportedAlg},
		{name: "two segments", idToken: parts[0] + "." + parts[1], accessToken: accessToken, verifier: base, want: oidc.ErrParse},
		{name: "other access token", idToken: idToken, accessToken: accessToken + "x", verifier: base, want: oidc.ErrAtHash},
		{name: "other client", idToken: idToken, accessToken: accessToken,
			verifier: with(func(v *rp.IDTokenVerifier) { v.ClientID = "other-client" }), want: oidc.ErrAudience},
		{name: "other nonce", idToken: idToken, accessToken: accessToken,
			verifier: with(func(v *rp.IDTokenVerifier) { v.Nonce = func(context.Context) string { return "other" } }), want: oidc.ErrNonceInvalid},
		{name: "other issuer", idToken: idToken, accessToken: accessToken,
			verifier: with(func(v *rp.IDTokenVerifier) { v.Issuer += "/other" }), want: oidc.ErrIssuerInvalid},
	}
	for _, tc := range tests {
		t.Run("verify/"+tc.name, func(t *testing.T) {
			_, err := rp.VerifyTokens[*oidc.IDTokenClaims](t.Context(), tc.accessToken, tc.idToken, tc.verifier)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("VerifyTokens: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("VerifyTokens error %v, want %v", err, tc.want)
			}
		})
	}
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// recordingTransport records the requests a client library sends and
// the bodies of the registration responses it receives.
type recordingTransport struct {
	mu            sync.Mutex
	requests      []string
	registrations [][]byte
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req.Method+" "+req.URL.Path)
	if err != nil || !strings.HasSuffix(req.URL.Path, authserver.PathRegister) {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	r.registrations = append(r.registrations, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (r *recordingTransport) seen() ([]string, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests), slices.Clone(r.registrations)
}

type whoami struct {
	Subject  string `json:"subject"`
	ClientID string `json:"client_id"`
}

// TestInteropMCPGoSDKOAuthClient connects the MCP Go SDK's streamable
// client, with its authorization code handler, to an MCP server guarded
// by the SDK's bearer token middleware, which verifies tokens with
// VerifyAccessToken. On the first 401 the SDK discovers the protected
// resource metadata (RFC 9728) and this server's metadata (RFC 8414),
// registers a client (RFC 7591) and runs the code flow with PKCE and the
// resource parameter (RFC 8707).
func TestInteropMCPGoSDKOAuthClient(t *testing.T) {
	const prmPath = "/.well-known/oauth-protected-resource/mcp"
	users := interopDirectory(t)
	tests := []struct {
		name            string
		decision        string
		knownResource   bool // the resource is configured at the server
		allowDynamicReg bool
		wantErr         string // in Connect's error
	}{
		{name: "registration and code flow", decision: "allow", knownResource: true, allowDynamicReg: true},
		{name: "user denies", decision: "deny", knownResource: true, allowDynamicReg: true, wantErr: oauth.CodeAccessDenied},
		{name: "resource unknown to the server", decision: "allow", allowDynamicReg: true, wantErr: oauth.CodeInvalidTarget},
		{name: "registration disabled", decision: "allow", knownResource: true, wantErr: "no configured client registration methods"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			rs, lateRS := newLateServer(t)
			resource := rs.URL + "/mcp"
			cb, _ := newLateServer(t)
			redirectURI := cb.URL + "/callback"
			s := newInteropAS(t, func(c *authserver.Config) {
				c.Users = users
				c.AllowDynamicRegistration = tc.allowDynamicReg
				if tc.knownResource {
					c.Resources = []authserver.Resource{{URI: resource, Scopes: []string{"notes:read", "notes:write"}}}
				} else {
					c.Resources = []authserver.Resource{{URI: interopNotesURI, Scopes: []string{"notes:read", "notes:write"}}}
				}
			})

			server := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "v0.0.1"}, nil)
			mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Reports the caller."},
				func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoami, error) {
					ti := req.Extra.TokenInfo
					if ti == nil {
						return nil, whoami{}, errors.New("no token info")
					}
					clientID, _ := ti.Extra["client_id"].(string)
					return nil, whoami{Subject: ti.UserID, ClientID: clientID}, nil
				})
			verifier := func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
				c, err := s.VerifyAccessToken(ctx, token, resource)
				if err != nil {
					return nil, fmt.Errorf("%w: %v", auth.ErrInvalidToken, err)
				}
				scopes, err := oauth.ParseScope(c.Scope)
				if err != nil {
					return nil, fmt.Errorf("%w: %v", auth.ErrInvalidToken, err)
				}
				return &auth.TokenInfo{Scopes: scopes, Expiration: time.Unix(c.ExpiresAt, 0), UserID: c.Subject,
					Extra: map[string]any{"client_id": c.ClientID}}, nil
			}
			mux := http.NewServeMux()
			mux.Handle(prmPath, auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
				Resource:               resource,
				AuthorizationServers:   []string{s.Issuer()},
				ScopesSupported:        []string{"notes:read"},
				BearerMethodsSupported: []string{"header"},
			}))
			mux.Handle("/mcp", auth.RequireBearerToken(verifier, &auth.RequireBearerTokenOptions{
				ResourceMetadataURL: rs.URL + prmPath,
				Scopes:              []string{"notes:read"},
			})(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
			lateRS.set(mux)

			rec := &recordingTransport{}
			var authURLs []string
			b := astest.NewBrowser(redirectURI, interopUser, interopPassword, tc.decision)
			handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
				DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
					Metadata: &oauthex.ClientRegistrationMetadata{
						ClientName:   "MCP interop client",
						RedirectURIs: []string{redirectURI},
						GrantTypes:   []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken},
					},
				},
				RedirectURL:         redirectURI,
				RequestRefreshToken: true,
				Client:              &http.Client{Transport: rec},
				AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
					authURLs = append(authURLs, args.URL)
					back, err := b.Authorize(ctx, args.URL)
					if err != nil {
						return nil, err
					}
					q := back.Query()
					if e := q.Get("error"); e != "" {
						return nil, fmt.Errorf("authorization failed: %s: %s", e, q.Get("error_description"))
					}
					return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
				},
			})
			if err != nil {
				t.Fatalf("NewAuthorizationCodeHandler: %v", err)
			}

			client := mcp.NewClient(&mcp.Implementation{Name: "interop", Version: "v0.0.1"}, nil)
			session, err := client.Connect(ctx, &mcp.StreamableClientTransport{
				Endpoint: resource, OAuthHandler: handler, DisableStandaloneSSE: true,
			}, nil)
			if tc.wantErr != "" {
				if err == nil {
					_ = session.Close()
					t.Fatalf("Connect succeeded, want an error with %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Connect: %v, want an error with %q", err, tc.wantErr)
				}
				if ts, _ := handler.TokenSource(ctx); ts != nil {
					t.Fatal("the handler holds a token after a failed authorization")
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			t.Cleanup(func() { _ = session.Close() })

			requests, registrations := rec.seen()
			wantRequests := []string{
				"GET " + prmPath,
				"GET " + authserver.PathOAuthMetadata,
				"POST " + authserver.PathRegister,
				"POST " + authserver.PathToken,
			}
			if !slices.Equal(requests, wantRequests) {
				t.Errorf("SDK requests %q, want %q", requests, wantRequests)
			}
			if len(registrations) != 1 {
				t.Fatalf("%d registrations, want 1", len(registrations))
			}
			var reg oauthex.ClientRegistrationResponse
			if err := json.Unmarshal(registrations[0], &reg); err != nil {
				t.Fatalf("registration response: %v: %s", err, registrations[0])
			}
			if reg.ClientID == "" || reg.ClientSecret != "" || reg.TokenEndpointAuthMethod != oauth.AuthNone {
				t.Errorf("registered client_id %q secret %q auth method %q, want an id, no secret, method none",
					reg.ClientID, reg.ClientSecret, reg.TokenEndpointAuthMethod)
			}
			if len(authURLs) != 1 {
				t.Fatalf("%d authorization requests, want 1", len(authURLs))
			}
			au, err := url.Parse(authURLs[0])
			if err != nil {
				t.Fatal(err)
			}
			aq := au.Query()
			if aq.Get("resource") != resource || aq.Get("code_challenge_method") != oauth.PKCES256 ||
				aq.Get("client_id") != reg.ClientID || !sameScopes(aq.Get("scope"), "notes:read offline_access") {
				t.Errorf("authorization request %s: want resource %s, S256, client_id %s, scope notes:read offline_access",
					authURLs[0], resource, reg.ClientID)
			}

			ts, err := handler.TokenSource(ctx)
			if err != nil || ts == nil {
				t.Fatalf("TokenSource: %v, %v", ts, err)
			}
			tok, err := ts.Token()
			if err != nil {
				t.Fatal(err)
			}
			claims, err := s.VerifyAccessToken(ctx, tok.AccessToken, resource)
			if err != nil {
				t.Fatalf("VerifyAccessToken: %v", err)
			}
			if claims.Subject != interopUser || claims.ClientID != reg.ClientID {
				t.Errorf("access token sub %q client_id %q, want %q %q", claims.Subject, claims.ClientID, interopUser, reg.ClientID)
			}
			if !slices.Equal([]string(claims.Audience), []string{resource}) {
				t.Errorf("access token aud %v, want [%s]", claims.Audience, resource)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token although offline_access and refresh_token were asked for")
			}
			if _, err := s.VerifyAccessToken(ctx, tok.AccessToken, s.Issuer()); err == nil {
				t.Error("the resource's token is accepted for the server's own audience")
			}

			res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
			if err != nil {
				t.Fatalf("CallTool: %v", err)
			}
			if res.IsError {
				t.Fatalf("whoami failed: %+v", res.Content)
			}
			raw, err := json.Marshal(res.StructuredContent)
			if err != nil {
				t.Fatal(err)
			}
			var who whoami
			if err := json.Unmarshal(raw, &who); err != nil {
				t.Fatal(err)
			}
			if who != (whoami{Subject: interopUser, ClientID: reg.ClientID}) {
				t.Errorf("whoami = %+v, want %s via %s", who, interopUser, reg.ClientID)
			}
		})
	}
}

// TestInteropOAuth2ClientCredentials runs golang.org/x/oauth2's
// clientcredentials against static clients using client_secret_basic
// (its AuthStyleInHeader, which form-encodes id and secret before Basic
// encoding) and client_secret_post (AuthStyleInParams), and its
// auto-detection, which tries the header first.
func TestInteropOAuth2ClientCredentials(t *testing.T) {
	const (
		basicID     = "svc:reports" // a colon must survive the Basic encoding
		basicSecret = "s3cret with/reserved:chars+&=%"
		postID      = "svc-post"
		postSecret  = "post-secret-value-0123456789"
	)
	basicHash, err := userauth.HashPassword(basicSecret)
	if err != nil {
		t.Fatal(err)
	}
	postHash, err := userauth.HashPassword(postSecret)
	if err != nil {
		t.Fatal(err)
	}
	s := newInteropAS(t, func(c *authserver.Config) {
		c.Resources = []authserver.Resource{{URI: interopNotesURI, Scopes: []string{"notes:read", "notes:write"}}}
		c.Clients = []authserver.StaticClient{
			{ID: basicID, AuthMethod: oauth.AuthClientSecretBasic, SecretHash: basicHash,
				GrantTypes: []string{oauth.GrantClientCredentials}, Scopes: []string{"notes:read"}},
			{ID: postID, AuthMethod: oauth.AuthClientSecretPost, SecretHash: postHash,
				GrantTypes: []string{oauth.GrantClientCredentials}, Scopes: []string{"notes:read"}},
		}
	})
	tokenURL := s.Metadata().TokenEndpoint

	tests := []struct {
		name     string
		id       string
		secret   string
		style    oauth2.AuthStyle
		resource string
		scopes   []string
		wantCode string // RFC 6749 §5.2 error; "" for success
	}{
		{name: "basic, in header", id: basicID, secret: basicSecret, style: oauth2.AuthStyleInHeader, resource: interopNotesURI},
		{name: "basic, auto-detected", id: basicID, secret: basicSecret, style: oauth2.AuthStyleAutoDetect, resource: interopNotesURI},
		{name: "basic, explicit scope", id: basicID, secret: basicSecret, style: oauth2.AuthStyleInHeader, resource: interopNotesURI,
			scopes: []string{"notes:read"}},
		{name: "post, in params", id: postID, secret: postSecret, style: oauth2.AuthStyleInParams, resource: interopNotesURI},
		{name: "post, auto-detected falls back to params", id: postID, secret: postSecret, style: oauth2.AuthStyleAutoDetect,
			resource: interopNotesURI},

		{name: "basic client sends params", id: basicID, secret: basicSecret, style: oauth2.AuthStyleInParams,
			resource: interopNotesURI, wantCode: oauth.CodeInvalidClient},
		{name: "post client sends header", id: postID, secret: postSecret, style: oauth2.AuthStyleInHeader,
			resource: interopNotesURI, wantCode: oauth.CodeInvalidClient},
		{name: "wrong secret", id: basicID, secret: basicSecret + "x", style: oauth2.AuthStyleInHeader,
			resource: interopNotesURI, wantCode: oauth.CodeInvalidClient},
		{name: "unknown client", id: "nobody", secret: basicSecret, style: oauth2.AuthStyleInHeader,
			resource: interopNotesURI, wantCode: oauth.CodeInvalidClient},
		{name: "unknown resource", id: basicID, secret: basicSecret, style: oauth2.AuthStyleInHeader,
			resource: "https://unknown.example.org/api", wantCode: oauth.CodeInvalidTarget},
		{name: "scope the client may not have", id: basicID, secret: basicSecret, style: oauth2.AuthStyleInHeader,
			resource: interopNotesURI, scopes: []string{"notes:write"}, wantCode: oauth.CodeInvalidScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{})
			cfg := clientcredentials.Config{
				ClientID:       tc.id,
				ClientSecret:   tc.secret,
				TokenURL:       tokenURL,
				Scopes:         tc.scopes,
				EndpointParams: url.Values{"resource": {tc.resource}},
				AuthStyle:      tc.style,
			}
			tok, err := cfg.Token(ctx)
			if tc.wantCode != "" {
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != tc.wantCode {
					t.Fatalf("Token error %v, want %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.Type() != oauth.TokenTypeBearer || tok.RefreshToken != "" {
				t.Errorf("token type %q refresh token %q, want Bearer and none", tok.Type(), tok.RefreshToken)
			}
			claims, err := s.VerifyAccessToken(ctx, tok.AccessToken, interopNotesURI)
			if err != nil {
				t.Fatalf("VerifyAccessToken: %v", err)
			}
			if claims.Subject != tc.id || claims.ClientID != tc.id || claims.Scope != "notes:read" ||
				!slices.Equal([]string(claims.Audience), []string{interopNotesURI}) {
				t.Errorf("claims sub %q client_id %q scope %q aud %v, want %q %q notes:read [%s]",
					claims.Subject, claims.ClientID, claims.Scope, claims.Audience, tc.id, tc.id, interopNotesURI)
			}
			if _, err := s.VerifyAccessToken(ctx, tok.AccessToken, s.Issuer()); err == nil {
				t.Error("the resource's token is accepted for the server's own audience")
			}
		})
	}
}

// sameScopes compares two scope strings as sets: the SDK does not keep
// the order of the scopes it collects.
func sameScopes(a, b string) bool {
	as, bs := strings.Fields(a), strings.Fields(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}
