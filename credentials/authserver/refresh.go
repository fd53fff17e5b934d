package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// refreshRecord is a stored refresh token, keyed by the SHA-256 of the
// token. Tokens rotate on every use (RFC 9700 §4.14.2); all tokens of one
// grant share a family, and presenting a used token revokes the family.
type refreshRecord struct {
	Family               string          `json:"family"`
	ClientID             string          `json:"client_id"`
	Subject              string          `json:"sub"`
	Scopes               []string        `json:"scopes"`
	Resources            []string        `json:"resources,omitempty"`
	AuthTime             time.Time       `json:"auth_time,omitzero"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	// JKT binds the token to a DPoP key (public clients, RFC 9449 §5).
	JKT     string    `json:"jkt,omitempty"`
	Expires time.Time `json:"expires"`
	Used    bool      `json:"used,omitempty"`
}

type familyRecord struct {
	ClientID string `json:"client_id"`
	Subject  string `json:"sub"`
	Revoked  bool   `json:"revoked,omitempty"`
	// Created is when the grant was made (Unix seconds), so that a
	// revocation of the subject ends it.
	Created int64 `json:"created,omitempty"`
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newFamily starts the refresh-token family of a new grant: it sets
// rec.Family and rec.Expires and stores the family.
func (s *Server) newFamily(ctx context.Context, rec *refreshRecord) error {
	now := s.now()
	fam, err := randomToken(16)
	if err != nil {
		return err
	}
	data, err := json.Marshal(familyRecord{ClientID: rec.ClientID, Subject: rec.Subject, Created: now.Unix()})
	if err != nil {
		return fmt.Errorf("authserver: encode refresh family: %w", err)
	}
	if _, err := s.store.Put(ctx, nsFamilies, fam, data, Write{IfAbsent: true, TTL: s.familyTTL()}); err != nil {
		return fmt.Errorf("authserver: save refresh family: %w", err)
	}
	rec.Family = fam
	rec.Expires = now.Add(s.cfg.RefreshTokenTTL).UTC().Truncate(time.Second)
	return nil
}

// familyTTL is how long a family record is kept from its last write: as
// long as its refresh tokens, and as long as an access token issued under
// it, whose revocation it carries (see lineage.go).
func (s *Server) familyTTL() time.Duration {
	return max(s.cfg.RefreshTokenTTL, s.cfg.AccessTokenTTL) + revocationGrace
}

// issueRefreshToken starts a new family (rec.Family == "") or continues
// one, and returns the new token and its family.
func (s *Server) issueRefreshToken(ctx context.Context, rec refreshRecord) (token, family string, err error) {
	if rec.Family == "" {
		if err := s.newFamily(ctx, &rec); err != nil {
			return "", "", err
		}
	}
	now := s.now()
	ttl := rec.Expires.Sub(now)
	if ttl <= 0 {
		return "", "", oauth.Errorf(oauth.CodeInvalidGrant, "the grant has expired")
	}
	token, err = randomToken(32)
	if err != nil {
		return "", "", err
	}
	rec.Used = false
	data, err := json.Marshal(rec)
	if err != nil {
		return "", "", fmt.Errorf("authserver: encode refresh token: %w", err)
	}
	if _, err := s.store.Put(ctx, nsRefresh, tokenHash(token), data, Write{IfAbsent: true, TTL: ttl}); err != nil {
		return "", "", fmt.Errorf("authserver: save refresh token: %w", err)
	}
	return token, rec.Family, nil
}

// loadRefresh returns a refresh token's record if the token is live: not
// expired, not used, its family not revoked.
func (s *Server) loadRefresh(ctx context.Context, token string) (*refreshRecord, int64, error) {
	rec, version, err := getRecord[refreshRecord](ctx, s.store, nsRefresh, tokenHash(token), "refresh token")
	if errors.Is(err, ErrNotFound) {
		return nil, 0, errInvalidRefresh
	}
	if err != nil {
		return nil, 0, err
	}
	fam, err := s.family(ctx, rec.Family)
	if err != nil {
		return nil, 0, err
	}
	if fam == nil || fam.Revoked || !s.now().Before(rec.Expires) {
		return nil, 0, errInvalidRefresh
	}
	if revoked, err := s.SubjectRevoked(ctx, fam.Subject, time.Unix(fam.Created, 0)); err != nil {
		return nil, 0, err
	} else if revoked {
		return nil, 0, errInvalidRefresh
	}
	return rec, version, nil
}

var errInvalidRefresh = oauth.Errorf(oauth.CodeInvalidGrant, "the refresh token is invalid, expired or revoked")

func (s *Server) family(ctx context.Context, id string) (*familyRecord, error) {
	f, _, err := getRecord[familyRecord](ctx, s.store, nsFamilies, id, "refresh family")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return f, err
}

// revokeFamily revokes every refresh token of a grant, and with them the
// access tokens issued under it and the tokens exchanged from those (see
// lineage.go).
func (s *Server) revokeFamily(ctx context.Context, id string) error {
	// After the write, whatever its outcome (see revcache.go).
	defer s.revocationWritten()
	for range 5 {
		f, version, err := getRecord[familyRecord](ctx, s.store, nsFamilies, id, "refresh family")
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if f.Revoked {
			return nil
		}
		f.Revoked = true
		data, _ := json.Marshal(f)
		_, err = s.store.Put(ctx, nsFamilies, id, data, Write{IfVersion: version, TTL: s.familyTTL()})
		if err == nil || !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return errors.New("authserver: revoke refresh family: too many concurrent writers")
}

// grantRefreshToken serves the refresh_token grant (RFC 6749 §6) with
// rotation and reuse detection.
func (s *Server) grantRefreshToken(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	token, err := req.form.Require("refresh_token")
	if err != nil {
		return nil, err
	}
	rec, version, err := getRecord[refreshRecord](ctx, s.store, nsRefresh, tokenHash(token), "refresh token")
	if errors.Is(err, ErrNotFound) {
		return nil, errInvalidRefresh
	}
	if err != nil {
		return nil, err
	}
	if rec.ClientID != req.client.ID {
		return nil, errInvalidRefresh
	}
	if rec.Used {
		// A used token came back: someone holds a copy. Revoke the grant.
		if err := s.revokeFamily(ctx, rec.Family); err != nil {
			return nil, err
		}
		s.log.Warn("refresh token reuse: grant revoked", "client_id", rec.ClientID, "sub", rec.Subject)
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the refresh token was already used; the grant is revoked")
	}
	fam, err := s.family(ctx, rec.Family)
	if err != nil {
		return nil, err
	}
	if fam == nil || fam.Revoked || !s.now().Before(rec.Expires) {
		return nil, errInvalidRefresh
	}
	if revoked, err := s.SubjectRevoked(ctx, fam.Subject, time.Unix(fam.Created, 0)); err != nil {
		return nil, err
	} else if revoked {
		return nil, errInvalidRefresh
	}
	if rec.JKT != "" && req.jkt != rec.JKT {
		return nil, oauth.Errorf(oauth.CodeInvalidDPoPProof, "the refresh token is bound to another DPoP key")
	}
	// What the request asks for is checked before the token is used up,
	// so a refused request leaves the client its refresh token. The grant
	// caps the scope even when the user granted none (a nil limit would
	// be no cap at all): a refresh never widens what the user consented to.
	scopes, aud, err := s.target(req.form, req.client.refreshing(), nonNil(rec.Scopes))
	if err != nil {
		return nil, err
	}
	if len(rec.Resources) > 0 {
		for _, a := range aud {
			if a != s.issuer && !slices.Contains(rec.Resources, a) {
				return nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource %q was not part of the original grant", truncate(a, 80))
			}
		}
		if len(aud) == 1 && aud[0] == s.issuer && !req.form.Has("resource") {
			if len(rec.Resources) > 1 {
				// A grant of several resources, from before tokens had
				// one audience: the client names the one it wants.
				return nil, errSeveralResources
			}
			aud = rec.Resources
		}
	}
	// Mark it used before issuing anything: of two concurrent uses only
	// one wins, and the loser is treated as reuse.
	rec.Used = true
	used, _ := json.Marshal(rec)
	if _, err := s.store.Put(ctx, nsRefresh, tokenHash(token), used, Write{IfVersion: version, TTL: rec.Expires.Sub(s.now()) + time.Minute}); err != nil {
		if errors.Is(err, ErrConflict) {
			if rerr := s.revokeFamily(ctx, rec.Family); rerr != nil {
				return nil, rerr
			}
			return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the refresh token was used concurrently; the grant is revoked")
		}
		return nil, fmt.Errorf("authserver: update refresh token: %w", err)
	}
	resp, err := s.respond(ctx, req, accessGrant{
		Subject:              rec.Subject,
		ClientID:             rec.ClientID,
		Scopes:               scopes,
		Audience:             aud,
		AuthTime:             rec.AuthTime,
		AuthorizationDetails: rec.AuthorizationDetails,
		Family:               rec.Family,
	})
	if err != nil {
		return nil, err
	}
	next := *rec
	next.Used = false
	if resp.RefreshToken, _, err = s.issueRefreshToken(ctx, next); err != nil {
		return nil, err
	}
	return resp, nil
}
