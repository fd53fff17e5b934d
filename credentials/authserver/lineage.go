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
// 8693) descends from the access token given as its subject_token, and
// from that token's own ancestors and family. Each token's record in
// nsLineage lists all of them (the family and every ancestor's jti), kept
// for as long as the token lives, and revocation cascades along them: a
// token counts as revoked when it was revoked itself, when an ancestor
// was, or when its family was (refresh token reuse, a revoked refresh
// token, a reused authorization code). The check runs on every
// verification ([Server.VerifyAccessToken], introspection,
// [Server.Revoked] for resource servers), so a revocation is one write
// that every descendant, issued before or concurrently with it, sees at
// once; no fan-out write can miss a token issued while it runs. (The
// check's answers are cached, and every revocation write invalidates
// them; see revcache.go.)
//
// The record is complete in itself: an exchanged token lives a full
// AccessTokenTTL from its exchange, longer than its ancestors, so the
// check never reads an ancestor's lineage record, which expires with the
// ancestor. What it reads does outlive every descendant: a revocation
// record is kept AccessTokenTTL past the revocation (revokeAccessToken),
// a family record familyTTL past its revocation.
//
// Actor tokens are not links: revoking an agent's own token does not
// revoke what it obtained on a user's behalf (RevokeSubject of the agent
// does, for tokens with the agent as subject).

// lineageRecord says where an access token came from.
type lineageRecord struct {
	// Family is the refresh-token family the token, or the first token of
	// its chain of exchanges, was issued under.
	Family string `json:"family,omitempty"`
	// Ancestors are the jtis of the access tokens it descends from by
	// token exchange, nearest first.
	Ancestors []string `json:"ancestors,omitempty"`
}

// maxLineageDepth bounds the ancestors a check reads: each exchange nests
// act one level deeper than its subject token's, and act is capped at
// MaxActorDepth, so no chain of exchanges is longer. A record with more is
// treated as revoked.
const maxLineageDepth = MaxActorDepth

// revocationGrace keeps revocation and lineage records a little past the
// tokens they are about, for clock skew between hosts sharing a store.
const revocationGrace = time.Minute

// saveLineage records where the access token jti, valid until exp, came
// from: the family it is issued under, or the access token parent it is
// exchanged for (whose own lineage it inherits). It is written before the
// token is handed out.
func (s *Server) saveLineage(ctx context.Context, jti, family, parent string, exp time.Time) error {
	rec := lineageRecord{Family: family}
	if parent != "" {
		// The parent was verified by this request and is still valid, so
		// its record, if it has one, is still there.
		prec, _, err := getRecord[lineageRecord](ctx, s.store, nsLineage, parent, "token lineage")
		switch {
		case errors.Is(err, ErrNotFound):
			// Issued under no grant and by no exchange.
		case err != nil:
			return err
		default:
			if rec.Family == "" {
				rec.Family = prec.Family
			}
			rec.Ancestors = prec.Ancestors
		}
		rec.Ancestors = append([]string{parent}, rec.Ancestors...)
	}
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
// itself, through an ancestor it was exchanged from, or through its
// refresh-token family. exp is the token's expiry, zero when unknown. A
// token checked before is answered from the revocation cache
// (revcache.go); otherwise the check reads at most maxLineageDepth+3
// records, and any store error is returned, for the caller to refuse the
// token.
func (s *Server) isRevoked(ctx context.Context, jti string, exp time.Time) (bool, error) {
	a, gen, hit := s.revocations.token(jti)
	if hit {
		return a.revoked, nil
	}
	revoked, rec, err := s.readRevoked(ctx, jti, a.lineage)
	if err != nil {
		return false, err
	}
	now := s.now()
	if exp.IsZero() {
		// No token of this server lives longer.
		exp = now.Add(s.cfg.AccessTokenTTL)
	}
	s.revocations.keepToken(jti, gen, tokenAnswer{revoked: revoked, lineage: rec}, exp, now)
	return revoked, nil
}

// readRevoked is isRevoked reading the store. rec, when not nil, is the
// token's lineage record, known from an earlier check; it returns the
// record if it has it.
func (s *Server) readRevoked(ctx context.Context, jti string, rec *lineageRecord) (bool, *lineageRecord, error) {
	if revoked, err := s.revokedItself(ctx, jti); err != nil || revoked {
		return revoked, rec, err
	}
	if rec == nil {
		var err error
		rec, _, err = getRecord[lineageRecord](ctx, s.store, nsLineage, jti, "token lineage")
		switch {
		case errors.Is(err, ErrNotFound):
			return false, nil, nil
		case err != nil:
			return false, nil, err
		}
	}
	if len(rec.Ancestors) > maxLineageDepth {
		s.log.WarnContext(ctx, "token lineage too deep: treated as revoked", "jti", jti)
		return true, rec, nil
	}
	for _, a := range rec.Ancestors {
		if revoked, err := s.revokedItself(ctx, a); err != nil || revoked {
			return revoked, rec, err
		}
	}
	if rec.Family != "" {
		fam, err := s.family(ctx, rec.Family)
		if err != nil {
			return false, rec, err
		}
		if fam != nil && fam.Revoked {
			return true, rec, nil
		}
	}
	return false, rec, nil
}

// revokedItself reports whether the access token jti was revoked by its
// own jti.
func (s *Server) revokedItself(ctx context.Context, jti string) (bool, error) {
	_, _, err := s.store.Get(ctx, nsRevoked, jti)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("authserver: load revocation: %w", err)
	}
}

// revokeAccessToken revokes the access token jti, which expires at exp,
// and with it every token exchanged from it. The record outlives the token
// by as much as a token exchanged from it now could (AccessTokenTTL), so
// that the cascade holds for each descendant's whole lifetime.
func (s *Server) revokeAccessToken(ctx context.Context, jti string, exp time.Time) error {
	// After the write, whatever its outcome (see revcache.go).
	defer s.revocationWritten()
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
