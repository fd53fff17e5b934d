package clientid

import (
	"context"
	"fmt"
	"slices"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// Mode says how a workload is known as a client at an authorization
// server.
type Mode string

// Modes. An [Identity] has one of ModeSPIFFE, ModeCIMD, ModeRegistration
// and ModeStatic; ModeAuto is a [ServerConfig] setting only.
const (
	// ModeAuto picks the first that applies, in this order:
	//  1. the server lists spiffe_jwt in
	//     token_endpoint_auth_methods_supported: ModeSPIFFE;
	//  2. it says client_id_metadata_document_supported and the workload
	//     has a MetadataURL: ModeCIMD;
	//  3. it has a registration_endpoint: ModeRegistration;
	//  4. a static client is configured for the workload there:
	//     ModeStatic;
	//  5. otherwise the JWT-SVID path ModeSPIFFE, with the
	//     client_assertion_type left to the token client (jwt-bearer at a
	//     server that lists private_key_jwt).
	ModeAuto Mode = "auto"
	// ModeSPIFFE: client_id is the workload's SPIFFE ID and the client
	// authenticates with its JWT-SVID (OAuth SPIFFE client
	// authentication, SPECS.md §10.8). Forced, the assertion type is
	// jwt-spiffe.
	ModeSPIFFE Mode = "spiffe"
	// ModeCIMD: client_id is the workload's metadata document URL
	// (SPECS.md §11.5), authenticated by private_key_jwt with the
	// workload's key, published at the document's jwks_uri.
	ModeCIMD Mode = "cimd"
	// ModeRegistration: client_id is one the server assigned at dynamic
	// registration (RFC 7591), authenticated by private_key_jwt with the
	// workload's key.
	ModeRegistration Mode = "registration"
	// ModeStatic: client_id and key are configured for the server
	// ([ServerConfig.Static]), authenticated by private_key_jwt.
	ModeStatic Mode = "static"
)

// ParseMode returns the Mode s names; empty means ModeAuto. Anything else
// is an error wrapping [ErrConfig].
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeSPIFFE, ModeCIMD, ModeRegistration, ModeStatic:
		return m, nil
	}
	return "", fmt.Errorf("%w: client identity mode %q: want auto, spiffe, cimd, registration or static", ErrConfig, truncate(s, 32))
}

// Identity is how one workload is known as a client at one authorization
// server: what to put in the token client's [oauth.ClientConfig].
type Identity struct {
	// Issuer is the server's issuer identifier.
	Issuer string
	// Workload is the workload's name.
	Workload string
	// Mode is how it is known: ModeSPIFFE, ModeCIMD, ModeRegistration or
	// ModeStatic.
	Mode Mode
	// ClientID is the client_id to send: the SPIFFE ID, the metadata
	// document URL, the registered or the static client_id.
	ClientID string
	// AssertionType is the client_assertion_type: jwt-bearer (RFC 7523
	// §2.2) for private_key_jwt, jwt-spiffe or empty (the token client
	// decides by the server's metadata) on the JWT-SVID path.
	AssertionType string

	assertion oauth.AssertionSource
	server    *oauth.ServerMetadata
}

// UsesSVID reports whether the client authenticates with the workload's
// JWT-SVID (ModeSPIFFE): the caller keeps its JWT-SVID assertion source.
func (id *Identity) UsesSVID() bool { return id.Mode == ModeSPIFFE }

// Assertion is the private_key_jwt assertion source (RFC 7523 §3: iss and
// sub the client_id, aud the server's issuer as the sole audience, a
// fresh jti, iat, exp one minute later, header kid the key's RFC 7638
// thumbprint), or nil on the JWT-SVID path. It refuses an audience other
// than the server's issuer: the client_id means nothing elsewhere.
func (id *Identity) Assertion() oauth.AssertionSource { return id.assertion }

// ClientConfig returns base with the identity's ClientID and
// AssertionType, and with its Assertion unless the identity uses the
// workload's JWT-SVID, whose source base then keeps.
//
// In a token exchange the token client sends its Assertion as the
// actor_token too; with private_key_jwt that is a client assertion, not
// the workload's JWT-SVID.
func (id *Identity) ClientConfig(base oauth.ClientConfig) oauth.ClientConfig {
	base.ClientID = id.ClientID
	base.AssertionType = id.AssertionType
	if id.assertion != nil {
		base.Assertion = id.assertion
	}
	return base
}

// Resolve returns how the workload named workload is known at the
// authorization server md: the server's forced mode, or the first of
// [ModeAuto]'s order that applies. A registration is made once and kept
// in the RegistrationStore; the workload's key is made on first use.
// Errors name the server and what is missing.
func (m *Manager) Resolve(ctx context.Context, md *oauth.ServerMetadata, workload string) (*Identity, error) {
	if md == nil || md.Issuer == "" {
		return nil, fmt.Errorf("%w: no authorization server metadata", ErrConfig)
	}
	w, err := m.workload(workload)
	if err != nil {
		return nil, err
	}
	sc := m.servers[md.Issuer]
	switch sc.Mode {
	case ModeSPIFFE:
		return m.svid(md, w, oauth.AssertionJWTSPIFFE), nil
	case ModeCIMD:
		if w.MetadataURL == "" {
			return nil, fmt.Errorf("%w: server %s is set to cimd, and workload %q has no metadata document URL",
				ErrConfig, md.Issuer, w.Name)
		}
		return m.cimd(ctx, md, w)
	case ModeRegistration:
		if md.RegistrationEndpoint == "" {
			return nil, fmt.Errorf("%w: server %s is set to registration, and its metadata has no registration_endpoint",
				ErrUnsupported, md.Issuer)
		}
		return m.registered(ctx, md, w, sc)
	case ModeStatic:
		st, ok := sc.static[w.Name]
		if !ok {
			return nil, fmt.Errorf("%w: server %s is set to static, and no static client is configured there for workload %q",
				ErrConfig, md.Issuer, w.Name)
		}
		return m.static(ctx, md, w, st)
	}
	if slices.Contains(md.TokenEndpointAuthMethodsSupported, oauth.AuthSPIFFEJWT) {
		return m.svid(md, w, oauth.AssertionJWTSPIFFE), nil
	}
	if md.ClientIDMetadataDocumentSupported && w.MetadataURL != "" {
		return m.cimd(ctx, md, w)
	}
	if md.RegistrationEndpoint != "" {
		return m.registered(ctx, md, w, sc)
	}
	if st, ok := sc.static[w.Name]; ok {
		return m.static(ctx, md, w, st)
	}
	return m.svid(md, w, ""), nil
}

func (m *Manager) svid(md *oauth.ServerMetadata, w Workload, assertionType string) *Identity {
	return &Identity{Issuer: md.Issuer, Workload: w.Name, Mode: ModeSPIFFE, ClientID: w.SPIFFEID.String(),
		AssertionType: assertionType, server: md}
}

func (m *Manager) cimd(ctx context.Context, md *oauth.ServerMetadata, w Workload) (*Identity, error) {
	k, err := m.key(ctx, w.Name)
	if err != nil {
		return nil, fmt.Errorf("clientid: server %s: %w", md.Issuer, err)
	}
	return m.keyIdentity(md, w, ModeCIMD, w.MetadataURL, k)
}

func (m *Manager) static(ctx context.Context, md *oauth.ServerMetadata, w Workload, st staticKey) (*Identity, error) {
	k := st.key
	if k == nil {
		var err error
		if k, err = m.key(ctx, w.Name); err != nil {
			return nil, fmt.Errorf("clientid: server %s: %w", md.Issuer, err)
		}
	}
	return m.keyIdentity(md, w, ModeStatic, st.clientID, k)
}

// keyIdentity is a private_key_jwt identity with client_id clientID and
// key k at the server md.
func (m *Manager) keyIdentity(md *oauth.ServerMetadata, w Workload, mode Mode, clientID string, k *signingKey) (*Identity, error) {
	src, err := oauth.PrivateKeyJWT(clientID, k.signer, k.kid, m.now)
	if err != nil {
		return nil, fmt.Errorf("clientid: server %s: %w", md.Issuer, err)
	}
	issuer := md.Issuer
	assertion := func(ctx context.Context, audience string) (string, error) {
		if audience != issuer {
			return "", fmt.Errorf("clientid: client %q of workload %q is known at %s, not at %q",
				clientID, w.Name, issuer, truncate(audience, 200))
		}
		return src(ctx, audience)
	}
	return &Identity{Issuer: issuer, Workload: w.Name, Mode: mode, ClientID: clientID,
		AssertionType: oauth.AssertionJWTBearer, assertion: assertion, server: md}, nil
}
