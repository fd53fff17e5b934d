package authserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/authserver/clientmeta"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// Endpoint paths, relative to the issuer.
const (
	PathAuthorize     = "/oauth2/authorize"
	PathLogin         = "/oauth2/login"
	PathConsent       = "/oauth2/consent"
	PathToken         = "/oauth2/token"
	PathJWKS          = "/oauth2/jwks"
	PathIntrospect    = "/oauth2/introspect"
	PathRevoke        = "/oauth2/revoke"
	PathRegister      = "/oauth2/register"
	PathUserinfo      = "/oauth2/userinfo"
	PathOAuthMetadata = "/.well-known/oauth-authorization-server"
	PathOIDCMetadata  = "/.well-known/openid-configuration"
)

// Defaults.
const (
	DefaultAccessTokenTTL  = 5 * time.Minute
	DefaultRefreshTokenTTL = 24 * time.Hour
	DefaultCodeTTL         = time.Minute
	DefaultKeyPeriod       = 30 * 24 * time.Hour
	// Dynamic registration limits (Config.RegistrationBurst,
	// Config.RegistrationInterval, Config.MaxDynamicClients,
	// Config.UnusedClientTTL).
	DefaultRegistrationBurst    = 10
	DefaultRegistrationInterval = time.Minute
	DefaultMaxDynamicClients    = 1000
	DefaultUnusedClientTTL      = 24 * time.Hour
	// MaxAssertionLifetime caps exp - now of a client assertion or
	// authorization grant assertion.
	MaxAssertionLifetime = time.Hour
)

// SVIDValidator validates JWT-SVIDs of the trust domain (the host's CA
// satisfies it).
type SVIDValidator interface {
	ValidateJWTSVID(ctx context.Context, token, audience string) (spiffeid.ID, map[string]any, error)
}

// Resource is a protected resource tokens can be issued for (RFC 8707):
// its identifier, which becomes the access token's aud, and its scopes.
type Resource struct {
	URI    string
	Scopes []string
}

// Config configures a Server.
type Config struct {
	// Issuer is the issuer identifier (RFC 8414 §2): an https URL (http is
	// accepted for loopback hosts) without query or fragment. Endpoints
	// are served under it.
	Issuer string
	// Store holds all state. Required.
	Store Store
	// TrustDomain is the trust domain name of the hosted agents
	// ("example.org"); SVIDs validates their JWT-SVIDs.
	TrustDomain string
	SVIDs       SVIDValidator
	// Agents are registered automatically as clients.
	Agents []AgentClient
	// Clients are static clients from config.
	Clients []StaticClient
	// Users sign in at the login page. Nil disables the authorization
	// endpoint's user flows.
	Users *userauth.Directory
	// Resources are the protected resources tokens may be issued for.
	Resources []Resource
	// Scopes the server issues beyond the resources' scopes (openid,
	// profile, email and offline_access are always known).
	Scopes []string
	// TrustedIssuers are other authorization servers whose access tokens
	// token exchange takes as subject tokens, and whose ID-JAGs the
	// jwt-bearer grant takes where TrustedIssuer.IDJAG says (see
	// trusted.go, grant_idjag.go).
	TrustedIssuers []TrustedIssuer
	// IDJAGAudiences are the authorization servers of other domains this
	// server issues Identity Assertion JWT Authorization Grants for
	// (token exchange with requested_token_type id-jag; see
	// grant_idjag.go). None: no ID-JAG is issued.
	IDJAGAudiences []IDJAGAudience
	// FederatedSVIDs validates JWT-SVIDs of federated trust domains (over
	// their bundles), for the clients FederatedClients admits. Nil: only
	// the trust domain's own workloads authenticate with SVIDs.
	FederatedSVIDs SVIDValidator
	// FederatedClients admits workloads of federated trust domains as
	// clients (see federated.go). Needs FederatedSVIDs.
	FederatedClients []FederatedClient
	// CIBA, when set, turns on OpenID Client-Initiated Backchannel
	// Authentication at PathBackchannel, for the clients it lists (see
	// ciba.go). It needs Users.
	CIBA *CIBAConfig

	// MaxLoginFailures is how many failed sign-ins of one user name from
	// one address lock that pair out for LoginLockout (an address alone is
	// locked after ten times as many, for any user names). An IPv6 address
	// counts as its /64, and behind TrustedProxies the address is the
	// client's. Zero means DefaultMaxLoginFailures; negative turns
	// throttling off.
	MaxLoginFailures int
	// LoginLockout is the lockout, and the window failures are counted
	// in; zero means DefaultLoginLockout.
	LoginLockout time.Duration

	// RevocationCache is how many revocation answers the server keeps in
	// memory, for tokens and, separately, for subjects, so that checking
	// a token it checked before ([Server.VerifyAccessToken],
	// introspection, [Server.Revoked], [Server.SubjectRevoked]) reads
	// nothing from the Store. Every revocation this server makes
	// invalidates them at once. Zero means DefaultRevocationCache;
	// negative turns the cache off, and every check reads the Store.
	//
	// A Store that several servers write must either deliver each
	// server's revocations to the others, which call
	// [Server.InvalidateRevocations], or have the cache off: otherwise a
	// token revoked through one server stays accepted by another.
	RevocationCache int
	// OnRevocation, when set, is called after every revocation this
	// server writes (whether the write succeeded or not), so that other
	// servers on the same store can be told to call
	// [Server.InvalidateRevocations].
	OnRevocation func()

	// OnIssue, when set, is told of every access token issued before the
	// response is sent (to audit it); an error fails the request with
	// server_error and the token is not handed out.
	OnIssue func(ctx context.Context, t Issued) error

	// TxnTokenTTL is the lifetime of the Transaction Tokens the server
	// issues as its trust domain's Txn-Token Service (SPECS.md §6: minutes
	// or less); a token issued for an access token never outlives it.
	// Zero means DefaultTxnTokenTTL (60 s); at most txntoken.MaxTTL.
	TxnTokenTTL time.Duration
	// TxnTokenWorkloads lists the workloads that may request Txn-Tokens
	// at the token endpoint: SPIFFE IDs of the trust domain, each exact or
	// followed by "/*" for every ID under that path
	// ("spiffe://example.org/agent/*"). Empty means every workload of the
	// trust domain. It does not apply to [Server.IssueTxnToken].
	TxnTokenWorkloads []string
	// OnIssueTxnToken, when set, is told of every Txn-Token issued (its
	// claims and hash, never the token) before it is handed out; an error
	// fails the request with server_error and the token is not handed
	// out.
	OnIssueTxnToken func(ctx context.Context, t IssuedTxnToken) error
	// OnRefuseTxnToken, when set, is told of every Txn-Token request the
	// token endpoint refuses from an authenticated client: the client,
	// and the OAuth error it got.
	OnRefuseTxnToken func(ctx context.Context, clientID string, refusal *oauth.Error)
	// OnRefuseChaining, when set, is told of every refused request of
	// identity chaining: a jwt-bearer grant (an ID-JAG or another
	// assertion) and a token exchange for an ID-JAG, with the client_id
	// the request named (possibly empty or unauthenticated), the grant
	// type and the error sent, so that the host audits them.
	OnRefuseChaining func(ctx context.Context, clientID, grant string, refusal *oauth.Error)
	// OnTokenRequest, when set, is told of every POST request the token
	// endpoint answers (see observe.go): its grant type (the wire value,
	// empty when the request named none the server supports) and its
	// result, [TokenIssued] or the OAuth error code sent. It must not
	// block.
	OnTokenRequest func(ctx context.Context, grant, result string)

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	CodeTTL         time.Duration
	// KeyPeriod is how long a signing key is current before the next one
	// takes over.
	KeyPeriod time.Duration
	// RequireDPoPNonce makes the token endpoint demand server nonces in
	// DPoP proofs (RFC 9449 §8).
	RequireDPoPNonce bool
	// AllowDynamicRegistration enables RFC 7591 registration of public
	// clients.
	AllowDynamicRegistration bool
	// RegistrationTokenHash, when set, closes dynamic registration to
	// holders of an initial access token (RFC 7591 §3): an argon2id or
	// bcrypt hash of the token, which registration requests carry as a
	// bearer token (RFC 6750 §2.1). The token itself is never configured.
	RegistrationTokenHash string
	// RegistrationBurst and RegistrationInterval limit the rate of
	// registrations per client address (a token bucket of
	// RegistrationBurst registrations, refilled with one every
	// RegistrationInterval). Zero means DefaultRegistrationBurst and
	// DefaultRegistrationInterval; a negative RegistrationBurst turns the
	// limit off.
	RegistrationBurst    int
	RegistrationInterval time.Duration
	// MaxDynamicClients caps how many dynamically registered clients are
	// kept at once; registration is refused while the cap is reached.
	// Zero means DefaultMaxDynamicClients; negative, no cap. A cap needs
	// a Store that implements Counter.
	MaxDynamicClients int
	// UnusedClientTTL is how long a dynamically registered client that
	// never obtained a token is kept; one that did is kept for good. Zero
	// means DefaultUnusedClientTTL; negative keeps every registration.
	UnusedClientTTL time.Duration
	// TrustedProxies are the addresses of reverse proxies in front of the
	// server. For a request whose connection comes from one of them, the
	// client address (which sign-in and registration limits are kept per)
	// is taken from X-Forwarded-For; otherwise it is the connection's
	// address and X-Forwarded-For is ignored. None by default.
	TrustedProxies []netip.Prefix
	// ClientIDMetadataDocuments enables URL client_ids.
	ClientIDMetadataDocuments bool
	// AllowPrivateFetch lets CIMD and JWKS fetches reach loopback and
	// private addresses (development only).
	AllowPrivateFetch bool

	// ClientCertificateAuthorities returns the trust bundle's X.509
	// authorities, against which agents' X.509-SVIDs are verified for
	// tls_client_auth (RFC 8705). Nil disables certificate client
	// authentication. The listener must request (not verify) client
	// certificates.
	ClientCertificateAuthorities func() []*x509.Certificate

	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// Server is the embedded authorization server.
type Server struct {
	cfg       Config
	issuer    string
	secure    bool
	log       *slog.Logger
	now       func() time.Time
	store     Store
	keys      *keyRotation
	clients   *registry
	resources map[string]Resource
	scopes    map[string]bool
	sessions  *userauth.Sessions
	dpop      *dpop.Verifier
	nonces    dpop.NonceSource
	cimd      *clientmeta.Resolver
	mux       *http.ServeMux

	// revocations caches revocation answers; nil when the cache is off
	// (see revcache.go).
	revocations *revocationCache

	// txn holds the Txn-Token Service settings (see grant_txntoken.go).
	txn txnTTS
	// ciba holds the CIBA settings; nil when CIBA is off (see ciba.go).
	ciba *cibaSettings
	// federated are the checked FederatedClients (federated.go).
	federated []federatedEntry

	// Dynamic registration: the per-address rate limit, the client
	// counter behind the cap, the lock that makes count-then-register
	// atomic within this process, and the hash of the last initial access
	// token that verified.
	regLimit *addrLimiter
	regCount Counter
	regMu    sync.Mutex
	regToken atomic.Pointer[[sha256.Size]byte]
}

// New checks cfg, loads or creates the server's keys and returns a Server.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("authserver: Store is required")
	}
	iss, err := checkIssuer(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, issuer: iss, secure: strings.HasPrefix(iss, "https://"), store: cfg.Store}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.now = cfg.Now
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.MaxLoginFailures == 0 {
		s.cfg.MaxLoginFailures = DefaultMaxLoginFailures
	}
	if s.cfg.LoginLockout <= 0 {
		s.cfg.LoginLockout = DefaultLoginLockout
	}
	if s.cfg.AccessTokenTTL <= 0 {
		s.cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if s.cfg.RefreshTokenTTL <= 0 {
		s.cfg.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if s.cfg.CodeTTL <= 0 {
		s.cfg.CodeTTL = DefaultCodeTTL
	}
	if s.cfg.KeyPeriod <= 0 {
		s.cfg.KeyPeriod = DefaultKeyPeriod
	}
	if s.cfg.RevocationCache == 0 {
		s.cfg.RevocationCache = DefaultRevocationCache
	}
	if s.cfg.RevocationCache > 0 {
		s.revocations = newRevocationCache(s.cfg.RevocationCache)
	}
	if err := s.initRegistration(); err != nil {
		return nil, err
	}
	if err := s.initTxnTokens(); err != nil {
		return nil, err
	}
	if err := s.initTrustedIssuers(); err != nil {
		return nil, err
	}
	if err := s.initIDJAG(); err != nil {
		return nil, err
	}
	s.resources = make(map[string]Resource, len(cfg.Resources))
	s.scopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}
	for _, r := range cfg.Resources {
		if err := checkResourceURI(r.URI); err != nil {
			return nil, fmt.Errorf("authserver: resource %q: %w", r.URI, err)
		}
		s.resources[r.URI] = r
		for _, sc := range r.Scopes {
			s.scopes[sc] = true
		}
	}
	// Every agent is also a resource: a user's token for an agent has the
	// agent's SPIFFE ID as audience and at most the agent's scopes, which
	// the agent then exchanges for tokens to the resources it calls.
	for _, a := range cfg.Agents {
		id := a.ID.String()
		if _, ok := s.resources[id]; !ok {
			s.resources[id] = Resource{URI: id, Scopes: a.Scopes}
		}
		for _, sc := range a.Scopes {
			if !oauth.ValidScopeToken(sc) {
				return nil, fmt.Errorf("authserver: agent %s: scope %q is not a valid scope token", id, sc)
			}
			s.scopes[sc] = true
		}
	}
	if err := s.initFederatedClients(); err != nil {
		return nil, err
	}
	for _, sc := range cfg.Scopes {
		if !oauth.ValidScopeToken(sc) {
			return nil, fmt.Errorf("authserver: scope %q is not a valid scope token", sc)
		}
		s.scopes[sc] = true
	}
	s.keys = &keyRotation{store: cfg.Store, now: s.now, period: s.cfg.KeyPeriod,
		grace: s.cfg.AccessTokenTTL + s.cfg.RefreshTokenTTL + time.Hour}
	if err := s.keys.refresh(ctx); err != nil {
		return nil, err
	}
	if s.clients, err = newRegistry(s, cfg); err != nil {
		return nil, err
	}
	if err := s.initCIBA(); err != nil {
		return nil, err
	}
	if err := s.initSessions(ctx); err != nil {
		return nil, err
	}
	if err := s.initDPoP(ctx); err != nil {
		return nil, err
	}
	if cfg.ClientIDMetadataDocuments {
		s.cimd = clientmeta.NewResolver(clientmeta.ResolverConfig{
			Fetcher: fetch.New(fetch.Config{Client: cfg.HTTPClient, AllowPrivate: cfg.AllowPrivateFetch,
				AllowHTTP: cfg.AllowPrivateFetch, Logger: s.log}),
			Now: s.now,
		})
	}
	s.routes()
	return s, nil
}

// Issuer is the server's issuer identifier.
func (s *Server) Issuer() string { return s.issuer }

// Handler serves every endpoint. Mount it at the issuer's origin.
func (s *Server) Handler() http.Handler { return s.mux }

// Run rotates the signing keys until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.keys.refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("signing key rotation failed", "err", err)
			}
		}
	}
}

// Keys returns the key lookup for tokens this server signed (for resource
// servers in the same process).
func (s *Server) Keys() jose.KeyFunc { return s.keys.publicKey }

// JWKS returns the JWK Set the server publishes at PathJWKS (a copy): its
// current signing key, the next one and those retired within the grace
// period. It changes when the keys rotate; a workload that cannot reach
// the endpoint (a tool plugin checking Txn-Tokens) is handed it.
func (s *Server) JWKS() []byte { return bytes.Clone(s.keys.ring.Load().jwks) }

// JWKSText is [Server.JWKS] as a string, without a copy: the same string
// until the keys rotate.
func (s *Server) JWKSText() string { return s.keys.ring.Load().jwksText }

func (s *Server) routes() {
	m := http.NewServeMux()
	p := s.pathPrefix()
	m.HandleFunc("GET "+PathOAuthMetadata+p, s.handleMetadata)
	m.HandleFunc("GET "+p+PathOIDCMetadata, s.handleMetadata)
	if p != "" {
		m.HandleFunc("GET "+PathOIDCMetadata+p, s.handleMetadata)
	}
	m.HandleFunc("GET "+p+PathJWKS, s.handleJWKS)
	m.HandleFunc(p+PathToken, s.handleToken)
	m.HandleFunc(p+PathIntrospect, s.handleIntrospect)
	m.HandleFunc(p+PathRevoke, s.handleRevoke)
	if s.cfg.Users != nil {
		m.HandleFunc(p+PathAuthorize, s.handleAuthorize)
		m.HandleFunc(p+PathLogin, s.handleLogin)
		m.HandleFunc(p+PathConsent, s.handleConsent)
		m.HandleFunc(p+PathUserinfo, s.handleUserinfo)
		m.HandleFunc(p+PathSignIn, s.handleSignIn)
	}
	if s.ciba != nil {
		m.HandleFunc(p+PathBackchannel, s.handleBackchannel)
	}
	if s.cfg.AllowDynamicRegistration {
		m.HandleFunc(p+PathRegister, s.handleRegister)
	}
	s.mux = m
}

// pathPrefix is the issuer's path ("" for a host-only issuer).
func (s *Server) pathPrefix() string {
	u, _ := url.Parse(s.issuer)
	return strings.TrimSuffix(u.Path, "/")
}

func (s *Server) endpoint(path string) string { return strings.TrimSuffix(s.issuer, "/") + path }

// Metadata is the server's RFC 8414 metadata; it advertises exactly what
// is implemented and configured.
func (s *Server) Metadata() oauth.ServerMetadata {
	authMethods := []string{oauth.AuthPrivateKeyJWT, oauth.AuthSPIFFEJWT,
		oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost, oauth.AuthNone}
	if s.secure && s.cfg.ClientCertificateAuthorities != nil {
		authMethods = append(authMethods, oauth.AuthTLSClient, oauth.AuthSPIFFEX509)
	}
	grants := []string{oauth.GrantClientCredentials, oauth.GrantTokenExchange, oauth.GrantJWTBearer, oauth.GrantRefreshToken}
	md := oauth.ServerMetadata{
		Issuer:                            s.issuer,
		TokenEndpoint:                     s.endpoint(PathToken),
		JWKSURI:                           s.endpoint(PathJWKS),
		ScopesSupported:                   s.scopeList(),
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		TokenEndpointAuthMethodsSupported: authMethods,
		TokenEndpointAuthSigningAlgValuesSupported: algNames(jose.DefaultAlgorithms),
		RevocationEndpoint:                         s.endpoint(PathRevoke),
		RevocationEndpointAuthMethodsSupported:     authMethods,
		IntrospectionEndpoint:                      s.endpoint(PathIntrospect),
		IntrospectionEndpointAuthMethodsSupported:  without(authMethods, oauth.AuthNone),
		DPoPSigningAlgValuesSupported:              algNames(dpopAlgorithms),
		AuthorizationDetailsTypesSupported:         nil,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           []string{string(jose.ES256)},
	}
	if s.cfg.Users != nil {
		md.AuthorizationEndpoint = s.endpoint(PathAuthorize)
		md.UserinfoEndpoint = s.endpoint(PathUserinfo)
		md.CodeChallengeMethodsSupported = []string{oauth.PKCES256}
		md.AuthorizationResponseIssParameterSupported = true
		grants = append([]string{oauth.GrantAuthorizationCode}, grants...)
		md.ClaimsSupported = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email"}
	}
	if s.ciba != nil {
		// CIBA Core §4; RFC 9396 §10.
		md.BackchannelAuthenticationEndpoint = s.endpoint(PathBackchannel)
		md.BackchannelTokenDeliveryModesSupported = []string{oauth.DeliveryPoll, oauth.DeliveryPing}
		md.BackchannelUserCodeParameterSupported = new(bool)
		md.AuthorizationDetailsTypesSupported = slices.Clone(s.ciba.types)
		grants = append(grants, oauth.GrantCIBA)
	}
	md.GrantTypesSupported = grants
	if s.cfg.AllowDynamicRegistration {
		md.RegistrationEndpoint = s.endpoint(PathRegister)
	}
	md.ClientIDMetadataDocumentSupported = s.cfg.ClientIDMetadataDocuments
	// Identity chaining and ID-JAG (SPECS.md §12): what this server
	// issues as the IdP, and what its jwt-bearer grant (listed above)
	// accepts as the resource authorization server. Which issuers it
	// trusts is not published.
	if len(s.cfg.IDJAGAudiences) > 0 {
		md.IdentityChainingRequestedTokenTypesSupported = []string{oauth.TokenTypeIDJAG}
	}
	if slices.ContainsFunc(s.cfg.TrustedIssuers, func(ti TrustedIssuer) bool { return ti.IDJAG }) {
		md.AuthorizationGrantProfilesSupported = []string{oauth.GrantProfileIDJAG}
	}
	return md
}

func (s *Server) handleMetadata(w http.ResponseWriter, _ *http.Request) {
	writePublicJSON(w, s.Metadata())
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.keys.ring.Load().jwks)
}

func writePublicJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		oauth.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(append(body, '\n'))
}
