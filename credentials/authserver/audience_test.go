package authserver

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// TestOneAudiencePerToken: a token names one resource, so no resource
// server can replay it at another (RFC 8707 §2, MCP authorization). A
// request naming several is invalid_target at the token endpoint and at
// the authorization endpoint; one resource works as before.
func TestOneAudiencePerToken(t *testing.T) {
	tests := []struct {
		name string
		// send makes the request and returns the status and JSON body (or
		// the redirect's query for the authorization endpoint).
		send     func(t *testing.T, e *codeEnv) (int, map[string]any)
		wantCode string // "" means success
		wantAud  string
	}{
		{name: "client_credentials with two resources", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			return e.agentToken(paymentsID, url.Values{"resource": {notesURI, paymentsURI}})
		}, wantCode: oauth.CodeInvalidTarget},
		{name: "client_credentials with one resource", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			return e.agentToken(paymentsID, url.Values{"resource": {paymentsURI}})
		}, wantAud: paymentsURI},
		{name: "client_credentials naming one resource twice", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			return e.agentToken(paymentsID, url.Values{"resource": {notesURI, notesURI}})
		}, wantAud: notesURI},
		{name: "token exchange with two resources", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			status, body, _ := e.post(PathToken, exchange(e.testEnv, url.Values{"resource": {notesURI, paymentsURI}}), nil)
			return status, body
		}, wantCode: oauth.CodeInvalidTarget},
		{name: "token exchange with a resource and another audience", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			status, body, _ := e.post(PathToken, exchange(e.testEnv, url.Values{"resource": {notesURI}, "audience": {paymentsURI}}), nil)
			return status, body
		}, wantCode: oauth.CodeInvalidTarget},
		{name: "token exchange with two audiences", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			status, body, _ := e.post(PathToken, exchange(e.testEnv, url.Values{"audience": {notesURI, paymentsURI}}), nil)
			return status, body
		}, wantCode: oauth.CodeInvalidTarget},
		{name: "token exchange with a resource and the same audience", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			status, body, _ := e.post(PathToken, exchange(e.testEnv, url.Values{"resource": {notesURI}, "audience": {notesURI}}), nil)
			return status, body
		}, wantAud: notesURI},
		{name: "jwt-bearer with two resources", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			status, body, _ := e.post(PathToken, url.Values{
				"grant_type": {oauth.GrantJWTBearer}, "assertion": {e.svid(researchID)},
				"client_assertion_type": {oauth.AssertionJWTSPIFFE}, "client_assertion": {e.svid(researchID)},
				"resource": {notesURI, paymentsURI},
			}, nil)
			return status, body
		}, wantCode: oauth.CodeInvalidTarget},
		{name: "authorization request with two resources", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			q := e.authParams(newVerifier(t))
			q["resource"] = []string{notesURI, paymentsURI}
			q.Set("scope", "notes:read payments:transfer")
			resp := newBrowser(t).do(http.MethodGet, e.authorizeURL(q), nil)
			got := resp.redirect(t, e.callback)
			if got.Get("state") != testState {
				t.Errorf("error redirect without the state: %v", got)
			}
			return http.StatusBadRequest, map[string]any{"error": got.Get("error")}
		}, wantCode: oauth.CodeInvalidTarget},
		{name: "code redemption naming two resources", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			verifier := newVerifier(t)
			code := e.code(newBrowser(t), e.authParams(verifier))
			return e.redeem(code, verifier, url.Values{"resource": {notesURI, notesURI + "/"}})
		}, wantCode: oauth.CodeInvalidTarget},
		{name: "code flow with one resource", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			verifier := newVerifier(t)
			code := e.code(newBrowser(t), e.authParams(verifier))
			return e.redeem(code, verifier, url.Values{"resource": {notesURI}})
		}, wantAud: notesURI},
		{name: "refresh naming two resources", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			tok := e.userGrant(t, notesURI, "notes:read")
			status, body, _ := e.post(PathToken, url.Values{
				"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {tok["refresh_token"].(string)},
				"client_id": {cliClient}, "resource": {notesURI, paymentsURI},
			}, nil)
			return status, body
		}, wantCode: oauth.CodeInvalidTarget},
		// A refresh token stored before the rule, for a grant of two
		// resources, gets one token per resource named and none for both.
		{name: "refresh of a two-resource grant without a resource", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			return e.refresh(cliClient, e.legacyRefreshToken(t))
		}, wantCode: oauth.CodeInvalidTarget},
		{name: "refresh of a two-resource grant naming one", send: func(t *testing.T, e *codeEnv) (int, map[string]any) {
			status, body, _ := e.post(PathToken, url.Values{
				"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {e.legacyRefreshToken(t)},
				"client_id": {cliClient}, "resource": {paymentsURI},
			}, nil)
			return status, body
		}, wantAud: paymentsURI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCodeEnv(t)
			status, body := tt.send(t, e)
			if tt.wantCode != "" {
				if status != http.StatusBadRequest || body["error"] != tt.wantCode {
					t.Fatalf("got %d %v, want 400 %s", status, body, tt.wantCode)
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("got %d %v, want a token", status, body)
			}
			c := e.verify(body["access_token"].(string), tt.wantAud)
			if !slices.Equal(c.Audience, []string{tt.wantAud}) {
				t.Fatalf("aud %v, want [%s]", c.Audience, tt.wantAud)
			}
			// The token is refused at every other resource.
			for _, other := range []string{notesURI, paymentsURI, e.issuer} {
				if other == tt.wantAud {
					continue
				}
				if _, err := e.srv.VerifyAccessToken(e.ctx, body["access_token"].(string), other); err == nil {
					t.Errorf("the token for %s is accepted at %s", tt.wantAud, other)
				}
			}
		})
	}
}

// legacyRefreshToken stores a refresh token of the CLI client for a grant
// of two resources, as the server issued them before tokens had one
// audience.
func (e *codeEnv) legacyRefreshToken(t *testing.T) string {
	t.Helper()
	token, _, err := e.srv.issueRefreshToken(e.ctx, refreshRecord{
		ClientID: cliClient, Subject: "alice", Scopes: []string{"notes:read", "payments:transfer"},
		Resources: []string{notesURI, paymentsURI}, AuthTime: e.clock.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return token
}
