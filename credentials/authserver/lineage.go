package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Token lineage. An access token issued under a grant that has refresh
// tokens (the authorization code grant and every refresh of it) belongs to
// that grant's refresh-token family; one issued by token exchange (RFC
// 8693) descends from the access token given as its subject_token. Both
// links are kept by jti in nsLineage for as long as the token lives, and
// revocation cascades along them: a token counts as revoked when it was
// revoked itself, when its family was revoked (refresh token reuse, a
// revoked refresh token, a reused authorization code), or when its
// parent counts as revoked. The walk runs on every check
// ([Server.VerifyAccessToken], introspection, [Server.Revoked] for
// resource servers), so a revocation is one write that every descendant,
// issued before or concurrently with it, sees at once; no fan-out write
// can miss a token issued while it runs.
//
// Actor tokens are not links: revoking an agent's own token does not
// revoke what it obtained on a user's behalf (RevokeSubject of the agent
// does, for tokens with the agent as subject).

// lineageRecord links an access token to where it came from.
type lineageRecord struct {
	// Family is the refresh-token family the token was issued under.
	Family string `json:"family,omitempty"`
	// Parent is the jti of the access token it was exchanged for.
	Parent string `json:"parent,omitempty"`
}

// maxLineageDepth bounds the walk: an exchange nests act one level deeper
// than its subject token's (capped at MaxActorDepth), so no real chain is
// longer. A longer one is treated as revoked.
const maxLineageDepth = 2 * MaxActorDepth

// revocationGrace keeps revocation and lineage records a little past the
// tokens they are about, for clock skew between hosts sharing a store.
const revocationGrace = time.Minute

// saveLineage records where the access token jti, valid until exp, came
// from. It is written before the token is handed out.
func (s *Server) saveLineage(ctx context.Context, jti string, rec lineageRecord, exp time.Time) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("authserver: encode token lineage: %w", err)
	}
	ttl := exp.Sub(s.now()) + revocationGrace
	if _, err := s.store.Put(ctx, nsLineage, jti, data, Write{IfAbsent: true, TTL: ttl}); err != nil {
		return fmt.Errorf("authserver: save token lineage: %w", err)
	}
	return nil
}

// isRevoked reports whether the access token jti counts as revoked: by
// itself, through its refresh-token family, or through the token it was
// exchanged for, transitively.
func (s *Server) isRevoked(ctx context.Context, jti string) (bool, error) {
	for depth := 0; jti != ""; depth++ {
		if depth > maxLineageDepth {
			s.log.WarnContext(ctx, "token lineage too deep: treated as revoked", "jti", jti)
			return true, nil
		}
		_, _, err := s.store.Get(ctx, nsRevoked, jti)
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, ErrNotFound):
			return false, fmt.Errorf("authserver: load revocation: %w", err)
		}
		rec, _, err := getRecord[lineageRecord](ctx, s.store, nsLineage, jti, "token lineage")
		switch {
		case errors.Is(err, ErrNotFound):
			return false, nil
		case err != nil:
			return false, err
		}
		if rec.Family != "" {
			fam, err := s.family(ctx, rec.Family)
			if err != nil {
				return false, err
			}
			if fam != nil && fam.Revoked {
				return true, nil
			}
		}
		jti = rec.Parent
	}
	return false, nil
}

// revokeAccessToken revokes the access token jti, which expires at exp,
// and with it every token exchanged from it. The record outlives the token
// by as much as a token exchanged from it now could (AccessTokenTTL), so
// that the cascade holds for each descendant's whole lifetime.
func (s *Server) revokeAccessToken(ctx context.Context, jti string, exp time.Time) error {
	now := s.now()
	until := exp
	if latest := now.Add(s.cfg.AccessTokenTTL); latest.After(until) {
		until = latest
	}
	if _, err := s.store.Put(ctx, nsRevoked, jti, []byte{1}, Write{TTL: until.Sub(now) + revocationGrace}); err != nil {
		return fmt.Errorf("authserver: revoke access token: %w", err)
	}
	return nil
}
