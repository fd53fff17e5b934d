package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// TokenSource gives a session's access token, refreshed when needed. It is
// an oauth2.TokenSource and is safe for concurrent use.
type TokenSource struct {
	c     *Client
	ctx   context.Context
	store *Store

	mu   sync.Mutex
	sess *Session
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

// TokenSource returns a source of sess's access token: the one held while
// it is valid on the client's clock (with 10 s to spare), otherwise a new
// one from the refresh token (RFC 6749 §6, the grant's resource kept by
// the server). A rotated refresh token replaces the old one in sess and,
// when store is not nil, is saved before the token is returned: the old
// one is spent. ctx bounds the refresh requests.
func (c *Client) TokenSource(ctx context.Context, sess *Session, store *Store) *TokenSource {
	return &TokenSource{c: c, ctx: ctx, store: store, sess: sess}
}

// Token returns a valid access token. When the access token expired and
// there is no refresh token, or the server refuses it (invalid_grant: it
// expired, was revoked or was used before), the error wraps [ErrExpired].
func (ts *TokenSource) Token() (*oauth2.Token, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.c.cfg.Now()
	if ts.sess.valid(now) {
		return ts.sess.Token(), nil
	}
	if ts.sess.RefreshToken == "" {
		return nil, fmt.Errorf("%w: the access token expired and there is no refresh token", ErrExpired)
	}
	if ts.sess.TokenEndpoint == "" {
		return nil, errors.New("login: the session has no token endpoint")
	}
	oc := &oauth2.Config{ClientID: ts.sess.ClientID,
		Endpoint: oauth2.Endpoint{TokenURL: ts.sess.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams}}
	// A token without an access token is due at once: x/oauth2 refreshes
	// it; the expiry decision above is ours, on our clock.
	tok, err := oc.TokenSource(ts.c.ctx(ts.ctx), &oauth2.Token{RefreshToken: ts.sess.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == oauth.CodeInvalidGrant ||
			(re.ErrorCode == "" && re.Response != nil && re.Response.StatusCode == http.StatusBadRequest)) {
			desc := re.ErrorCode
			if re.ErrorDescription != "" {
				desc += ": " + re.ErrorDescription
			}
			return nil, fmt.Errorf("%w: the refresh token was refused (%s)", ErrExpired, desc)
		}
		return nil, tokenError("refreshing the sign-in", err)
	}
	ts.sess.update(tok, ts.c.cfg.Now())
	if ts.store != nil {
		if err := ts.store.Save(ts.sess); err != nil {
			return nil, fmt.Errorf("login: the renewed sign-in could not be kept (its refresh token replaced the stored one): %w", err)
		}
	}
	ts.c.log.DebugContext(ts.ctx, "sign-in refreshed", slog.String("issuer", ts.sess.Issuer))
	return ts.sess.Token(), nil
}

// Session returns the session as it is now (after any refresh).
func (ts *TokenSource) Session() *Session {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := *ts.sess
	return &s
}

// Revoke revokes sess's refresh token (or, without one, its access token)
// at the server's revocation endpoint (RFC 7009 §2.1), as the public client
// sess was issued to. It returns [ErrNoRevocation] when the server has no
// revocation endpoint. With the embedded authorization server, revoking a
// refresh token revokes its whole grant, access tokens included.
func (c *Client) Revoke(ctx context.Context, sess *Session) error {
	if sess.RevocationEndpoint == "" {
		return ErrNoRevocation
	}
	form := url.Values{"client_id": {sess.ClientID}}
	switch {
	case sess.RefreshToken != "":
		form.Set("token", sess.RefreshToken)
		form.Set("token_type_hint", "refresh_token")
	case sess.AccessToken != "":
		form.Set("token", sess.AccessToken)
		form.Set("token_type_hint", "access_token")
	default:
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sess.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("login: revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("login: revoke: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e oauth.Error
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		return fmt.Errorf("login: revoke: %s %s: %s", resp.Status, e.Code, e.Description)
	}
	return fmt.Errorf("login: revoke: %s", resp.Status)
}
