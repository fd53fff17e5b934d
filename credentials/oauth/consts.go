package oauth

// Grant types (RFC 6749 §4, RFC 8693 §2.1, RFC 7523 §2.1, CIBA §10.1).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantCIBA              = "urn:openid:params:grant-type:ciba"
)

// Client assertion types (RFC 7523 §2.2, OAuth SPIFFE client authentication).
const (
	AssertionJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	AssertionJWTSPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
)

// Token type identifiers (RFC 8693 §3).
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeTxnToken     = "urn:ietf:params:oauth:token-type:txn_token"
	TokenTypeIDJAG        = "urn:ietf:params:oauth:token-type:id-jag"
)

// Authorization grant profiles, as authorization_grant_profiles_supported
// lists them (ID-JAG draft, SPECS.md §12.2).
const GrantProfileIDJAG = "urn:ietf:params:oauth:grant-profile:id-jag"

// Token endpoint client authentication methods (RFC 7591 §2, RFC 8705 §2,
// OAuth SPIFFE client authentication).
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthTLSClient         = "tls_client_auth"
	AuthSelfSignedTLS     = "self_signed_tls_client_auth"
	AuthSPIFFEJWT         = "spiffe_jwt"
	AuthSPIFFEX509        = "spiffe_x509"
)

// Access token types in token responses (RFC 6750, RFC 9449 §5, RFC 8693 §2.2.1).
const (
	TokenTypeBearer = "Bearer"
	TokenTypeDPoP   = "DPoP"
	TokenTypeNA     = "N_A"
)

// PKCE code challenge methods (RFC 7636 §4.2). Only S256 is accepted.
const PKCES256 = "S256"
