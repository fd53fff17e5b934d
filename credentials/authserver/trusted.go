package authserver

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// TrustedIssuer is another authorization server whose JWT access tokens
// (RFC 9068) this server takes as subject tokens in token exchange (RFC
// 8693 §2.1, where the issuer and audience a subject token may have are
// the authorization server's policy). It is how a host's agents act for
// that host's users at resources of this server: the host's server
// issues the user's token, the agent exchanges it here with its own
// credentials as actor, and the token issued here keeps the user as sub
// and the agent in act (nesting the act the subject token had).
//
// A subject token of a trusted issuer is accepted when its typ is at+jwt,
// its signature verifies with the issuer's keys (an asymmetric alg, with
// kid), iss is exactly Issuer, exp has not passed (nbf and iat are not in
// the future), it has sub, jti and client_id, it is not sender-constrained
// (cnf), its subject is not revoked at this server, and its aud names this
// server's issuer, the authenticated client (a token the issuer addressed
// to exactly the party now presenting it) or a resource the client serves
// (AgentClient.Serves) — the audiences this server accepts in its own
// subject tokens; not any of its resources, since a token for one
// resource (an agent is one) is not for other clients to exchange. Its
// scope caps what the exchange may issue, as a subject token of this
// server's own does; its act and may_act count as this server's own would.
// The issuer's subjects share this server's namespace of subjects: trust
// an issuer only where a sub means the same person at both.
//
// Tokens of a trusted issuer cannot be checked for revocation here (there
// is no shared store): they are accepted until they expire, so the
// issuer's tokens should be short-lived.
type TrustedIssuer struct {
	// Issuer is the issuer identifier, compared exactly with iss.
	Issuer string
	// Keys looks up the issuer's signing keys by kid (for an issuer in
	// the same process, its Keys; else a cached fetch of its jwks_uri).
	// Exactly one of Keys and JWKS is set.
	Keys jose.KeyFunc
	// JWKS is the issuer's JWK Set document (RFC 7517 §5), as it serves it
	// at its jwks_uri.
	JWKS []byte
	// IDJAG makes the jwt-bearer grant accept the issuer's Identity
	// Assertion JWT Authorization Grants (typ oauth-id-jag+jwt, aud this
	// server's issuer alone; see grant_idjag.go). The same caveat
	// applies: the ID-JAG's sub and act are taken as this server's own.
	IDJAG bool
	// NoSubjectTokens makes token exchange refuse the issuer's access
	// tokens as subject tokens: an issuer trusted for ID-JAGs alone. It
	// needs IDJAG.
	NoSubjectTokens bool
}

// initTrustedIssuers checks Config.TrustedIssuers and resolves each one's
// keys into s.cfg.
func (s *Server) initTrustedIssuers() error {
	list := slices.Clone(s.cfg.TrustedIssuers)
	for i, ti := range list {
		switch {
		case ti.Issuer == "":
			return fmt.Errorf("authserver: trusted issuer %d has no issuer", i)
		case ti.Issuer == s.issuer:
			return fmt.Errorf("authserver: trusted issuer %q is this server", ti.Issuer)
		case slices.ContainsFunc(list[:i], func(o TrustedIssuer) bool { return o.Issuer == ti.Issuer }):
			return fmt.Errorf("authserver: trusted issuer %q is listed twice", ti.Issuer)
		case (ti.Keys == nil) == (len(ti.JWKS) == 0):
			return fmt.Errorf("authserver: trusted issuer %q needs exactly one of Keys and JWKS", ti.Issuer)
		case ti.NoSubjectTokens && !ti.IDJAG:
			return fmt.Errorf("authserver: trusted issuer %q is trusted for nothing: NoSubjectTokens without IDJAG", ti.Issuer)
		}
		if _, err := checkIssuer(ti.Issuer); err != nil {
			return fmt.Errorf("authserver: trusted issuer: %w", err)
		}
		if ti.Keys == nil {
			keys, err := jose.ParseKeySet(ti.JWKS, 0)
			if err != nil {
				return fmt.Errorf("authserver: trusted issuer %q: JWKS: %w", ti.Issuer, err)
			}
			list[i].Keys, list[i].JWKS = jose.StaticKeys(keys), nil
		}
	}
	s.cfg.TrustedIssuers = list
	return nil
}

// foreignSubject checks a subject token whose iss (read before anything
// is verified, only to pick the keys) is not this server's: one of a
// trusted issuer as TrustedIssuer describes, any other refused as such.
// ok reports whether the token was foreign.
func (s *Server) foreignSubject(ctx context.Context, req *tokenRequest, token string) (p *party, ok bool, err error) {
	if len(token) > jose.DefaultMaxTokenSize {
		return nil, false, nil
	}
	iss, err := unverifiedIssuer(token)
	if err != nil || iss == "" || iss == s.issuer {
		return nil, false, nil
	}
	for i := range s.cfg.TrustedIssuers {
		if ti := &s.cfg.TrustedIssuers[i]; ti.Issuer == iss {
			if ti.NoSubjectTokens {
				return nil, true, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token was issued by %q, which this server trusts for ID-JAGs only", truncate(iss, 80))
			}
			p, err := s.verifyTrustedSubject(ctx, req, ti, token)
			return p, true, err
		}
	}
	return nil, true, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token was issued by %q, an issuer this server does not trust", truncate(iss, 80))
}

// verifyTrustedSubject checks a subject token of the trusted issuer ti as
// TrustedIssuer describes.
func (s *Server) verifyTrustedSubject(ctx context.Context, req *tokenRequest, ti *TrustedIssuer, token string) (*party, error) {
	t, err := jose.Verify(ctx, token, jose.VerifyOptions{
		Types:          []jose.Typ{jose.TypAccessToken},
		Keys:           ti.Keys,
		RequireKID:     true,
		Issuer:         ti.Issuer,
		RequireSubject: true,
		Now:            s.now,
	})
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token of %s is invalid: %s", truncate(ti.Issuer, 80), joseReason(err))
	}
	var c oauth.AccessTokenClaims
	if err := t.Decode(&c); err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token of %s has malformed claims", truncate(ti.Issuer, 80))
	}
	switch {
	case c.ID == "" || c.ClientID == "":
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token of %s lacks jti or client_id", truncate(ti.Issuer, 80))
	case c.Confirmation != nil:
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token is sender-constrained")
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool {
		return a == s.issuer || a == req.client.ID || slices.Contains(req.client.Serves, a)
	}) {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest,
			"subject_token of %s was issued neither for this server nor for this client", truncate(ti.Issuer, 80))
	}
	revoked, err := s.SubjectRevoked(ctx, c.Subject, time.Unix(c.IssuedAt, 0))
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token: the subject's access was revoked")
	}
	scopes, err := oauth.ParseScope(c.Scope)
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token has a malformed scope")
	}
	if scopes == nil {
		scopes = []string{}
	}
	if c.Actor.Depth() > MaxActorDepth {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "the delegation chain is longer than %d", MaxActorDepth)
	}
	p := &party{Subject: c.Subject, Issuer: c.Issuer, ClientID: c.ClientID, Scopes: scopes, Audience: c.Audience,
		Actor: c.Actor, MayAct: c.MayAct, Details: c.AuthorizationDetails, ExpiresAt: time.Unix(c.ExpiresAt, 0)}
	if c.AuthTime > 0 {
		p.AuthTime = time.Unix(c.AuthTime, 0)
	}
	// TokenID stays empty: the lineage of tokens (revoking a subject
	// token revokes what was exchanged for it) covers this server's own.
	return p, nil
}
