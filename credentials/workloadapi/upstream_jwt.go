package workloadapi

import (
	"context"
	"fmt"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ValidateJWTSVID validates a JWT-SVID (SPECS.md §10.3) for audience
// locally, against the JWT authorities the upstream hands out for its own
// trust domain, at Now, and returns its subject and claims. The checks are
// the trust-domain CA's ([ca.ValidateJWTSVIDFrom]): header alg (ES, RS or
// PS), kid and optionally typ "JWT" or "JOSE" and nothing else, a valid
// signature, sub a SPIFFE ID of the trust domain, aud containing audience,
// exp in the future. Tokens of federated trust domains are refused, as the
// CA refuses them. Errors wrap ErrInvalidJWTSVID and the ca error saying
// why, or ErrUpstreamNotReady.
func (u *Upstream) ValidateJWTSVID(ctx context.Context, token, audience string) (spiffeid.ID, map[string]any, error) {
	if err := u.checkOpen(); err != nil {
		return spiffeid.ID{}, nil, err
	}
	u.mu.RLock()
	td, set := u.td, u.jwtBundles
	u.mu.RUnlock()
	if set == nil {
		return spiffeid.ID{}, nil, fmt.Errorf("%w: %s has sent no jwt bundles", ErrUpstreamNotReady, u.addr)
	}
	own := jwtbundle.NewSet()
	if b, ok := set.Get(td); ok {
		own.Add(b)
	}
	id, claims, err := ca.ValidateJWTSVIDFrom(ctx, token, audience, own, u.now)
	if err != nil {
		return spiffeid.ID{}, nil, fmt.Errorf("%w: %w", ErrInvalidJWTSVID, err)
	}
	return id, claims, nil
}
