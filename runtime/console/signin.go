package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// maxResponseBytes caps a token or userinfo response.
const maxResponseBytes = 64 << 10

// login starts a sign-in (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3): the
// browser goes to the authorization endpoint with a fresh state and code
// challenge, which are kept in the store with the CSRF token of this
// browser.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := c.localNext(r.URL.Query().Get("next"))
	s, err := c.session(r)
	if err != nil {
		c.unavailable(w, r, err, "", "")
		return
	}
	if s != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	state, verifier := randomText(), randomText()
	sum := sha256.Sum256([]byte(verifier))
	p := pendingLogin{Verifier: verifier, Binding: c.cookies.Load().CSRFToken(w, r), Next: next, Created: c.now()}
	if err := c.logins.put(r.Context(), state, p); err != nil {
		c.unavailable(w, r, err, "", "")
		return
	}
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.clientID},
		"redirect_uri":          {RedirectURI(c.issuer)},
		"scope":                 {oauth.FormatScope(Scopes)},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {oauth.PKCES256},
	}
	sep := "?"
	if strings.Contains(c.md.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	http.Redirect(w, r, c.md.AuthorizationEndpoint+sep+q.Encode(), http.StatusSeeOther)
}

// callback ends a sign-in at the redirect URI (RFC 6749 §4.1.2): the
// state must be one this console (or another sharing its store) sent, not
// used before, from this browser; the issuer, when named (RFC 9207), this
// server. The code is exchanged with the PKCE verifier, the user read
// from the userinfo endpoint, the access token revoked (the console keeps
// none), and the console session started.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	cookies, err := c.sealer(ctx)
	if err != nil {
		c.unavailable(w, r, err, "", "")
		return
	}
	p, ok, err := c.logins.take(ctx, q.Get("state"))
	if err != nil {
		// Not taken when the read failed: the same callback completes
		// once the store is back.
		c.unavailable(w, r, err, "", "")
		return
	}
	if !ok {
		c.message(w, r, nil, http.StatusBadRequest, "Not signed in",
			"This sign-in is not one the console is waiting for (it was used, took too long, or was started elsewhere).", c.prefix+"/login")
		return
	}
	if err := cookies.CheckCSRF(r, p.Binding); err != nil {
		c.log.WarnContext(ctx, "sign-in refused: started in another browser", slog.Any("error", err))
		c.message(w, r, nil, http.StatusBadRequest, "Not signed in",
			"This sign-in was started in another browser.", c.prefix+"/login")
		return
	}
	if iss := q.Get("iss"); (iss != "" && iss != c.issuer) || (iss == "" && c.md.AuthorizationResponseIssParameterSupported) {
		c.message(w, r, nil, http.StatusBadRequest, "Not signed in",
			"The sign-in response does not come from this host's authorization server.", c.prefix+"/login")
		return
	}
	if e := q.Get("error"); e != "" {
		msg := "The authorization server refused the sign-in (" + e + ")."
		if e == oauth.CodeAccessDenied {
			msg = "You did not allow the console to sign you in."
		}
		c.message(w, r, nil, http.StatusForbidden, "Not signed in", msg, c.prefix+"/login?next="+url.QueryEscape(p.Next))
		return
	}
	code := q.Get("code")
	if code == "" {
		c.message(w, r, nil, http.StatusBadRequest, "Not signed in", "The sign-in response has no code.", c.prefix+"/login")
		return
	}
	token, err := c.exchange(ctx, code, p.Verifier)
	if err != nil {
		c.log.ErrorContext(ctx, "sign-in failed", slog.Any("error", err))
		c.message(w, r, nil, http.StatusBadGateway, "Not signed in", "The sign-in could not be completed; try again.", c.prefix+"/login")
		return
	}
	user, name, err := c.userinfo(ctx, token)
	c.revoke(ctx, token)
	if err != nil {
		c.log.ErrorContext(ctx, "sign-in failed", slog.Any("error", err))
		c.message(w, r, nil, http.StatusBadGateway, "Not signed in", "The sign-in could not be completed; try again.", c.prefix+"/login")
		return
	}
	signedIn := c.now()
	active, err := c.b.UserActive(ctx, user, signedIn)
	if err != nil {
		c.unavailable(w, r, fmt.Errorf("console: check user %s: %w", user, err), "You are not signed in; try again in a moment.",
			c.prefix+"/login?next="+url.QueryEscape(p.Next))
		return
	}
	if !active {
		c.message(w, r, nil, http.StatusForbidden, "Not signed in", "This account may not use the console.", "")
		return
	}
	// The cookie is sent only once the session it names is saved.
	pending := headerWriter{}
	cs, err := cookies.Start(pending, user)
	if err != nil {
		c.log.ErrorContext(ctx, "session start failed", slog.Any("error", err))
		c.message(w, r, nil, http.StatusInternalServerError, "Not signed in", "The session could not be started.", c.prefix+"/login")
		return
	}
	s := &session{cookie: cs, user: user, name: name, admin: c.isAdmin(user), signedIn: cs.AuthTime, expires: cs.Expires}
	if s.name == "" {
		s.name = user
	}
	if err := c.sessions.put(ctx, s); err != nil {
		c.unavailable(w, r, err, "You are not signed in; try again in a moment.", c.prefix+"/login?next="+url.QueryEscape(p.Next))
		return
	}
	for _, v := range http.Header(pending).Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", v)
	}
	c.log.InfoContext(ctx, "signed in", slog.String("user", user), slog.Bool("admin", s.admin))
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
}

// logout ends the session at every console sharing the store, and
// deletes its cookie. A session the store could not delete is left as it
// was, cookie included, and the browser told to try again.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.sessions.remove(r.Context(), s); err != nil {
		c.unavailable(w, r, err, "You are still signed in; try signing out again in a moment.", "")
		return
	}
	c.cookies.Load().End(w)
	c.log.InfoContext(r.Context(), "signed out", slog.String("user", s.user))
	c.message(w, r, nil, http.StatusOK, "Signed out", "You are signed out of the console.", c.prefix+"/login")
}

// exchange redeems code at the token endpoint (RFC 6749 §4.1.3) with the
// PKCE verifier (RFC 7636 §4.5), as the public client it is, and returns
// the access token.
func (c *Console) exchange(ctx context.Context, code, verifier string) (string, error) {
	form := url.Values{
		"grant_type":    {oauth.GrantAuthorizationCode},
		"code":          {code},
		"redirect_uri":  {RedirectURI(c.issuer)},
		"client_id":     {c.clientID},
		"code_verifier": {verifier},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.md.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("console: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	var tr oauth.TokenResponse
	if err := c.do(req, &tr); err != nil {
		return "", fmt.Errorf("console: the code exchange: %w", err)
	}
	switch {
	case tr.AccessToken == "":
		return "", errors.New("console: the token response has no access token")
	case !strings.EqualFold(tr.TokenType, oauth.TokenTypeBearer):
		return "", fmt.Errorf("console: the token response's token type is %q, not Bearer", tr.TokenType)
	}
	return tr.AccessToken, nil
}

// userinfo reads the signed-in user from the userinfo endpoint (OpenID
// Connect Core §5.3): their subject and name.
func (c *Console) userinfo(ctx context.Context, token string) (sub, name string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.md.UserinfoEndpoint, nil)
	if err != nil {
		return "", "", fmt.Errorf("console: userinfo request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	var info struct {
		Sub  string `json:"sub"`
		Name string `json:"name"`
	}
	if err := c.do(req, &info); err != nil {
		return "", "", fmt.Errorf("console: userinfo: %w", err)
	}
	if info.Sub == "" || len(info.Sub) > 255 {
		return "", "", errors.New("console: userinfo names no user")
	}
	return info.Sub, info.Name, nil
}

// revoke revokes the access token (RFC 7009) when the server has a
// revocation endpoint: the console learned who signed in and keeps no
// token. A failure is logged; the token expires on its own.
func (c *Console) revoke(ctx context.Context, token string) {
	if c.md.RevocationEndpoint == "" {
		return
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}, "client_id": {c.clientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.md.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.log.WarnContext(ctx, "sign-in token revocation failed", slog.Any("error", err))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.log.WarnContext(ctx, "sign-in token revocation failed", slog.Int("status", resp.StatusCode))
	}
}

// do sends req and decodes a 200 JSON answer into v; an OAuth error
// answer becomes its error.
func (c *Console) do(req *http.Request, v any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxResponseBytes {
		return fmt.Errorf("the answer is larger than %d bytes", maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s (%d): %s", e.Error, resp.StatusCode, e.Description)
		}
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("the answer is not JSON: %w", err)
	}
	return nil
}

// randomText returns 32 random bytes in base64url: a state, or a PKCE
// code verifier (43 characters, RFC 7636 §4.1).
func randomText() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
