// Package credentials is the identity and token vocabulary every other
// package in agenthost shares.
//
// It owns [Identity], the validated workload identifier (a SPIFFE ID or a
// WIMSE URI) that names an agent or the host itself, the helpers that build
// the identifiers agenthost issues ([AgentIdentity], [HostIdentity]), and the
// sentinel errors that cross package boundaries. It imports no other package
// of this module, so everything else can depend on it.
//
// # Identifiers
//
// agenthost names each hosted agent spiffe://<trust-domain>/agent/<name> and
// itself spiffe://<trust-domain>/host. [ParseIdentity] enforces the SPIFFE ID
// rules (SPIFFE-ID §2) for the spiffe scheme and the WIMSE identifier rules
// (draft-ietf-wimse-identifier §3) for the wimse scheme. Identifiers are
// compared on the complete URI, never on the path alone.
package credentials
