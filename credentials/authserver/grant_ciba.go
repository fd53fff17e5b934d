package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// grantCIBA redeems an auth_req_id at the token endpoint, in poll and
// ping mode (CIBA Core §10.1, §11). The answers, checked in this order:
//
//   - invalid_grant: the auth_req_id is unknown, was issued to another
//     client, or was already redeemed (a request yields one token);
//   - access_denied: the user denied it;
//   - expired_token: it expired (an approval not redeemed in time too);
//   - slow_down: it is pending and the client polled sooner than its
//     interval after the last poll; the interval grows by five seconds,
//     for this and every later poll;
//   - authorization_pending: it is pending;
//   - otherwise the token: sub the approving user, client_id the client,
//     the granted scope, resource and authorization_details, bound to the
//     request's DPoP key or client certificate like every token; with an
//     ID token for the user; no refresh token.
func (s *Server) grantCIBA(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	authReqID, err := req.form.Require("auth_req_id")
	if err != nil {
		return nil, err
	}
	id, rec, err := s.redeemCIBA(ctx, req.client.ID, authReqID)
	if err != nil {
		return nil, err
	}
	return s.issueCIBA(ctx, req, id, rec)
}

// redeemCIBA applies the CIBA grant's rules (see grantCIBA) to
// authReqID, presented by clientID: an approved request is marked
// redeemed and returned, once; anything else is the grant's error.
func (s *Server) redeemCIBA(ctx context.Context, clientID, authReqID string) (string, *cibaRecord, error) {
	id := ApprovalID(authReqID)
	for range 4 {
		rec, version, err := s.loadCIBA(ctx, id)
		if errors.Is(err, ErrApprovalNotFound) {
			return "", nil, oauth.Errorf(oauth.CodeInvalidGrant, "auth_req_id is unknown")
		}
		if err != nil {
			return "", nil, err
		}
		if rec.ClientID != clientID {
			return "", nil, oauth.Errorf(oauth.CodeInvalidGrant, "auth_req_id was issued to another client")
		}
		now := s.now().UTC()
		switch {
		case rec.Status == cibaIssued:
			return "", nil, oauth.Errorf(oauth.CodeInvalidGrant, "auth_req_id was already redeemed")
		case rec.Status == cibaDenied:
			return "", nil, oauth.Errorf(oauth.CodeAccessDenied, "the user denied the request")
		case !now.Before(rec.Expires):
			return "", nil, oauth.Errorf(oauth.CodeExpiredToken, "auth_req_id has expired; send a new request")
		case rec.Status == cibaApproved:
			rec.Status, rec.Issued = cibaIssued, now
			ok, err := s.putCIBA(ctx, id, rec, version, now)
			if err != nil {
				return "", nil, err
			}
			if !ok {
				continue // a concurrent poll: look again
			}
			return id, rec, nil
		}
		// Pending.
		slow := !rec.LastPoll.IsZero() && now.Sub(rec.LastPoll) < time.Duration(rec.Interval)*time.Second
		rec.LastPoll = now
		if slow {
			rec.Interval += oauth.SlowDownIncrement
		}
		ok, err := s.putCIBA(ctx, id, rec, version, now)
		if err != nil {
			return "", nil, err
		}
		if slow || !ok {
			// A poll racing another one is too fast as well.
			return "", nil, oauth.Errorf(oauth.CodeSlowDown, "poll no more often than every %d seconds", rec.Interval)
		}
		return "", nil, oauth.Errorf(oauth.CodeAuthorizationPending, "the user has not decided yet")
	}
	return "", nil, fmt.Errorf("authserver: ciba grant: too many concurrent writers")
}

// putCIBA rewrites the request if it is still at version; false when it
// is not.
func (s *Server) putCIBA(ctx context.Context, id string, rec *cibaRecord, version int64, now time.Time) (bool, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("authserver: encode backchannel request: %w", err)
	}
	_, err = s.store.Put(ctx, nsCIBA, id, data, Write{IfVersion: version, TTL: rec.ttl(now)})
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("authserver: save backchannel request: %w", err)
	}
	return true, nil
}

// checkApprover refuses a redeemed request whose approver was revoked
// since deciding ([Server.RevokeSubject]) with access_denied: the decision
// came from a session that no longer counts.
func (s *Server) checkApprover(ctx context.Context, rec *cibaRecord) error {
	revoked, err := s.SubjectRevoked(ctx, rec.Approver, rec.Decided)
	if err != nil {
		return err
	}
	if revoked {
		return oauth.Errorf(oauth.CodeAccessDenied, "the approving user's credentials were revoked")
	}
	return nil
}

// issueCIBA issues the token of an approved request, now marked redeemed,
// unless its approver was revoked since (checkApprover).
func (s *Server) issueCIBA(ctx context.Context, req *tokenRequest, id string, rec *cibaRecord) (*oauth.TokenResponse, error) {
	if err := s.checkApprover(ctx, rec); err != nil {
		return nil, err
	}
	resp, err := s.respond(ctx, req, accessGrant{
		Subject:              rec.Approver,
		ClientID:             rec.ClientID,
		Scopes:               rec.Scopes,
		Audience:             rec.Audience,
		AuthorizationDetails: rec.AuthorizationDetails,
		ApprovalID:           id,
	})
	if err != nil {
		return nil, err
	}
	if resp.IDToken, err = s.cibaIDToken(ctx, rec, resp.AccessToken); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "backchannel authentication redeemed", "client_id", rec.ClientID, "sub", rec.Approver,
		"approval_id", id)
	return resp, nil
}

// cibaIDToken is the ID token of a redeemed request (CIBA Core §10.1.1,
// OpenID Connect Core §3.1.3.6): the approving user for the client, with
// at_hash, and name and email as the scope grants.
func (s *Server) cibaIDToken(ctx context.Context, rec *cibaRecord, accessToken string) (string, error) {
	now := s.now().UTC().Truncate(time.Second)
	sum := sha256.Sum256([]byte(accessToken))
	c := idTokenClaims{
		Issuer:    s.issuer,
		Subject:   rec.Approver,
		Audience:  oauth.Audience{rec.ClientID},
		ExpiresAt: now.Add(s.cfg.AccessTokenTTL).Unix(),
		IssuedAt:  now.Unix(),
		ATHash:    base64.RawURLEncoding.EncodeToString(sum[:sha256.Size/2]),
	}
	c.Name, c.Email = s.profile(rec.Approver, rec.Scopes)
	return s.keys.sign(ctx, jose.TypJWT, c)
}
