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
