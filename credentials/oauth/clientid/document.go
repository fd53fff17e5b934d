package clientid

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// GrantTypes are the grant types of the workloads' documents and
// registrations: client_credentials (RFC 6749 §4.4), token exchange
// (RFC 8693) and the JWT bearer grant (RFC 7523 §2.1). No grant that
// uses a redirect: a workload is not an interactive client.
var GrantTypes = []string{oauth.GrantClientCredentials, oauth.GrantTokenExchange, oauth.GrantJWTBearer}

// Document is the client ID metadata document of a workload
// (draft-ietf-oauth-client-id-metadata-document §4, SPECS.md §11.5), with
// the spiffe_id member of OAuth SPIFFE client authentication (SPECS.md
// §10.8). Members are RFC 7591 §2 client metadata.
//
// Not written: response_types (no grant here uses the authorization
// endpoint), the human-readable URIs (client_uri, logo_uri, tos_uri,
// policy_uri), contacts, scope, software_id and spiffe_bundle_endpoint.
type Document struct {
	// ClientID is client_id, REQUIRED: the document's own URL, exactly.
	ClientID string `json:"client_id"`
	// ClientName is client_name, REQUIRED by MCP (SPECS.md §3.3).
	ClientName string `json:"client_name"`
	// RedirectURIs is redirect_uris, OPTIONAL here (see
	// [Workload.RedirectURIs]).
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// TokenEndpointAuthMethod is token_endpoint_auth_method: always
	// private_key_jwt.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
	// GrantTypes is grant_types: [GrantTypes].
	GrantTypes []string `json:"grant_types"`
	// JWKSURI is jwks_uri; exactly one of JWKSURI and JWKS is set.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// JWKS is jwks, the workload's JWK Set inline.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// SPIFFEID is spiffe_id, REQUIRED by OAuth SPIFFE client
	// authentication for a CIMD client: the workload's SPIFFE ID.
	SPIFFEID string `json:"spiffe_id"`
}

// Document returns the client ID metadata document of the workload named
// workload. A workload without JWKSURI gets its JWK Set inline (its key
// is made on first use). It is an error wrapping [ErrConfig] when the
// workload has no MetadataURL.
func (m *Manager) Document(ctx context.Context, workload string) (*Document, error) {
	w, err := m.workload(workload)
	if err != nil {
		return nil, err
	}
	if w.MetadataURL == "" {
		return nil, fmt.Errorf("%w: workload %q has no metadata document URL", ErrConfig, w.Name)
	}
	d := &Document{
		ClientID:                w.MetadataURL,
		ClientName:              w.clientName(),
		RedirectURIs:            slices.Clone(w.RedirectURIs),
		TokenEndpointAuthMethod: oauth.AuthPrivateKeyJWT,
		GrantTypes:              slices.Clone(GrantTypes),
		JWKSURI:                 w.JWKSURI,
		SPIFFEID:                w.SPIFFEID.String(),
	}
	if w.JWKSURI == "" {
		if d.JWKS, err = m.JWKS(ctx, w.Name); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// JWKS returns the public JWK Set document (RFC 7517 §5) of the workload
// named workload: its key, with kid its RFC 7638 thumbprint, alg and use
// "sig". The key is made on first use.
func (m *Manager) JWKS(ctx context.Context, workload string) ([]byte, error) {
	w, err := m.workload(workload)
	if err != nil {
		return nil, err
	}
	k, err := m.key(ctx, w.Name)
	if err != nil {
		return nil, err
	}
	set, err := k.keySet()
	if err != nil {
		return nil, fmt.Errorf("clientid: JWK Set of workload %q: %w", w.Name, err)
	}
	return set, nil
}
