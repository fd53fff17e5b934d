package resource

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// Scope claims an [Issuer] can name (Issuer.ScopeClaim).
const (
	// ScopeClaimScope is RFC 9068 §2.2.3's scope: one space-delimited
	// string.
	ScopeClaimScope = "scope"
	// ScopeClaimSCP is scp, as Entra ID (a space-delimited string) and
	// Okta (an array of strings) write it.
	ScopeClaimSCP = "scp"
)

// Issuer is an authorization server whose access tokens a [Verifier]
// accepts. A JWT is checked with the keys and settings of the issuer its
// iss names, never another's.
type Issuer struct {
	// Issuer is the issuer identifier (RFC 8414 §2): a token's iss must
	// be identical to it. It is listed in the resource's RFC 9728
	// authorization_servers. Required.
	Issuer string
	// Keys finds the issuer's signing keys by kid: jose.StaticKeys for
	// keys held in the process, oauth.RemoteKeys.Key for an issuer's
	// jwks_uri. Required unless Introspect is set; without it, the
	// issuer's JWTs are introspected too.
	Keys jose.KeyFunc
	// Introspect, when set, checks opaque tokens by RFC 7662
	// introspection at this issuer (see oauth.Introspector and
	// oauth.DiscoverIssuer).
	Introspect func(ctx context.Context, token string) (*oauth.IntrospectionResponse, error)
	// Audiences are further values of aud that name this resource in the
	// issuer's tokens, besides Config.Resource: Entra ID's api://…
	// application ID URI, an Auth0 API identifier. Compared exactly.
	Audiences []string
	// AcceptJWTTyp accepts this issuer's access tokens with typ JWT or
	// without typ, as servers that do not implement RFC 9068 send them
	// (Entra ID, Auth0's default profile and Keycloak by default send
	// JWT; Okta sends none), if they carry every claim RFC 9068 §2.2
	// requires and none that marks an ID token. For such tokens the
	// client may be named by cid (Okta) and the token by uti (Entra ID)
	// where client_id and jti are missing. It weakens the typ check (RFC
	// 8725 §3.11) for this issuer: its other JWTs with the same claims
	// are no longer told apart by typ. Off by default.
	AcceptJWTTyp bool
	// ScopeClaim names the claim holding the granted scopes:
	// ScopeClaimScope (the default when empty) or ScopeClaimSCP. Only
	// that claim is read.
	ScopeClaim string
	// Revoked and SubjectRevoked, when set, are as Config's, for this
	// issuer's JWT access tokens.
	Revoked        func(ctx context.Context, jti string) (bool, error)
	SubjectRevoked func(ctx context.Context, subject string, issuedAt time.Time) (bool, error)
}

// checkIssuers checks the issuers of a Config (primary is Config.Issuer)
// and returns a copy of extra.
func checkIssuers(primary string, extra []Issuer) ([]Issuer, error) {
	seen := map[string]bool{}
	if primary != "" {
		seen[primary] = true
	}
	out := make([]Issuer, len(extra))
	for i, is := range extra {
		switch {
		case is.Issuer == "":
			return nil, fmt.Errorf("resource: Issuers[%d]: Issuer is required", i)
		case seen[is.Issuer]:
			return nil, fmt.Errorf("resource: Issuers[%d]: issuer %q is listed twice", i, is.Issuer)
		case is.Keys == nil && is.Introspect == nil:
			return nil, fmt.Errorf("resource: Issuers[%d]: Keys or Introspect is required", i)
		case is.ScopeClaim != "" && is.ScopeClaim != ScopeClaimScope && is.ScopeClaim != ScopeClaimSCP:
			return nil, fmt.Errorf("resource: Issuers[%d]: ScopeClaim %q is neither %q nor %q", i, is.ScopeClaim, ScopeClaimScope, ScopeClaimSCP)
		case slices.Contains(is.Audiences, ""):
			return nil, fmt.Errorf("resource: Issuers[%d]: an empty audience", i)
		}
		seen[is.Issuer] = true
		is.Audiences = slices.Clone(is.Audiences)
		out[i] = is
	}
	return out, nil
}

// primary is Config.Issuer with its settings, read when used.
func (v *Verifier) primary() (Issuer, bool) {
	if v.cfg.Issuer == "" {
		return Issuer{}, false
	}
	return Issuer{Issuer: v.cfg.Issuer, Keys: v.cfg.Keys, Introspect: v.cfg.Introspect,
		Revoked: v.cfg.Revoked, SubjectRevoked: v.cfg.SubjectRevoked}, true
}

// lookup returns the accepted issuer identical to iss.
func (v *Verifier) lookup(iss string) (Issuer, bool) {
	if p, ok := v.primary(); ok && p.Issuer == iss {
		return p, true
	}
	for _, is := range v.cfg.Issuers {
		if is.Issuer == iss {
			return is, true
		}
	}
	return Issuer{}, false
}

// introspecting lists the issuers with introspection, in order.
func (v *Verifier) introspecting() []Issuer {
	var out []Issuer
	if p, ok := v.primary(); ok && p.Introspect != nil {
		out = append(out, p)
	}
	for _, is := range v.cfg.Issuers {
		if is.Introspect != nil {
			out = append(out, is)
		}
	}
	return out
}

// AuthorizationServers are the issuers whose tokens v accepts, in order:
// Config.Issuer, then Config.Issuers. They are the resource's RFC 9728
// authorization_servers.
func (v *Verifier) AuthorizationServers() []string {
	var out []string
	if v.cfg.Issuer != "" {
		out = append(out, v.cfg.Issuer)
	}
	for _, is := range v.cfg.Issuers {
		out = append(out, is.Issuer)
	}
	return out
}

// Metadata returns md as the metadata of v's resource (RFC 9728 §2): its
// resource is v's resource identifier and its authorization_servers are
// every issuer v accepts ([Verifier.AuthorizationServers]), whatever md
// held.
func (v *Verifier) Metadata(md oauth.ResourceMetadata) oauth.ResourceMetadata {
	md.Resource = v.cfg.Resource
	md.AuthorizationServers = v.AuthorizationServers()
	return md
}

// MetadataHandler serves [Verifier.Metadata] of md, as [MetadataHandler]
// does.
func (v *Verifier) MetadataHandler(md oauth.ResourceMetadata) http.Handler {
	return MetadataHandler(v.Metadata(md))
}

// audience reports whether aud names resource or one of is's further
// audiences.
func (is *Issuer) audience(resource string, aud []string) bool {
	for _, a := range aud {
		if a == resource || slices.Contains(is.Audiences, a) {
			return true
		}
	}
	return false
}

// scopes reads the granted scopes from is's scope claim: scope (a
// space-delimited string), or scp (a string or an array of scope tokens).
func (is *Issuer) scopes(claims map[string]any, scope string) ([]string, error) {
	if is.ScopeClaim != ScopeClaimSCP {
		return oauth.ParseScope(scope)
	}
	switch scp := claims[ScopeClaimSCP].(type) {
	case nil:
		if _, present := claims[ScopeClaimSCP]; present {
			return nil, errors.New("resource: scp is null")
		}
		return nil, nil
	case string:
		return oauth.ParseScope(scp)
	case []any:
		if len(scp) > oauth.MaxScopes {
			return nil, fmt.Errorf("resource: more than %d scopes", oauth.MaxScopes)
		}
		tokens := make([]string, 0, len(scp))
		for _, e := range scp {
			s, ok := e.(string)
			if !ok || !oauth.ValidScopeToken(s) {
				return nil, errors.New("resource: scp holds something other than a scope token")
			}
			tokens = append(tokens, s)
		}
		return oauth.ParseScope(strings.Join(tokens, " "))
	}
	return nil, errors.New("resource: scp is neither a string nor an array")
}

// tokenClaims are the claims verifyJWT reads: RFC 9068's and azp.
type tokenClaims struct {
	oauth.AccessTokenClaims
	// AuthorizedParty is azp (OpenID Connect Core §2), which stands for
	// client_id when a token lacks it.
	AuthorizedParty string `json:"azp,omitempty"`
	// ClientIDOkta (cid) and TokenIDEntra (uti) stand for client_id and
	// jti in the tokens of issuers with AcceptJWTTyp only.
	ClientIDOkta string `json:"cid,omitempty"`
	TokenIDEntra string `json:"uti,omitempty"`
}

// peekIssuer reads a JWT's iss without verifying anything: it only picks
// the issuer whose keys then verify the token, and the verification
// requires that iss again.
func peekIssuer(token string) (string, error) {
	if len(token) > jose.DefaultMaxTokenSize {
		return "", fmt.Errorf("%w: token too large", jose.ErrMalformed)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: not a JWS compact serialization", jose.ErrMalformed)
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("%w: payload is not base64url", jose.ErrMalformed)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(payload, &members); err != nil || members == nil {
		return "", fmt.Errorf("%w: payload is not a JSON object", jose.ErrMalformed)
	}
	var iss string
	if err := json.Unmarshal(members["iss"], &iss); err != nil || iss == "" {
		return "", fmt.Errorf("%w: no iss", jose.ErrMalformed)
	}
	return iss, nil
}
