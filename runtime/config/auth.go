package config

import (
	"net/netip"
	"strings"
	"time"
)

// Defaults of the auth section.
const (
	DefaultAccessTokenTTL            = 5 * time.Minute
	DefaultRefreshTokenTTL           = 24 * time.Hour
	DefaultCodeTTL                   = time.Minute
	DefaultSigningKeyPeriod          = 720 * time.Hour
	DefaultDynamicRegistration       = true
	DefaultClientIDMetadataDocuments = true
	DefaultAllowPrivateFetch         = false
	DefaultRequireDPoPNonce          = false
	DefaultRegistrationBurst         = 10
	DefaultRegistrationInterval      = time.Minute
	DefaultMaxDynamicClients         = 1000
	DefaultUnusedClientTTL           = 24 * time.Hour
)

// Bounds of the auth section checked by [Config.Validate].
const (
	MinAccessTokenTTL   = 30 * time.Second
	MaxAccessTokenTTL   = time.Hour
	MinRefreshTokenTTL  = time.Minute
	MaxRefreshTokenTTL  = 90 * 24 * time.Hour
	MinCodeTTL          = 10 * time.Second
	MaxCodeTTL          = 10 * time.Minute
	MinSigningKeyPeriod = time.Hour
	// MaxUserNameLen is the longest user name, in bytes.
	MaxUserNameLen = 128
	// MaxClientIDLen is the longest static client_id, in bytes.
	MaxClientIDLen = 255
	// MaxJWKSFileSize is the largest jwks_file of a client, in bytes.
	MaxJWKSFileSize = 64 << 10
	// MaxScopeTokenLen is the longest scope token, in bytes.
	MaxScopeTokenLen = 256
	// Bounds of the dynamic registration limits.
	MaxRegistrationBurst    = 10000
	MinRegistrationInterval = time.Second
	MaxRegistrationInterval = 24 * time.Hour
	MaxDynamicClientsLimit  = 1_000_000
	MinUnusedClientTTL      = time.Minute
	MaxUnusedClientTTL      = 90 * 24 * time.Hour
	// MaxTrustedProxies is the longest trusted_proxies list.
	MaxTrustedProxies = 64
)

// Limits on the argon2id parameters of a password or secret hash. They
// keep a hash in the file from making every login spend unbounded memory or
// time.
const (
	MaxArgon2Memory  = 1 << 20 // KiB: 1 GiB
	MaxArgon2Time    = 10
	MaxArgon2Threads = 16
)

// AuthConfig is the auth section: the embedded OAuth 2.0 authorization
// server, its users, its static clients and the resources it issues tokens
// for. Agents are clients too, identified by their SPIFFE IDs; they are
// listed under agents, never here.
type AuthConfig struct {
	// AccessTokenTTL is the lifetime of access tokens. Default 5m, 30s to 1h.
	AccessTokenTTL time.Duration `json:"access_token_ttl"`
	// RefreshTokenTTL is the lifetime of refresh tokens. Default 24h, 1m to
	// 2160h (90 days).
	RefreshTokenTTL time.Duration `json:"refresh_token_ttl"`
	// CodeTTL is the lifetime of authorization codes. Default 1m, 10s to 10m.
	CodeTTL time.Duration `json:"code_ttl"`
	// SigningKeyPeriod is how long a token signing key is current before
	// the next one takes over. Default 720h, at least 1h.
	SigningKeyPeriod time.Duration `json:"signing_key_period"`
	// DynamicRegistration enables RFC 7591 registration of public clients.
	// Default true.
	DynamicRegistration bool `json:"dynamic_registration"`
	// RegistrationTokenHash closes dynamic registration to holders of an
	// initial access token (RFC 7591 §3), sent as a bearer token: an
	// argon2id or bcrypt hash of the token (agenthost hash-password), never
	// the token. Default empty: registration is open.
	RegistrationTokenHash string `json:"registration_token_hash"`
	// RegistrationBurst is how many registrations one client address may
	// make at once; it may make one more every RegistrationInterval.
	// Default 10, 1 to 10000.
	RegistrationBurst int `json:"registration_burst"`
	// RegistrationInterval is how often an address earns another
	// registration. Default 1m, 1s to 24h.
	RegistrationInterval time.Duration `json:"registration_interval"`
	// MaxDynamicClients caps the registered clients kept at once;
	// registration is refused while it is reached. Default 1000, 1 to
	// 1000000.
	MaxDynamicClients int `json:"max_dynamic_clients"`
	// UnusedClientTTL is how long a registered client that has not
	// obtained a token is kept; one that has is kept for good. Default 24h,
	// 1m to 2160h.
	UnusedClientTTL time.Duration `json:"unused_client_ttl"`
	// TrustedProxies are the IP addresses or CIDR prefixes of reverse
	// proxies in front of the host. Only for connections from them is the
	// client address (which sign-in and registration limits are kept per)
	// taken from X-Forwarded-For. Default none: the connection's address
	// counts.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
	// ClientIDMetadataDocuments accepts https URLs as client_ids, resolved
	// to client ID metadata documents. Default true.
	ClientIDMetadataDocuments bool `json:"client_id_metadata_documents"`
	// AllowPrivateFetch lets metadata document and JWKS fetches reach
	// loopback and private addresses (for development). Default false.
	AllowPrivateFetch bool `json:"allow_private_fetch"`
	// RequireDPoPNonce makes the token endpoint demand server nonces in
	// DPoP proofs (RFC 9449 §8). Default false.
	RequireDPoPNonce bool `json:"require_dpop_nonce"`
	// Users sign in at the authorization server's login page.
	Users []UserConfig `json:"users,omitempty"`
	// Clients are the static OAuth clients.
	Clients []ClientConfig `json:"clients,omitempty"`
	// Resources are the protected resources tokens may be issued for.
	Resources []ResourceConfig `json:"resources,omitempty"`
	// TrustedIssuers are other authorization servers (an organisation's
	// Keycloak, Okta, Entra ID or Auth0, or another agenthost) whose
	// tokens the host takes, each for what it says: access tokens at the
	// host's resources, subject tokens of token exchange, ID-JAGs.
	TrustedIssuers []TrustedIssuerConfig `json:"trusted_issuers,omitempty"`
	// IDJAG lists the authorization servers of other domains the embedded
	// one issues Identity Assertion JWT Authorization Grants for (token
	// exchange with requested_token_type id-jag, SPECS.md §12.2).
	IDJAG []IDJAGAudienceConfig `json:"id_jag,omitempty"`
}

// TrustedIssuerConfig is another authorization server the host trusts.
// Its metadata is discovered (RFC 8414, else OpenID Connect Discovery)
// and its JWK Set fetched from its jwks_uri, cached and refreshed.
type TrustedIssuerConfig struct {
	// Issuer is the issuer identifier, compared exactly with iss. REQUIRED.
	Issuer string `json:"issuer"`
	// AccessTokens: the host's protected resources (hosted MCP servers,
	// A2A agents, the task API) accept this issuer's access tokens, and
	// name it in their RFC 9728 metadata.
	AccessTokens bool `json:"access_tokens,omitempty"`
	// SubjectTokens: token exchange at the embedded server takes this
	// issuer's access tokens as subject tokens (so a task started with
	// such a token acts for its user on every hop).
	SubjectTokens bool `json:"subject_tokens,omitempty"`
	// IDJAG: the embedded server's jwt-bearer grant accepts this issuer's
	// ID-JAGs (typ oauth-id-jag+jwt, aud this host's issuer).
	IDJAG bool `json:"id_jag,omitempty"`
	// Audiences are further values of aud that mean this host in the
	// issuer's access tokens (Entra ID's api://…, Auth0's API
	// identifier), besides each resource's own URL.
	Audiences []string `json:"audiences,omitempty"`
	// AcceptJWTTyp accepts access tokens with typ JWT, or without typ,
	// from this issuer (servers that do not implement RFC 9068 at+jwt:
	// Entra ID, Auth0's default profile and Keycloak send JWT, Okta none)
	// when they carry every claim RFC 9068 requires; in them cid (Okta)
	// stands for client_id and uti (Entra ID) for jti. It weakens the
	// check that tells an access token from other JWTs; off by default.
	AcceptJWTTyp bool `json:"accept_jwt_typ,omitempty"`
	// ScopeClaim is the claim holding the granted scopes: "scope" (RFC
	// 9068, the default) or "scp" (Entra ID, Okta).
	ScopeClaim string `json:"scope_claim,omitempty"`
}

// IDJAGAudienceConfig is an authorization server of another domain the
// embedded server issues ID-JAGs for.
type IDJAGAudienceConfig struct {
	// Issuer is that server's issuer identifier, the ID-JAG's aud.
	// REQUIRED.
	Issuer string `json:"issuer"`
	// Scopes are what an ID-JAG for that server may grant, and what the
	// host's agents ask for there. REQUIRED.
	Scopes []string `json:"scopes,omitempty"`
}

// UserConfig is a user who can sign in. Passwords are never written in the
// configuration, only their hashes (see agenthost hash-password).
type UserConfig struct {
	// Name is the login name: 1 to 128 bytes of UTF-8 without spaces or
	// control characters. REQUIRED, unique.
	Name string `json:"name"`
	// PasswordHash is an argon2id hash in PHC string form
	// ($argon2id$v=19$m=…,t=…,p=…$salt$hash) or a bcrypt hash ($2a$, $2b$
	// or $2y$). REQUIRED.
	PasswordHash string `json:"password_hash"`
	// DisplayName is shown on consent pages. OPTIONAL.
	DisplayName string `json:"display_name"`
	// Email is the user's address, with exactly one '@'. OPTIONAL.
	Email string `json:"email"`
}

// ClientConfig is a static OAuth client. Its secret, if it has one, is
// never written in the configuration, only its hash.
type ClientConfig struct {
	// ID is the client_id. REQUIRED, unique, at most 255 bytes without
	// spaces or control characters, and not a SPIFFE ID.
	ID string `json:"id"`
	// Name is shown on consent pages. OPTIONAL; the ID is shown otherwise.
	Name string `json:"name"`
	// AuthMethod is how the client authenticates at the token endpoint.
	// REQUIRED.
	AuthMethod ClientAuthMethod `json:"auth_method"`
	// SecretHash is an argon2id or bcrypt hash of the client secret, for
	// the client_secret_basic and client_secret_post methods only.
	SecretHash string `json:"secret_hash"`
	// JWKSFile is a file holding the client's public JWK Set, for
	// private_key_jwt only; at most 64 KiB. A relative path is resolved
	// against the directory of the configuration file.
	JWKSFile string `json:"jwks_file"`
	// GenerateKey, for private_key_jwt instead of JWKSFile, has the host
	// create the client's key pair on first start and keep the private
	// key in its data directory (clients/<id>.key, owner-only), where
	// `agenthost token` reads it: a calling system for a single machine
	// or a demo, with no key to manage. A real calling system holds its
	// own key and registers its public JWK Set with JWKSFile.
	GenerateKey bool `json:"generate_key"`
	// RedirectURIs are compared exactly with the redirect_uri of
	// authorization requests. Each is absolute, without fragment, and is
	// https, http on a loopback host, or uses a private-use scheme
	// containing a '.' (RFC 8252 §7.1).
	RedirectURIs []string `json:"redirect_uris"`
	// GrantTypes the client may use. Default authorization_code and
	// refresh_token.
	GrantTypes []GrantType `json:"grant_types"`
	// Scopes the client may ask for. OPTIONAL: when omitted, any scope the
	// server knows.
	Scopes []string `json:"scopes"`
}

// ResourceConfig is a protected resource (RFC 8707): its identifier, which
// becomes the aud of tokens issued for it, and its scopes.
type ResourceConfig struct {
	// URI is an absolute URI without fragment. REQUIRED, unique.
	URI string `json:"uri"`
	// Scopes are the scopes the resource understands.
	Scopes []string `json:"scopes"`
}

// ClientAuthMethod is a token endpoint authentication method (RFC 7591
// §2) a static client may use.
type ClientAuthMethod string

// Client authentication methods.
const (
	AuthMethodNone              ClientAuthMethod = "none"
	AuthMethodClientSecretBasic ClientAuthMethod = "client_secret_basic"
	AuthMethodClientSecretPost  ClientAuthMethod = "client_secret_post"
	AuthMethodPrivateKeyJWT     ClientAuthMethod = "private_key_jwt"
)

var clientAuthMethods = []ClientAuthMethod{AuthMethodNone, AuthMethodClientSecretBasic, AuthMethodClientSecretPost, AuthMethodPrivateKeyJWT}

// Valid reports whether m is one of the defined methods.
func (m ClientAuthMethod) Valid() bool { return oneOf(m, clientAuthMethods) }

// UsesSecret reports whether m authenticates with a client secret.
func (m ClientAuthMethod) UsesSecret() bool {
	return m == AuthMethodClientSecretBasic || m == AuthMethodClientSecretPost
}

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (m *ClientAuthMethod) UnmarshalConfigScalar(text string) error {
	v := ClientAuthMethod(text)
	if !v.Valid() {
		return enumError("auth method", text, clientAuthMethods)
	}
	*m = v
	return nil
}

// GrantType is an OAuth grant type a static client may use.
type GrantType string

// Grant types.
const (
	GrantAuthorizationCode GrantType = "authorization_code"
	GrantRefreshToken      GrantType = "refresh_token"
	GrantClientCredentials GrantType = "client_credentials"
	GrantTokenExchange     GrantType = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantJWTBearer         GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

var grantTypes = []GrantType{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantTokenExchange, GrantJWTBearer}

// Valid reports whether g is one of the defined grant types.
func (g GrantType) Valid() bool { return oneOf(g, grantTypes) }

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (g *GrantType) UnmarshalConfigScalar(text string) error {
	v := GrantType(text)
	if !v.Valid() {
		return enumError("grant type", text, grantTypes)
	}
	*g = v
	return nil
}

// DefaultGrantTypes returns the grant types of a client that lists none:
// authorization_code and refresh_token.
func DefaultGrantTypes() []GrantType {
	return []GrantType{GrantAuthorizationCode, GrantRefreshToken}
}

// defaultAuth is the auth section of an empty file.
func defaultAuth() AuthConfig {
	return AuthConfig{
		AccessTokenTTL:            DefaultAccessTokenTTL,
		RefreshTokenTTL:           DefaultRefreshTokenTTL,
		CodeTTL:                   DefaultCodeTTL,
		SigningKeyPeriod:          DefaultSigningKeyPeriod,
		DynamicRegistration:       DefaultDynamicRegistration,
		ClientIDMetadataDocuments: DefaultClientIDMetadataDocuments,
		AllowPrivateFetch:         DefaultAllowPrivateFetch,
		RequireDPoPNonce:          DefaultRequireDPoPNonce,
		RegistrationBurst:         DefaultRegistrationBurst,
		RegistrationInterval:      DefaultRegistrationInterval,
		MaxDynamicClients:         DefaultMaxDynamicClients,
		UnusedClientTTL:           DefaultUnusedClientTTL,
	}
}

// TrustedProxyPrefixes returns TrustedProxies as prefixes (an address is
// a prefix of its full length). Entries that do not parse are left out;
// [Config.Validate] reports them.
func (a AuthConfig) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range a.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseProxy reads an IP address or a CIDR prefix.
func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// fillDerived gives clients that list no grant types the default ones.
func (a *AuthConfig) fillDerived() {
	for i := range a.Clients {
		if a.Clients[i].GrantTypes == nil {
			a.Clients[i].GrantTypes = DefaultGrantTypes()
		}
	}
}

// resolvePaths makes the clients' JWKS file paths absolute.
func (a *AuthConfig) resolvePaths(abs func(string) string) {
	for i := range a.Clients {
		a.Clients[i].JWKSFile = abs(a.Clients[i].JWKSFile)
	}
}

// Keys refused with a specific message instead of as unknown keys: a
// plaintext secret in the file is a mistake worth explaining.
const (
	msgAgentSecret       = "agents never authenticate with a static secret; they use their SVIDs"
	msgClientSecret      = "secrets are never written in the config; put an argon2id or bcrypt hash in secret_hash (agenthost hash-password)"
	msgUserPassword      = "passwords are never written in the config; put an argon2id or bcrypt hash in password_hash (agenthost hash-password)"
	msgSPIFFEClient      = "agents authenticate with their SVIDs, never a static secret; list the agent under agents instead"
	msgRegistrationToken = "the initial access token is never written in the config; put an argon2id or bcrypt hash of it in registration_token_hash (agenthost hash-password)"
)

func (AgentConfig) refuseKey(name string) (string, bool) {
	switch name {
	case "secret", "client_secret", "secret_hash":
		return msgAgentSecret, true
	}
	return "", false
}

func (ClientConfig) refuseKey(name string) (string, bool) {
	switch name {
	case "secret", "client_secret":
		return msgClientSecret, true
	}
	return "", false
}

func (AuthConfig) refuseKey(name string) (string, bool) {
	switch name {
	case "registration_token", "initial_access_token":
		return msgRegistrationToken, true
	}
	return "", false
}

func (UserConfig) refuseKey(name string) (string, bool) {
	if name == "password" {
		return msgUserPassword, true
	}
	return "", false
}
