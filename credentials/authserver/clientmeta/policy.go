package clientmeta

import (
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// Limits on member values.
const (
	DefaultMaxRedirectURIs      = 10
	DefaultMaxRedirectURILength = maxURILength
	maxURILength                = 2048
	maxTextLength               = 256
	maxContacts                 = 10
	maxJWKSSize                 = 16 << 10
)

// Response types (RFC 6749 §3.1.1). Only code is supported: response types
// that return tokens from the authorization endpoint are not used
// (RFC 9700 §2.1.2).
const ResponseTypeCode = "code"

// Application types (OpenID Connect Dynamic Client Registration §2).
const (
	ApplicationTypeWeb    = "web"
	ApplicationTypeNative = "native"
)

// Policy is what the authorization server accepts in client metadata. The
// zero value is the default policy.
type Policy struct {
	// AllowedAuthMethods are the token_endpoint_auth_method values
	// accepted. Nil means none and private_key_jwt. The client_secret_*
	// methods are refused even when listed (RFC 9700 §2.5).
	AllowedAuthMethods []string

	// AllowedGrantTypes are the grant_types values accepted. Nil means
	// authorization_code and refresh_token.
	AllowedGrantTypes []string

	// DenyLoopbackHTTP refuses http redirect URIs on the loopback
	// interface (http://127.0.0.1, http://[::1] and http://localhost with
	// any port, RFC 8252 §7.3), which are accepted by default.
	DenyLoopbackHTTP bool

	// DenyCustomSchemes refuses private-use URI scheme redirect URIs
	// (a reverse domain name scheme such as com.example.app, RFC 8252
	// §7.1), which are accepted by default.
	DenyCustomSchemes bool

	// MaxRedirectURIs caps redirect_uris. Zero means
	// DefaultMaxRedirectURIs.
	MaxRedirectURIs int

	// MaxRedirectURILength caps the length of each redirect URI, in bytes.
	// Zero means DefaultMaxRedirectURILength.
	MaxRedirectURILength int
}

func (p Policy) authMethods() []string {
	if p.AllowedAuthMethods == nil {
		return []string{oauth.AuthNone, oauth.AuthPrivateKeyJWT}
	}
	return p.AllowedAuthMethods
}

func (p Policy) grantTypes() []string {
	if p.AllowedGrantTypes == nil {
		return []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}
	}
	return p.AllowedGrantTypes
}

func (p Policy) maxRedirectURIs() int {
	if p.MaxRedirectURIs <= 0 {
		return DefaultMaxRedirectURIs
	}
	return p.MaxRedirectURIs
}

func (p Policy) maxRedirectURILength() int {
	if p.MaxRedirectURILength <= 0 {
		return DefaultMaxRedirectURILength
	}
	return p.MaxRedirectURILength
}

// ValidateRegistration checks a dynamic client registration request
// (RFC 7591 §2, §3.1) against p and fills in the defaults: auth method none
// (only clients without shared secrets register), grant_types
// [authorization_code], and response_types [code] when authorization_code
// is among the grant types. It returns an [*Error] with code
// invalid_redirect_uri or invalid_client_metadata.
//
// A client_secret or client_secret_expires_at in the request, and the
// client_secret_* auth methods, are refused. private_key_jwt needs exactly
// one of jwks and jwks_uri. client_id and client_id_issued_at are left for
// the caller to assign.
func (p Policy) ValidateRegistration(m *Metadata) error {
	if m == nil {
		return metadataError("no metadata")
	}
	return p.validate(m)
}

// ValidateDocument checks a client ID metadata document fetched from
// clientID (draft-ietf-oauth-client-id-metadata-document §3, §4; SPECS.md
// §11.5) and fills in the same defaults as [Policy.ValidateRegistration].
// clientID must satisfy [IsClientIDURL]; the document's client_id must
// equal it exactly (code point equality, no normalization); the document
// must have client_name and redirect_uris (MCP, SPECS.md §3.3); it must not
// carry a client_secret or client_secret_expires_at; and its auth method
// must be none or private_key_jwt.
func (p Policy) ValidateDocument(clientID string, m *Metadata) error {
	if m == nil {
		return metadataError("no metadata")
	}
	if !IsClientIDURL(clientID) {
		return metadataError("the client_id is not a client ID metadata document URL")
	}
	if m.ClientID != clientID {
		return metadataError("the document's client_id %s differs from the URL it was fetched from", show(m.ClientID))
	}
	switch m.TokenEndpointAuthMethod {
	case "", oauth.AuthNone, oauth.AuthPrivateKeyJWT:
	default:
		return metadataError("token_endpoint_auth_method %s is not allowed in a client ID metadata document",
			show(m.TokenEndpointAuthMethod))
	}
	if m.ClientName == "" {
		return metadataError("client_name is required")
	}
	if len(m.RedirectURIs) == 0 {
		return redirectError("redirect_uris is required")
	}
	return p.validate(m)
}

// validate holds the checks and defaults common to registration requests
// and metadata documents.
func (p Policy) validate(m *Metadata) error {
	if m.ClientSecret != "" || m.ClientSecretExpiresAt != 0 {
		return metadataError("client secrets are not supported")
	}
	if err := p.checkAuthMethod(m); err != nil {
		return err
	}
	if err := p.checkGrants(m); err != nil {
		return err
	}
	if err := p.checkRedirectURIs(m); err != nil {
		return err
	}
	if m.Scope != "" {
		if _, err := oauth.ParseScope(m.Scope); err != nil {
			return metadataError("scope must be scope tokens (RFC 6749 section 3.3) separated by single spaces")
		}
	}
	switch m.ApplicationType {
	case "", ApplicationTypeWeb, ApplicationTypeNative:
	default:
		return metadataError("application_type must be web or native")
	}
	for _, f := range []struct{ name, value string }{
		{"client_name", m.ClientName},
		{"software_id", m.SoftwareID},
		{"software_version", m.SoftwareVersion},
	} {
		if err := checkText(f.name, f.value); err != nil {
			return err
		}
	}
	if len(m.Contacts) > maxContacts {
		return metadataError("contacts has more than %d entries", maxContacts)
	}
	for _, c := range m.Contacts {
		if c == "" {
			return metadataError("contacts has an empty entry")
		}
		if err := checkText("contacts", c); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, value string }{
		{"client_uri", m.ClientURI},
		{"logo_uri", m.LogoURI},
		{"tos_uri", m.TOSURI},
		{"policy_uri", m.PolicyURI},
	} {
		if f.value != "" {
			if err := checkWebURI(f.name, f.value); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p Policy) checkAuthMethod(m *Metadata) error {
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = oauth.AuthNone
	}
	method := m.TokenEndpointAuthMethod
	if strings.HasPrefix(method, "client_secret_") {
		return metadataError("token_endpoint_auth_method %s uses a shared secret, which is not supported", show(method))
	}
	if !slices.Contains(p.authMethods(), method) {
		return metadataError("token_endpoint_auth_method %s is not supported", show(method))
	}
	if len(m.JWKS) > 0 && m.JWKSURI != "" {
		return metadataError("jwks and jwks_uri must not both be present")
	}
	if m.JWKSURI != "" {
		if err := checkWebURI("jwks_uri", m.JWKSURI); err != nil {
			return err
		}
	}
	if len(m.JWKS) > 0 {
		keys, err := jose.ParseKeySet(m.JWKS, maxJWKSSize)
		if err != nil || len(keys) == 0 {
			return metadataError("jwks must be a JWK Set of public signing keys, each with a kid")
		}
	}
	if method == oauth.AuthPrivateKeyJWT && len(m.JWKS) == 0 && m.JWKSURI == "" {
		return metadataError("private_key_jwt requires jwks or jwks_uri")
	}
	return nil
}

func (p Policy) checkGrants(m *Metadata) error {
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{oauth.GrantAuthorizationCode}
	}
	allowed := p.grantTypes()
	for i, g := range m.GrantTypes {
		if !slices.Contains(allowed, g) {
			return metadataError("grant type %s is not supported", show(g))
		}
		if slices.Contains(m.GrantTypes[:i], g) {
			return metadataError("grant type %s is listed twice", show(g))
		}
	}
	if len(m.GrantTypes) == 1 && m.GrantTypes[0] == oauth.GrantRefreshToken {
		return metadataError("grant type refresh_token needs a grant type that issues refresh tokens")
	}
	code := slices.Contains(m.GrantTypes, oauth.GrantAuthorizationCode)
	if len(m.ResponseTypes) == 0 && code {
		m.ResponseTypes = []string{ResponseTypeCode}
	}
	for i, rt := range m.ResponseTypes {
		if rt != ResponseTypeCode {
			return metadataError("response type %s is not supported", show(rt))
		}
		if slices.Contains(m.ResponseTypes[:i], rt) {
			return metadataError("response type %s is listed twice", show(rt))
		}
	}
	// RFC 7591 §2.1: the code response type goes with the
	// authorization_code grant type, in both directions.
	if code != slices.Contains(m.ResponseTypes, ResponseTypeCode) {
		return metadataError("response type code and grant type authorization_code must be used together")
	}
	return nil
}

func (p Policy) checkRedirectURIs(m *Metadata) error {
	if len(m.RedirectURIs) == 0 {
		if slices.Contains(m.GrantTypes, oauth.GrantAuthorizationCode) {
			return redirectError("redirect_uris is required for the authorization_code grant")
		}
		return nil
	}
	if n := p.maxRedirectURIs(); len(m.RedirectURIs) > n {
		return redirectError("redirect_uris has more than %d entries", n)
	}
	for i, u := range m.RedirectURIs {
		if err := p.CheckRedirectURI(u); err != nil {
			return err
		}
		if slices.Contains(m.RedirectURIs[:i], u) {
			return redirectError("redirect URI %s is listed twice", show(u))
		}
	}
	return nil
}

// CheckRedirectURI checks one redirect URI against p: an absolute URI
// without fragment, userinfo or wildcard, in ASCII without whitespace, that
// is https with a host, loopback http (RFC 8252 §7.3) or a private-use
// scheme containing a dot (RFC 8252 §7.1). An https or http URI's port, if
// it has one, is a port number from 1 to 65535 without leading zeros. It
// returns an [*Error] with code invalid_redirect_uri.
func (p Policy) CheckRedirectURI(s string) error {
	if s == "" {
		return redirectError("a redirect URI is empty")
	}
	if n := p.maxRedirectURILength(); len(s) > n {
		return redirectError("a redirect URI is longer than %d bytes", n)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return redirectError("redirect URI %s has whitespace, control or non-ASCII characters", show(s))
		}
	}
	if strings.Contains(s, "#") {
		return redirectError("redirect URI %s has a fragment", show(s))
	}
	if strings.Contains(s, "*") {
		return redirectError("redirect URI %s has a wildcard", show(s))
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return redirectError("redirect URI %s is not an absolute URI", show(s))
	}
	if u.User != nil {
		return redirectError("redirect URI %s has userinfo", show(s))
	}
	switch {
	case u.Scheme == "https":
		if u.Opaque != "" || u.Hostname() == "" {
			return redirectError("redirect URI %s has no host", show(s))
		}
	case u.Scheme == "http":
		if p.DenyLoopbackHTTP || u.Opaque != "" || !loopbackHost(u.Hostname()) {
			return redirectError("redirect URI %s uses http on a host other than the loopback interface", show(s))
		}
	case strings.Contains(u.Scheme, "."):
		if p.DenyCustomSchemes {
			return redirectError("redirect URI %s uses a private-use scheme, which is not allowed", show(s))
		}
		if u.Opaque == "" && u.Host == "" && u.Path == "" {
			return redirectError("redirect URI %s is only a scheme", show(s))
		}
	default:
		return redirectError("redirect URI %s uses scheme %s, which is not allowed", show(s), show(u.Scheme))
	}
	if (u.Scheme == "https" || u.Scheme == "http") && !oauth.ValidPort(u) {
		return redirectError("redirect URI %s has a port that is not a number from 1 to 65535", show(s))
	}
	return nil
}

// loopbackHost reports whether host names the loopback interface the way
// RFC 8252 §7.3 and MCP allow.
func loopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || strings.EqualFold(host, "localhost")
}

// checkWebURI requires an absolute https URL with a host and no userinfo
// or fragment.
func checkWebURI(name, s string) error {
	if len(s) > maxURILength {
		return metadataError("%s is longer than %d bytes", name, maxURILength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return metadataError("%s has whitespace, control or non-ASCII characters", name)
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Opaque != "" || u.Hostname() == "" {
		return metadataError("%s must be an absolute https URL", name)
	}
	if u.User != nil || strings.Contains(s, "#") {
		return metadataError("%s must not have userinfo or a fragment", name)
	}
	return nil
}

// checkText bounds a human-readable member and refuses control and format
// characters (which could disguise it on a consent page).
func checkText(name, s string) error {
	if len(s) > maxTextLength {
		return metadataError("%s is longer than %d bytes", name, maxTextLength)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			return metadataError("%s has control or formatting characters", name)
		}
	}
	return nil
}
