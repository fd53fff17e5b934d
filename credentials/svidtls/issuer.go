package svidtls

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agenthost/agenthost/credentials"
)

// SVIDIssuer issues X.509-SVIDs by SPIFFE ID: a trust-domain CA, or an
// upstream Workload API.
type SVIDIssuer interface {
	NewX509SVID(ctx context.Context, id spiffeid.ID) (*x509svid.SVID, error)
}

// IssueFor is the IssueFunc of workload id's X.509-SVIDs from a.
func IssueFor(a SVIDIssuer, id credentials.Identity) (IssueFunc, error) {
	sid, err := spiffeid.FromString(id.String())
	if err != nil {
		return nil, fmt.Errorf("svidtls: %s is not a SPIFFE ID: %w", id, err)
	}
	return func(ctx context.Context) (*x509svid.SVID, error) { return a.NewX509SVID(ctx, sid) }, nil
}

// AuthorizeTrustDomains authorizes every member of the trust domains
// named.
func AuthorizeTrustDomains(names ...string) (Authorizer, error) {
	tds := make([]spiffeid.TrustDomain, 0, len(names))
	for _, n := range names {
		td, err := spiffeid.TrustDomainFromString(n)
		if err != nil {
			return nil, fmt.Errorf("%w: trust domain %q: %w", ErrConfig, n, err)
		}
		tds = append(tds, td)
	}
	return AuthorizeMemberOf(tds...), nil
}

// ParseAuthorizer authorizes the peers listed: SPIFFE IDs, or trust
// domains written spiffe://<name> (every member). An empty list is an
// error: authorizing nobody is never what a list means.
func ParseAuthorizer(peers []string) (Authorizer, error) {
	if len(peers) == 0 {
		return nil, fmt.Errorf("%w: no peers listed", ErrConfig)
	}
	var ids []spiffeid.ID
	var tds []spiffeid.TrustDomain
	for _, p := range peers {
		if !strings.HasPrefix(p, "spiffe://") {
			return nil, fmt.Errorf("%w: peer %q is not spiffe://…", ErrConfig, p)
		}
		if id, err := spiffeid.FromString(p); err == nil && id.Path() != "" {
			ids = append(ids, id)
			continue
		}
		td, err := spiffeid.TrustDomainFromString(strings.TrimPrefix(p, "spiffe://"))
		if err != nil {
			return nil, fmt.Errorf("%w: peer %q: %w", ErrConfig, p, err)
		}
		tds = append(tds, td)
	}
	byID, byTD := AuthorizeID(ids...), AuthorizeMemberOf(tds...)
	return func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if len(ids) > 0 && byID(id, chains) == nil {
			return nil
		}
		if len(tds) > 0 {
			return byTD(id, chains)
		}
		return byID(id, chains)
	}, nil
}
