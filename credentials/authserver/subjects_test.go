package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// TestRevokeSubject: revoking a user ends every credential issued to them
// up to then (access tokens, refresh tokens, the sign-in session) and
// nothing of anyone else's; what is issued afterwards works.
func TestRevokeSubject(t *testing.T) {
	e := newCodeEnv(t)
	b := newBrowser(t)
	verifier := newVerifier(t)
	q := e.authParams(verifier)
	q.Set("scope", "notes:read offline_access")
	status, tok := e.redeem(e.code(b, q), verifier, nil)
	if status != http.StatusOK || tok["refresh_token"] == nil {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	e.verify(at, notesURI)
	_, agentTok := e.agentToken(researchID, url.Values{"resource": {notesURI}, "scope": {"notes:read"}})
	other := agentTok["access_token"].(string)

	e.clock.Advance(2 * time.Second)
	if err := e.srv.RevokeSubject(e.ctx, "alice", "session-revoked"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.VerifyAccessToken(e.ctx, at, notesURI); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("alice's access token after revocation: %v", err)
	}
	if revoked, err := e.srv.SubjectRevoked(e.ctx, "alice", e.clock.Now().Add(-time.Second)); err != nil || !revoked {
		t.Fatalf("SubjectRevoked = %v, %v", revoked, err)
	}
	// Someone else's token is untouched.
	e.verify(other, notesURI)
	// Introspection says inactive.
	f := ccAgent(e.testEnv, url.Values{"token": {at}})
	f.Del("grant_type")
	status, body, _ := e.post(PathIntrospect, f, nil)
	if status != http.StatusOK || body["active"] != false {
		t.Fatalf("introspection of a revoked subject's token: %d %v", status, body)
	}
	// The refresh token is dead.
	if status, body := e.refresh(cliClient, rt); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
		t.Fatalf("refresh after revocation: %d %v", status, body)
	}
	// The browser's session is gone: the next authorization asks to sign
	// in again.
	page := b.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(t))), nil)
	if action, _ := page.form(t); !strings.HasSuffix(action, PathLogin) {
		t.Fatalf("after revocation the user is still signed in (form action %q)", action)
	}
	// Signing in again later gives working credentials.
	e.clock.Advance(2 * time.Second)
	verifier = newVerifier(t)
	q = e.authParams(verifier)
	status, tok = e.redeem(e.code(newBrowser(t), q), verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("code exchange after signing in again: %d %v", status, tok)
	}
	e.verify(tok["access_token"].(string), notesURI)
	// Revocation only moves forward.
	if err := e.srv.RevokeSubject(e.ctx, "alice", "again"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.RevokeSubject(e.ctx, "", "x"); err == nil {
		t.Fatal("an empty subject was revoked")
	}
}

// TestRevokeAgentIdentity: revoking an agent's identity (what a quarantine
// does) ends at once its own tokens and every token that delegates to it
// (the agent as client or actor), and refuses the JWT-SVIDs issued to it
// before the revocation as client assertions; the user's own token, and
// SVIDs issued afterwards, are untouched.
func TestRevokeAgentIdentity(t *testing.T) {
	e := newCodeEnv(t)
	user := e.userGrant(t, researchID.String(), "notes:read")["access_token"].(string)
	delegated := e.exchangeAs(t, researchID, user, notesURI)
	_, own := e.agentToken(researchID, url.Values{"resource": {notesURI}, "scope": {"notes:read"}})
	ownToken := own["access_token"].(string)
	_, other := e.agentToken(paymentsID, url.Values{"resource": {notesURI}, "scope": {"notes:read"}})
	otherToken, _ := other["access_token"].(string)
	oldSVID := e.svid(researchID)
	e.verify(delegated, notesURI)
	e.verify(ownToken, notesURI)

	e.clock.Advance(2 * time.Second)
	if err := e.srv.RevokeSubject(e.ctx, researchID.String(), "quarantine"); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"the agent's own token": ownToken, "a token delegated to the agent": delegated} {
		if _, err := e.srv.VerifyAccessToken(e.ctx, tok, notesURI); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("%s after the revocation: %v", name, err)
		}
	}
	if otherToken != "" {
		e.verify(otherToken, notesURI)
	}
	e.verify(user, researchID.String())
	// The SVID issued before is refused as a client assertion.
	status, body, _ := e.post(PathToken, url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {oldSVID},
		"resource":              {notesURI},
	}, nil)
	if status != http.StatusUnauthorized || body["error"] != oauth.CodeInvalidClient {
		t.Fatalf("an SVID issued before the revocation: %d %v", status, body)
	}
	// One issued later (the agent released, a new SVID) works.
	e.clock.Advance(2 * time.Second)
	if status, body := e.agentToken(researchID, url.Values{"resource": {notesURI}, "scope": {"notes:read"}}); status != http.StatusOK {
		t.Fatalf("an SVID issued after the revocation: %d %v", status, body)
	}
}
