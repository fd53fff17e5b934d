package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// A2AConfig is the a2a section: A2A agents elsewhere that the hosted
// agents may call.
type A2AConfig struct {
	// Remotes are remote A2A agents. An agent calls one exactly as it
	// calls a hosted agent, by its name here, when the name is in the
	// agent's call_agents; the host fetches and verifies the remote's
	// card and obtains the token for each call.
	Remotes []A2ARemoteConfig `json:"remotes,omitempty"`
	// Proof is how a calling agent proves its WIT on a hop between
	// hosted agents, and to the remotes with workload_proof:
	// ProofWPT (the default when empty) or ProofHTTPSignature.
	Proof WorkloadProof `json:"proof,omitempty"`
}

// WorkloadProof is a WIMSE proof of possession (SPECS.md §8.3, §8.4).
type WorkloadProof string

// Workload proofs.
const (
	// ProofWPT: a Workload-Proof-Token per request (wpt+jwt), binding
	// the access token and the Txn-Token.
	ProofWPT WorkloadProof = "wpt"
	// ProofHTTPSignature: the WIMSE profile of HTTP Message Signatures
	// (RFC 9421) over the method, the target, the Content-Digest of the
	// body and the WIT.
	ProofHTTPSignature WorkloadProof = "http_signature"
)

var workloadProofs = []WorkloadProof{ProofWPT, ProofHTTPSignature}

// Valid reports whether p is a known proof.
func (p WorkloadProof) Valid() bool {
	for _, x := range workloadProofs {
		if p == x {
			return true
		}
	}
	return false
}

// IsZero reports whether the section names no remote agent (it is then
// left out of the canonical form, see [Config.CanonicalJSON]).
func (a A2AConfig) IsZero() bool { return len(a.Remotes) == 0 && a.Proof == "" }

// A2ARemoteConfig is one remote A2A agent.
type A2ARemoteConfig struct {
	// Name is what agents call it by (call_agents, CallAgent): the rules
	// of an agent name, unique among the remotes and not the name of a
	// hosted agent. REQUIRED.
	Name string `json:"name"`
	// URL is the agent's A2A URL (its card is at
	// URL/.well-known/agent-card.json): https, or http on a loopback host
	// when auth.allow_private_fetch is set (development). REQUIRED.
	URL string `json:"url"`
	// ActingAs is whose authority a call carries, as for mcp.remotes:
	// "user", the task's user by token exchange along the delegation
	// chain (the remote sees sub = the user, act = the calling agent,
	// nested through the agents that delegated the task), and a task
	// without such a user fails; or "agent", the calling agent's own
	// (client_credentials). Empty means "user" for a task with a user and
	// "agent" for one without.
	ActingAs ActingAs `json:"acting_as"`
	// TrustDomain is the SPIFFE trust domain whose bundle verifies the
	// card's signature: a chain in the signature (x5c) must lead to the
	// bundle's X.509 authorities and its leaf be a SPIFFE ID of this
	// trust domain; a signature without a chain must be by one of the
	// bundle's JWT authorities (kid). Set with BundleURL or BundleFile.
	TrustDomain string `json:"trust_domain"`
	// BundleURL is where the trust domain's SPIFFE bundle (a JWK Set with
	// x509-svid and jwt-svid keys, SPECS.md §10.5) is served, such as
	// another agenthost's /spiffe/bundle; the same URL rules as URL.
	BundleURL string `json:"bundle_url"`
	// BundleFile is a file holding that bundle. A relative path is
	// resolved against the directory of the configuration file. Set
	// BundleURL or BundleFile, not both.
	BundleFile string `json:"bundle_file"`
	// RequireSignedCard refuses a card without a signature that verifies
	// with the bundle. Default: true when a bundle is given; it cannot be
	// true without one. Read it with [A2ARemoteConfig.SignedCardRequired].
	RequireSignedCard *bool `json:"require_signed_card"`
	// WorkloadProof sends the calling agent's WIT (a WIT-SVID of this
	// host's trust domain) and a proof of it (a2a.proof) with each call,
	// for a remote that accepts WIMSE and trusts this trust domain. Off
	// by default: nothing of the trust domain's leaves it.
	WorkloadProof bool `json:"workload_proof,omitempty"`
}

// HasBundle reports whether r names a trust bundle (a file or a URL).
func (r A2ARemoteConfig) HasBundle() bool { return r.BundleURL != "" || r.BundleFile != "" }

// SignedCardRequired is the effective require_signed_card: as written,
// else whether a bundle is given.
func (r A2ARemoteConfig) SignedCardRequired() bool {
	if r.RequireSignedCard != nil {
		return *r.RequireSignedCard
	}
	return r.HasBundle()
}

// msgRemoteCredential explains why a key that would hold a credential of
// a remote agent is refused.
const msgRemoteCredential = "no credential of a remote agent is written in the config: the host obtains a token for each call at the remote's authorization server, with the calling agent's SVID"

func (A2ARemoteConfig) refuseKey(name string) (string, bool) {
	switch name {
	case "token", "access_token", "api_key", "secret", "client_secret", "password":
		return msgRemoteCredential, true
	}
	return "", false
}

func (a *A2AConfig) resolvePaths(abs func(string) string) {
	for i := range a.Remotes {
		a.Remotes[i].BundleFile = abs(a.Remotes[i].BundleFile)
	}
}

// maxBundleFileSize caps the bundle file Validate reads.
const maxBundleFileSize = 1 << 20

// a2a checks the remote A2A agents.
func (v *validator) a2a() {
	if p := v.c.A2A.Proof; p != "" && !p.Valid() {
		v.invalid("a2a.proof", "%v", enumError("proof", string(p), workloadProofs))
	}
	seen := map[string]int{}
	for i, r := range v.c.A2A.Remotes {
		base := fmt.Sprintf("a2a.remotes[%d]", i)
		if v.segmentName(base+".name", "remote agent", r.Name) {
			if j, dup := seen[r.Name]; dup {
				v.invalid(base+".name", "remote agent %q is already defined at a2a.remotes[%d]", r.Name, j)
			} else if v.hasAgent(r.Name) {
				v.invalid(base+".name", "%q is already the name of a hosted agent (agents); give the remote another name", r.Name)
			}
			seen[r.Name] = i
		}
		if r.URL == "" {
			v.invalid(base+".url", "is required: the remote agent's A2A URL")
		} else {
			v.remoteURL(base+".url", r.URL)
		}
		if r.ActingAs != "" && !r.ActingAs.Valid() {
			v.invalid(base+".acting_as", "%v", enumError("acting_as", string(r.ActingAs), actingAs))
		}
		v.a2aTrust(base, r)
	}
}

// a2aTrust checks how a remote's card is verified: a trust domain and
// exactly one bundle source, together or not at all.
func (v *validator) a2aTrust(base string, r A2ARemoteConfig) {
	switch {
	case r.TrustDomain != "" && !validTrustDomainName(r.TrustDomain):
		v.invalid(base+".trust_domain", "%s is not a trust domain name: lowercase a-z, 0-9, '.', '-' and '_', at most %d bytes, no scheme, port or path",
			quoteValue(r.TrustDomain), maxTrustDomainLen)
	case r.TrustDomain != "" && !r.HasBundle():
		v.invalid(base+".trust_domain", "needs the trust domain's bundle: set bundle_url or bundle_file")
	case r.TrustDomain == "" && r.HasBundle():
		v.invalid(base+".trust_domain", "is required with a bundle: the card's signer must be a SPIFFE ID of this trust domain")
	}
	switch {
	case r.BundleURL != "" && r.BundleFile != "":
		v.invalid(base+".bundle_file", "set bundle_url or bundle_file, not both")
	case r.BundleURL != "":
		v.remoteURL(base+".bundle_url", r.BundleURL)
	case r.BundleFile != "":
		v.bundleFile(base+".bundle_file", r.BundleFile)
	}
	if r.RequireSignedCard != nil && *r.RequireSignedCard && !r.HasBundle() {
		v.invalid(base+".require_signed_card", "a signature can only be verified with a trust bundle: set trust_domain and bundle_url or bundle_file")
	}
}

// remoteURL checks the URL of something the host fetches from a remote
// party: absolute, without user info or fragment, https, or http on a
// loopback host when auth.allow_private_fetch allows loopback fetches.
func (v *validator) remoteURL(path, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil:
		v.invalid(path, "%s is not an absolute URL without user info or fragment", quoteValue(raw))
	case u.Scheme == "http" && !hostIsLoopback(u.Hostname()):
		v.invalid(path, "must be https (http only on a loopback host, for development)")
	case u.Scheme == "http" && !v.c.Auth.AllowPrivateFetch:
		v.invalid(path, "an http URL on a loopback host needs auth.allow_private_fetch (development only); use https")
	case u.Scheme != "http" && u.Scheme != "https":
		v.invalid(path, "must be https")
	}
}

// bundleFile checks that file holds a JWK Set, the form of a SPIFFE
// bundle; the host reads its keys when it first verifies a card.
func (v *validator) bundleFile(path, file string) {
	f, err := os.Open(file)
	if err != nil {
		v.tlsFile(path, file)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		v.invalid(path, "%s is a directory, not a file", file)
		return
	}
	b, err := io.ReadAll(io.LimitReader(f, maxBundleFileSize+1))
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	switch {
	case err != nil:
		v.invalid(path, "cannot read %s: %v", file, errors.Unwrap(err))
	case len(b) > maxBundleFileSize:
		v.invalid(path, "%s is larger than %d bytes; a trust bundle is much smaller", file, maxBundleFileSize)
	case json.Unmarshal(b, &doc) != nil || doc.Keys == nil:
		v.invalid(path, "%s is not a SPIFFE trust bundle (a JWK Set with a keys array)", file)
	}
}

// validTrustDomainName reports whether s follows the SPIFFE-ID §2.1
// rules for a trust domain name.
func validTrustDomainName(s string) bool {
	if s == "" || len(s) > maxTrustDomainLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// hasRemoteAgent reports whether name is a remote A2A agent.
func (v *validator) hasRemoteAgent(name string) bool {
	for _, r := range v.c.A2A.Remotes {
		if r.Name == name {
			return true
		}
	}
	return false
}
