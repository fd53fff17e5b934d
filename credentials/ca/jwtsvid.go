package ca

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// ValidateJWTSVIDFrom validates a JWT-SVID (SPECS.md §10.3) for audience
// with the JWT authorities that bundles holds for the trust domain of the
// token's subject, at now (nil means time.Now). It applies the checks of
// [CA.ValidateJWTSVID] to a token of any trust domain bundles knows: header
// alg (ES/RS/PS only), kid and optional typ JWT or JOSE and nothing else, a
// valid signature by a key of the subject's own trust domain, sub a SPIFFE
// ID, aud containing audience, exp in the future. A trust domain whose
// bundle has no JWT authority (an empty keys array) has every token
// refused.
//
// It returns the subject and all claims. Errors wrap ErrInvalidToken (and
// the jose sentinel saying why; a trust domain bundles does not know also
// wraps credentials.ErrUntrustedDomain) or ErrInvalidArgument.
func ValidateJWTSVIDFrom(ctx context.Context, token, audience string, bundles jwtbundle.Source, now func() time.Time) (spiffeid.ID, map[string]any, error) {
	if audience == "" {
		return spiffeid.ID{}, nil, fmt.Errorf("%w: audience is required", ErrInvalidArgument)
	}
	if bundles == nil {
		return spiffeid.ID{}, nil, fmt.Errorf("%w: no bundle source", ErrInvalidArgument)
	}
	// The key must belong to the trust domain the token claims as its
	// subject's, so the subject is read before the signature is checked.
	// jose calls Keys only once the compact form and the header have
	// passed; the subject read here only picks the keys, and the verified
	// subject is compared with it below.
	var td spiffeid.TrustDomain
	t, err := jose.Verify(ctx, token, jose.VerifyOptions{
		Types:           []jose.Typ{jose.TypJWT, jose.TypJOSE},
		AllowMissingTyp: true,
		AllowedHeaders:  jwtSVIDHeaders,
		RequireKID:      true,
		Keys: func(_ context.Context, kid string) (crypto.PublicKey, error) {
			id, err := claimedSubject(token)
			if err != nil {
				return nil, err
			}
			b, err := bundles.GetJWTBundleForTrustDomain(id.TrustDomain())
			if err != nil {
				return nil, fmt.Errorf("%w: %w: trust domain %s: %w", jose.ErrUnknownKey, credentials.ErrUntrustedDomain, id.TrustDomain().Name(), err)
			}
			if b == nil || b.TrustDomain() != id.TrustDomain() {
				return nil, fmt.Errorf("%w: %w: no JWT bundle for trust domain %s", jose.ErrUnknownKey, credentials.ErrUntrustedDomain, id.TrustDomain().Name())
			}
			k, ok := b.FindJWTAuthority(kid)
			if !ok {
				return nil, fmt.Errorf("%w: no JWT authority %q in trust domain %s", jose.ErrUnknownKey, kid, id.TrustDomain().Name())
			}
			td = id.TrustDomain()
			return k, nil
		},
		Audience:       audience,
		RequireSubject: true,
		Now:            now,
	})
	if err != nil {
		return spiffeid.ID{}, nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	id, err := spiffeid.FromString(t.Subject)
	if err != nil {
		return spiffeid.ID{}, nil, fmt.Errorf("%w: sub %q is not a SPIFFE ID: %v", ErrInvalidToken, t.Subject, err)
	}
	if id.TrustDomain() != td {
		return spiffeid.ID{}, nil, fmt.Errorf("%w: %w: sub %s is not in trust domain %s of the signing key", ErrInvalidToken, credentials.ErrUntrustedDomain, id, td.Name())
	}
	return id, t.Claims, nil
}

// claimedSubject reads the sub claim of a compact JWS without verifying
// anything, to choose the trust domain whose keys verify it. The member
// name is matched exactly, as jose matches it.
func claimedSubject(token string) (spiffeid.ID, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return spiffeid.ID{}, fmt.Errorf("%w: %d parts, want 3", jose.ErrMalformed, len(parts))
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: payload is not base64url", jose.ErrMalformed)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(payload, &members); err != nil || members == nil {
		return spiffeid.ID{}, fmt.Errorf("%w: claims are not a JSON object", jose.ErrMalformed)
	}
	raw, ok := members["sub"]
	if !ok {
		return spiffeid.ID{}, fmt.Errorf("%w: sub", jose.ErrMissingClaim)
	}
	var sub string
	if err := json.Unmarshal(raw, &sub); err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: sub is not a string", jose.ErrMalformed)
	}
	id, err := spiffeid.FromString(sub)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("sub %q is not a SPIFFE ID: %v", sub, err)
	}
	return id, nil
}
