package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// FederationConfig is the federation section: the other SPIFFE trust
// domains this one federates with (SPECS.md §10.7). Their bundles are
// fetched from their bundle endpoints and refreshed by their refresh
// hints; their workloads' SVIDs are then accepted where this section says:
// as clients of the embedded authorization server, and as TLS peers.
type FederationConfig struct {
	// TrustDomains are the federated trust domains.
	TrustDomains []FederatedDomainConfig `json:"trust_domains,omitempty"`
}

// IsZero reports whether the section federates with no trust domain (it
// is then left out of the canonical form).
func (f FederationConfig) IsZero() bool { return len(f.TrustDomains) == 0 }

// BundleProfile is how a SPIFFE bundle endpoint authenticates (SPECS.md
// §10.7).
type BundleProfile string

// Bundle endpoint profiles.
const (
	// ProfileHTTPSWeb: the endpoint has a Web PKI certificate.
	ProfileHTTPSWeb BundleProfile = "https_web"
	// ProfileHTTPSSPIFFE: the endpoint presents an X.509-SVID of its own
	// trust domain, with the SPIFFE ID endpoint_spiffe_id, verified with
	// that domain's bundle (bootstrapped from bundle_file).
	ProfileHTTPSSPIFFE BundleProfile = "https_spiffe"
)

var bundleProfiles = []BundleProfile{ProfileHTTPSWeb, ProfileHTTPSSPIFFE}

// Valid reports whether p is a known profile.
func (p BundleProfile) Valid() bool { return oneOf(p, bundleProfiles) }

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (p *BundleProfile) UnmarshalConfigScalar(text string) error {
	v := BundleProfile(text)
	if !v.Valid() {
		return enumError("profile", text, bundleProfiles)
	}
	*p = v
	return nil
}

// FederatedDomainConfig is one federated trust domain.
type FederatedDomainConfig struct {
	// Name is the trust domain name. REQUIRED, unique, not this host's.
	Name string `json:"name"`
	// BundleEndpoint is the URL of the domain's SPIFFE bundle endpoint
	// (another agenthost serves it at /spiffe/bundle; SPIRE at its
	// federation endpoint): https, or http on a loopback host with
	// auth.allow_private_fetch (development). REQUIRED.
	BundleEndpoint string `json:"bundle_endpoint"`
	// Profile is the endpoint's profile. Default https_web.
	Profile BundleProfile `json:"profile,omitempty"`
	// EndpointSPIFFEID is the SPIFFE ID the endpoint presents under
	// https_spiffe. REQUIRED with that profile, a member of Name.
	EndpointSPIFFEID string `json:"endpoint_spiffe_id,omitempty"`
	// BundleFile holds the domain's bundle as first obtained out of band:
	// under https_spiffe it verifies the endpoint until a fetched bundle
	// replaces it. REQUIRED with https_spiffe.
	BundleFile string `json:"bundle_file,omitempty"`
	// CAFile holds PEM certificates that verify an https_web endpoint
	// instead of the system's roots (a private PKI). OPTIONAL.
	CAFile string `json:"ca_file,omitempty"`
	// Peers are the origins (https://host:port) of the domain's hosts.
	// A call to one presents the calling workload's X.509-SVID and
	// accepts only an X.509-SVID of this domain as the server's
	// certificate, verified with the domain's bundle.
	Peers []string `json:"peers,omitempty"`
	// Clients are the domain's workloads the embedded authorization
	// server admits as clients (they authenticate with JWT-SVIDs of their
	// domain): an exact SPIFFE ID, or one ending in "/*" for every ID
	// under that path.
	Clients []FederatedClientConfig `json:"clients,omitempty"`
}

// FederatedClientConfig admits workloads of a federated trust domain as
// clients of the embedded authorization server.
type FederatedClientConfig struct {
	// SPIFFEID is the client's SPIFFE ID, or a prefix ending in "/*"
	// matching whole path segments (spiffe://b.test/agent/* matches
	// spiffe://b.test/agent/x, not spiffe://b.test/agentx). REQUIRED.
	SPIFFEID string `json:"spiffe_id"`
	// Scopes the clients may be issued. REQUIRED.
	Scopes []string `json:"scopes"`
}

func (f *FederationConfig) resolvePaths(abs func(string) string) {
	for i := range f.TrustDomains {
		f.TrustDomains[i].BundleFile = abs(f.TrustDomains[i].BundleFile)
		f.TrustDomains[i].CAFile = abs(f.TrustDomains[i].CAFile)
	}
}

// EffectiveProfile is the profile as written, or https_web.
func (d FederatedDomainConfig) EffectiveProfile() BundleProfile {
	if d.Profile == "" {
		return ProfileHTTPSWeb
	}
	return d.Profile
}

// FederatedDomain returns the federated trust domain named name.
func (c *Config) FederatedDomain(name string) (FederatedDomainConfig, bool) {
	for _, d := range c.Federation.TrustDomains {
		if d.Name == name {
			return d, true
		}
	}
	return FederatedDomainConfig{}, false
}

func (v *validator) federation() {
	seen := map[string]int{}
	peers := map[string]string{}
	for i, d := range v.c.Federation.TrustDomains {
		base := fmt.Sprintf("federation.trust_domains[%d]", i)
		switch {
		case !validTrustDomainName(d.Name):
			v.invalid(base+".name", "%s is not a trust domain name: lowercase a-z, 0-9, '.', '-' and '_', at most %d bytes", quoteValue(d.Name), maxTrustDomainLen)
		case d.Name == v.c.TrustDomain:
			v.invalid(base+".name", "%q is this host's own trust domain", d.Name)
		default:
			if j, dup := seen[d.Name]; dup {
				v.invalid(base+".name", "trust domain %q is already federated at federation.trust_domains[%d]", d.Name, j)
			}
			seen[d.Name] = i
		}
		if d.BundleEndpoint == "" {
			v.invalid(base+".bundle_endpoint", "is required: the URL of the trust domain's SPIFFE bundle endpoint")
		} else {
			v.remoteURL(base+".bundle_endpoint", d.BundleEndpoint)
		}
		if d.Profile != "" && !d.Profile.Valid() {
			v.invalid(base+".profile", "%v", enumError("profile", string(d.Profile), bundleProfiles))
		}
		switch d.EffectiveProfile() {
		case ProfileHTTPSSPIFFE:
			if !memberOf(d.EndpointSPIFFEID, d.Name) {
				v.invalid(base+".endpoint_spiffe_id", "is required with profile https_spiffe: the SPIFFE ID, in %s, the endpoint presents", d.Name)
			}
			if d.BundleFile == "" {
				v.invalid(base+".bundle_file", "is required with profile https_spiffe: the bundle obtained out of band that verifies the endpoint")
			}
			if d.CAFile != "" {
				v.invalid(base+".ca_file", "applies to profile https_web only")
			}
		case ProfileHTTPSWeb:
			if d.EndpointSPIFFEID != "" {
				v.invalid(base+".endpoint_spiffe_id", "applies to profile https_spiffe only")
			}
			if d.CAFile != "" {
				v.tlsFile(base+".ca_file", d.CAFile)
			}
		}
		if d.BundleFile != "" {
			v.bundleFile(base+".bundle_file", d.BundleFile)
		}
		for j, p := range d.Peers {
			path := fmt.Sprintf("%s.peers[%d]", base, j)
			o, err := ParseOrigin(p)
			switch {
			case err != nil:
				v.invalid(path, "%v", err)
			case !strings.HasPrefix(o, "https://"):
				v.invalid(path, "must be https: a peer is reached over TLS with SVIDs")
			default:
				if td, dup := peers[o]; dup {
					v.invalid(path, "%s is already a peer of trust domain %q", o, td)
				}
				peers[o] = d.Name
			}
		}
		for j, c := range d.Clients {
			path := fmt.Sprintf("%s.clients[%d]", base, j)
			id := strings.TrimSuffix(c.SPIFFEID, "/*")
			if !memberOf(id, d.Name) {
				v.invalid(path+".spiffe_id", "%s is not a SPIFFE ID (or prefix ending in /*) of trust domain %q", quoteValue(c.SPIFFEID), d.Name)
			}
			if len(c.Scopes) == 0 {
				v.invalid(path+".scopes", "lists no scopes: what the clients may be issued")
			}
			v.scopes(path+".scopes", c.Scopes)
		}
	}
}

// memberOf reports whether id is a SPIFFE ID with a path in trust domain
// td (a syntax check; the host parses it with go-spiffe).
func memberOf(id, td string) bool {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "spiffe" || u.Host != td || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return false
	}
	p := u.Path
	if p == "" || p == "/" || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			switch c := seg[i]; {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// listenTLS checks listen.tls: files, or the host's SVID.
func (v *validator) listenTLS(t TLSConfig) {
	if t.SVID {
		if t.CertFile != "" || t.KeyFile != "" {
			v.invalid("listen.tls.svid", "serves the host's X.509-SVID; remove cert_file and key_file, or svid")
		}
	} else {
		v.tlsFile("listen.tls.cert_file", t.CertFile)
		v.tlsFile("listen.tls.key_file", t.KeyFile)
		if len(t.Peers) > 0 {
			v.invalid("listen.tls.peers", "applies with svid: true only")
		}
	}
	for i, p := range t.Peers {
		td, _, _ := strings.Cut(strings.TrimPrefix(p, "spiffe://"), "/")
		ok := strings.HasPrefix(p, "spiffe://") && validTrustDomainName(td)
		if ok && p != "spiffe://"+td {
			ok = memberOf(p, td)
		}
		if !ok {
			v.invalid(fmt.Sprintf("listen.tls.peers[%d]", i), "%s is neither a SPIFFE ID nor spiffe://<trust domain>", quoteValue(p))
		}
	}
}

// workloadAPIAddr checks identity.workload_api: unix:///absolute/path or
// tcp://ip:port, as SPIFFE_ENDPOINT_SOCKET takes it.
func (v *validator) workloadAPIAddr(addr string) {
	const path = "identity.workload_api"
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		v.invalid(path, "%s is not unix:///path or tcp://ip:port", quoteValue(addr))
	case u.Scheme == "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			v.invalid(path, "%s is not unix:///absolute/path", quoteValue(addr))
		}
	case u.Scheme == "tcp":
		if u.Port() == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || !isIPLiteral(u.Hostname()) {
			v.invalid(path, "%s is not tcp://ip:port (an IP address, not a name)", quoteValue(addr))
		}
	default:
		v.invalid(path, "%s is not unix:///path or tcp://ip:port", quoteValue(addr))
	}
}

func isIPLiteral(host string) bool { return net.ParseIP(host) != nil }

// trustedIssuers checks auth.trusted_issuers and auth.id_jag.
func (v *validator) trustedIssuers() {
	seen := map[string]int{}
	for i, ti := range v.c.Auth.TrustedIssuers {
		base := fmt.Sprintf("auth.trusted_issuers[%d]", i)
		if ti.Issuer == "" {
			v.invalid(base+".issuer", "is required: the issuer identifier of the authorization server")
		} else {
			v.remoteURL(base+".issuer", ti.Issuer)
			if j, dup := seen[ti.Issuer]; dup {
				v.invalid(base+".issuer", "%s is already trusted at auth.trusted_issuers[%d]", quoteValue(ti.Issuer), j)
			}
			seen[ti.Issuer] = i
		}
		if !ti.AccessTokens && !ti.SubjectTokens && !ti.IDJAG {
			v.invalid(base, "trusts the issuer for nothing: set access_tokens, subject_tokens or id_jag")
		}
		if ti.ScopeClaim != "" && ti.ScopeClaim != "scope" && ti.ScopeClaim != "scp" {
			v.invalid(base+".scope_claim", "%s is neither scope nor scp", quoteValue(ti.ScopeClaim))
		}
		if (len(ti.Audiences) > 0 || ti.AcceptJWTTyp || ti.ScopeClaim != "") && !ti.AccessTokens {
			v.invalid(base, "audiences, accept_jwt_typ and scope_claim apply to access_tokens only")
		}
		for j, a := range ti.Audiences {
			if a == "" || strings.ContainsAny(a, " \t\r\n") {
				v.invalid(fmt.Sprintf("%s.audiences[%d]", base, j), "%s is not an audience value", quoteValue(a))
			}
		}
	}
	seen = map[string]int{}
	for i, a := range v.c.Auth.IDJAG {
		base := fmt.Sprintf("auth.id_jag[%d]", i)
		if a.Issuer == "" {
			v.invalid(base+".issuer", "is required: the issuer identifier of the other domain's authorization server")
		} else {
			v.remoteURL(base+".issuer", a.Issuer)
			if j, dup := seen[a.Issuer]; dup {
				v.invalid(base+".issuer", "%s is already listed at auth.id_jag[%d]", quoteValue(a.Issuer), j)
			}
			seen[a.Issuer] = i
		}
		if len(a.Scopes) == 0 {
			v.invalid(base+".scopes", "lists no scopes: what an ID-JAG for that server may grant")
		}
		v.scopes(base+".scopes", a.Scopes)
	}
}

// remoteClient checks a remote MCP server's chaining and client keys.
func (v *validator) remoteClient(base string, r MCPRemoteConfig) {
	if r.Chaining != "" && len(r.Command) > 0 {
		v.invalid(base+".chaining", "a command remote gets no token; chaining applies to url remotes only")
	}
	if r.Chaining == ChainingIDJAG && r.ActingAs == ActingAsAgent {
		v.invalid(base+".chaining", "identity chaining carries a user's authority; it cannot be used with acting_as: agent")
	}
	if r.Chaining == ChainingIDJAG && len(v.c.Auth.IDJAG) == 0 {
		v.invalid(base+".chaining", "needs the remote's authorization server under auth.id_jag")
	}
	c := r.Client
	if c == nil {
		return
	}
	if len(r.Command) > 0 {
		v.invalid(base+".client", "a command remote gets no token; client applies to url remotes only")
	}
	switch {
	case c.Method == ClientMethodStatic && (c.ID == "" || c.KeyFile == ""):
		v.invalid(base+".client", "method static needs id and key_file")
	case c.Method != ClientMethodStatic && c.Method != ClientMethodAuto && c.Method != "" && (c.ID != "" || c.KeyFile != ""):
		v.invalid(base+".client", "id and key_file apply to methods static and auto only")
	case (c.ID == "") != (c.KeyFile == ""):
		v.invalid(base+".client", "set id and key_file together")
	}
	if c.KeyFile != "" {
		v.tlsFile(base+".client.key_file", c.KeyFile)
	}
	if c.Method == ClientMethodCIMD && !strings.HasPrefix(v.c.IssuerURL(), "https://") {
		v.invalid(base+".client.method", "a client ID metadata document is served at an https URL: the host's issuer (listen.issuer) must be https")
	}
}
