package authserver

import (
	"context"
	"net/http"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
)

var inactive = oauth.IntrospectionResponse{Active: false}

// handleIntrospect serves token introspection (RFC 7662). Only
// authenticated, confidential clients may introspect; an unknown,
// expired or revoked token is {"active":false}.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidRequest, "the method must be POST").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	resp, err := s.introspect(r)
	if err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) introspect(r *http.Request) (*oauth.IntrospectionResponse, error) {
	ctx := r.Context()
	f, err := oauth.ParseForm(r)
	if err != nil {
		return nil, err
	}
	token, err := f.Require("token")
	if err != nil {
		return nil, err
	}
	hint, err := f.Get("token_type_hint")
	if err != nil {
		return nil, err
	}
	c, err := s.authenticateClient(ctx, r, f)
	if err != nil {
		return nil, err
	}
	if c.public() {
		return nil, invalidClient("public clients may not introspect tokens")
	}
	if c.Kind == kindFederated {
		// Admitted for the grants its entry lists, not to read the
		// claims of this server's tokens.
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "clients of federated trust domains may not introspect tokens")
	}
	// The hint only orders the lookups (RFC 7662 §2.1).
	if hint == "refresh_token" {
		if resp, ok, err := s.introspectRefresh(ctx, token); err != nil || ok {
			return resp, err
		}
		return s.introspectAccess(ctx, token)
	}
	resp, err := s.introspectAccess(ctx, token)
	if err != nil || resp.Active {
		return resp, err
	}
	if resp, ok, err := s.introspectRefresh(ctx, token); err != nil || ok {
		return resp, err
	}
	return &inactive, nil
}

func (s *Server) introspectAccess(ctx context.Context, token string) (*oauth.IntrospectionResponse, error) {
	c, err := s.VerifyAccessToken(ctx, token, "")
	if err != nil {
		if oauth.AsError(err).Code == oauth.CodeInvalidToken {
			return &inactive, nil
		}
		return nil, err
	}
	tokenType := oauth.TokenTypeBearer
	if c.Confirmation != nil && c.Confirmation.JKT != "" {
		tokenType = oauth.TokenTypeDPoP
	}
	return &oauth.IntrospectionResponse{
		Active:               true,
		Scope:                c.Scope,
		ClientID:             c.ClientID,
		TokenType:            tokenType,
		ExpiresAt:            c.ExpiresAt,
		IssuedAt:             c.IssuedAt,
		Subject:              c.Subject,
		Audience:             c.Audience,
		Issuer:               c.Issuer,
		ID:                   c.ID,
		Actor:                c.Actor,
		Confirmation:         c.Confirmation,
		AuthorizationDetails: c.AuthorizationDetails,
		SubjectID:            c.SubjectID,
	}, nil
}

func (s *Server) introspectRefresh(ctx context.Context, token string) (*oauth.IntrospectionResponse, bool, error) {
	if len(token) > 256 {
		return nil, false, nil
	}
	rec, _, err := s.loadRefresh(ctx, token)
	if err != nil {
		if oauth.AsError(err).Code == oauth.CodeInvalidGrant {
			return nil, false, nil
		}
		return nil, false, err
	}
	if rec.Used {
		return &inactive, true, nil
	}
	return &oauth.IntrospectionResponse{
		Active:    true,
		Scope:     oauth.FormatScope(rec.Scopes),
		ClientID:  rec.ClientID,
		TokenType: "refresh_token",
		ExpiresAt: rec.Expires.Unix(),
		Subject:   rec.Subject,
		Issuer:    s.issuer,
	}, true, nil
}

// handleRevoke serves token revocation (RFC 7009). A client may revoke
// only its own tokens; unknown tokens are not an error (§2.2). Revoking a
// refresh token revokes its grant, with the access tokens issued under it
// (§2.1); revoking an access token revokes the tokens exchanged from it.
// Both cascade transitively through token exchanges (see lineage.go).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidRequest, "the method must be POST").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	if err := s.revoke(r); err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(r *http.Request) error {
	ctx := r.Context()
	f, err := oauth.ParseForm(r)
	if err != nil {
		return err
	}
	token, err := f.Require("token")
	if err != nil {
		return err
	}
	hint, err := f.Get("token_type_hint")
	if err != nil {
		return err
	}
	switch hint {
	case "", "access_token", "refresh_token":
	default:
		return oauth.Errorf(oauth.CodeUnsupportedTokenType, "token_type_hint %q is not supported", truncate(hint, 40))
	}
	c, err := s.authenticateClient(ctx, r, f)
	if err != nil {
		return err
	}
	if len(token) <= 256 {
		rec, _, err := s.loadRefresh(ctx, token)
		switch {
		case err == nil:
			if rec.ClientID != c.ID {
				return nil // not the caller's token: nothing happens, nothing is told
			}
			return s.revokeFamily(ctx, rec.Family)
		case oauth.AsError(err).Code != oauth.CodeInvalidGrant:
			return err
		}
	}
	at, err := s.VerifyAccessToken(ctx, token, "")
	if err != nil {
		if oauth.AsError(err).Code == oauth.CodeInvalidToken {
			return nil
		}
		return err
	}
	if at.ClientID != c.ID {
		return nil
	}
	// The tokens exchanged from it go with it (see lineage.go).
	return s.revokeAccessToken(ctx, at.ID, time.Unix(at.ExpiresAt, 0))
}
