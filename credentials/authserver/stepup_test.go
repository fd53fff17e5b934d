package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
)

const (
	stepUpCallback = "http://127.0.0.1/cb"
	cappedClient   = "capped-cli" // static, public, scopes [notes:read]
)

// newStepUpEnv is a codeEnv with dynamic registration and a static
// client capped to notes:read.
func newStepUpEnv(t *testing.T) *codeEnv {
	t.Helper()
	return newCodeEnv(t, func(c *Config) {
		c.AllowDynamicRegistration = true
		c.RegistrationBurst = -1
		c.Clients = append(c.Clients, StaticClient{ID: cappedClient, AuthMethod: oauth.AuthNone,
			RedirectURIs: []string{stepUpCallback}, Scopes: []string{"notes:read"}})
	})
}

// registerScoped registers a public client with scope and returns its id.
func (e *codeEnv) registerScoped(t *testing.T, scope string) string {
	t.Helper()
	status, out, _ := e.registerBody("192.0.2.1:1234", nil, `{"client_name":"MCP client","redirect_uris":["`+stepUpCallback+`"],`+
		`"grant_types":["authorization_code","refresh_token"],"scope":"`+scope+`"}`)
	if status != http.StatusCreated || out["scope"] != scope {
		t.Fatalf("register: %d %v", status, out)
	}
	return out["client_id"].(string)
}

// stepUpParams is an authorization request of client for scope at
// resource, with a fresh verifier.
func (e *codeEnv) stepUpParams(t *testing.T, client, scope, resource string) (url.Values, string) {
	verifier := newVerifier(t)
	q := e.authParams(verifier)
	q.Set("client_id", client)
	q.Set("redirect_uri", stepUpCallback)
	q.Set("scope", scope)
	q.Set("resource", resource)
	q.Del("nonce")
	return q, verifier
}

// consentPage opens q in b, signing in as alice when b has no session,
// and returns the page that follows.
func (e *codeEnv) consentPage(t *testing.T, b *browser, q url.Values) *response {
	t.Helper()
	page := b.do(http.MethodGet, e.authorizeURL(q), nil)
	if page.status != http.StatusOK {
		return page
	}
	if action, fields := page.form(t); strings.HasSuffix(action, PathLogin) {
		fields.Set("username", "alice")
		fields.Set("password", alicePassword)
		return b.do(http.MethodPost, action, fields)
	}
	return page
}

// consentScopes returns the scopes the consent page lists.
func consentScopes(t *testing.T, page *response) []string {
	t.Helper()
	if action, _ := page.form(t); !strings.HasSuffix(action, PathConsent) {
		t.Fatalf("not the consent page (status %d): %s", page.status, page.body)
	}
	_, list, ok := strings.Cut(page.body, `<ul class="scopes">`)
	if !ok {
		return nil
	}
	list, _, _ = strings.Cut(list, "</ul>")
	var out []string
	for _, item := range strings.Split(list, "<li><code>")[1:] {
		sc, _, _ := strings.Cut(item, "</code>")
		out = append(out, sc)
	}
	return out
}

// grant runs q through consent (allow) in b and redeems the code; it
// returns the token response.
func (e *codeEnv) grant(t *testing.T, b *browser, q url.Values, verifier string) map[string]any {
	t.Helper()
	consent := e.consentPage(t, b, q)
	got := e.decide(b, consent, "allow").redirect(t, stepUpCallback)
	status, tok := e.redeem(got.Get("code"), verifier, url.Values{"client_id": {q.Get("client_id")}, "redirect_uri": {stepUpCallback}})
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, tok)
	}
	return tok
}

// refreshScope refreshes token for client, asking for scope ("" for the
// grant's).
func (e *codeEnv) refreshScope(client, token, scope string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {token}, "client_id": {client}}
	if scope != "" {
		form.Set("scope", scope)
	}
	status, body, _ := e.post(PathToken, form, nil)
	return status, body
}

// TestDynamicClientStepUp: a dynamically registered client's registered
// scope does not cap what it may ask for at the authorization endpoint: it
// may ask for more scopes of the resource it names (MCP step-up), the
// consent page lists them and the user's allow grants them. Nothing is
// granted without the page: consent is asked every time, and prompt=none
// cannot skip it. Refreshes never widen a grant.
func TestDynamicClientStepUp(t *testing.T) {
	e := newStepUpEnv(t)
	id := e.registerScoped(t, "notes:read")
	b := newBrowser(t)

	// First the registered scope: the page lists it, the token has it.
	q, verifier := e.stepUpParams(t, id, "notes:read", notesURI)
	if got := consentScopes(t, e.consentPage(t, b, q)); strings.Join(got, " ") != "notes:read" {
		t.Fatalf("consent lists %q, want notes:read", got)
	}
	read := e.grant(t, b, q, verifier)
	if read["scope"] != "notes:read" {
		t.Fatalf("first grant: scope %v", read["scope"])
	}

	// Step-up: more of the same resource. Signed in already, the user
	// still sees the consent page, which lists the new scope.
	q, verifier = e.stepUpParams(t, id, "notes:read notes:write", notesURI)
	none := url.Values{}
	for k, v := range q {
		none[k] = v
	}
	none.Set("prompt", "none")
	if got := b.do(http.MethodGet, e.authorizeURL(none), nil).redirect(t, stepUpCallback); got.Get("error") != oauth.CodeConsentRequired || got.Get("code") != "" {
		t.Fatalf("prompt=none for a wider scope: %v, want consent_required", got)
	}
	if got := consentScopes(t, e.consentPage(t, b, q)); strings.Join(got, " ") != "notes:read notes:write" {
		t.Fatalf("step-up consent lists %q, want notes:read notes:write", got)
	}
	// Denied, nothing is granted.
	q2, _ := e.stepUpParams(t, id, "notes:read notes:write", notesURI)
	if got := e.decide(b, e.consentPage(t, b, q2), "deny").redirect(t, stepUpCallback); got.Get("error") != oauth.CodeAccessDenied {
		t.Fatalf("denied step-up: %v", got)
	}
	wide := e.grant(t, b, q, verifier)
	if wide["scope"] != "notes:read notes:write" {
		t.Fatalf("step-up grant: scope %v", wide["scope"])
	}
	if c := e.verify(wide["access_token"].(string), notesURI); c.Scope != "notes:read notes:write" || c.ClientID != id {
		t.Fatalf("step-up token: scope %q client %q", c.Scope, c.ClientID)
	}

	// The first grant stays what the user allowed then.
	if status, out := e.refreshScope(id, read["refresh_token"].(string), "notes:write"); status != http.StatusBadRequest || out["error"] != oauth.CodeInvalidScope {
		t.Fatalf("refresh of the read grant asking for notes:write: %d %v", status, out)
	}
	status, out := e.refreshScope(id, read["refresh_token"].(string), "")
	if status != http.StatusOK || out["scope"] != "notes:read" {
		t.Fatalf("refresh of the read grant: %d %v", status, out)
	}
	// The wider grant refreshes to all of itself (the registration does
	// not cut it) or to part of it.
	status, out = e.refreshScope(id, wide["refresh_token"].(string), "")
	if status != http.StatusOK || out["scope"] != "notes:read notes:write" {
		t.Fatalf("refresh of the step-up grant: %d %v", status, out)
	}
	status, out = e.refreshScope(id, out["refresh_token"].(string), "notes:write")
	if status != http.StatusOK || out["scope"] != "notes:write" {
		t.Fatalf("refresh of the step-up grant asking for part of it: %d %v", status, out)
	}
}

// TestStepUpScopeLimits: what a dynamic client may ask for beyond its
// registration is the named resource's scopes; a static client keeps its
// configured cap; unknown scopes and scopes of another resource are
// invalid_scope; a request without scope gets the registered scope.
func TestStepUpScopeLimits(t *testing.T) {
	e := newStepUpEnv(t)
	dyn := e.registerScoped(t, "notes:read")
	b := newBrowser(t)
	tests := []struct {
		name, client, scope, resource string
		want                          string // granted scope; "" when refused
		code                          string // error when refused
	}{
		{name: "dynamic: more of the resource", client: dyn, scope: "notes:write", resource: notesURI, want: "notes:write"},
		{name: "dynamic: another resource's own scope", client: dyn, scope: "payments:transfer", resource: paymentsURI, want: "payments:transfer"},
		{name: "dynamic: no scope gets the registered one", client: dyn, resource: notesURI, want: "notes:read"},
		{name: "dynamic: unknown scope", client: dyn, scope: "admin", resource: notesURI, code: oauth.CodeInvalidScope},
		{name: "dynamic: scope of another resource", client: dyn, scope: "payments:transfer", resource: notesURI, code: oauth.CodeInvalidScope},
		{name: "dynamic: malformed scope", client: dyn, scope: "notes:read  notes:write", resource: notesURI, code: oauth.CodeInvalidScope},
		{name: "dynamic: beyond the registration without a resource", client: dyn, scope: "notes:write", code: oauth.CodeInvalidScope},
		{name: "static: capped, the rest dropped", client: cappedClient, scope: "notes:read notes:write", resource: notesURI, want: "notes:read"},
		{name: "static: capped, nothing left", client: cappedClient, scope: "notes:write", resource: notesURI, code: oauth.CodeInvalidScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, verifier := e.stepUpParams(t, tc.client, tc.scope, tc.resource)
			if tc.scope == "" {
				q.Del("scope")
			}
			if tc.resource == "" {
				q.Del("resource")
			}
			if tc.code != "" {
				got := b.do(http.MethodGet, e.authorizeURL(q), nil).redirect(t, stepUpCallback)
				if got.Get("error") != tc.code {
					t.Fatalf("got %v, want %s", got, tc.code)
				}
				return
			}
			if got := consentScopes(t, e.consentPage(t, b, q)); strings.Join(got, " ") != tc.want {
				t.Fatalf("consent lists %q, want %q", got, tc.want)
			}
			tok := e.grant(t, b, q, verifier)
			if tok["scope"] != tc.want {
				t.Fatalf("granted %v, want %q", tok["scope"], tc.want)
			}
		})
	}
}

// TestRefreshNeverWidens: a refresh is capped by what the user granted,
// also when the grant has no scope at all (before, a nil grant scope was
// no cap, and a refresh could ask for any scope of the resource); the code
// exchange ignores scope.
func TestRefreshNeverWidens(t *testing.T) {
	e := newStepUpEnv(t)
	dyn := e.registerScoped(t, "notes:read")
	b := newBrowser(t)

	// The static client without a scope list, asking for no scope: the
	// grant is empty.
	verifier := newVerifier(t)
	q := e.authParams(verifier)
	q.Del("scope")
	code := e.code(b, q)
	status, tok := e.redeem(code, verifier, url.Values{"scope": {"notes:write"}})
	if status != http.StatusOK || tok["scope"] != nil {
		t.Fatalf("code exchange asking for scope: %d %v", status, tok)
	}
	if status, out := e.refreshScope(cliClient, tok["refresh_token"].(string), "notes:write"); status != http.StatusBadRequest || out["error"] != oauth.CodeInvalidScope {
		t.Fatalf("refresh of an empty grant asking for notes:write: %d %v", status, out)
	}

	// The dynamic client: its read grant cannot become write, neither by
	// the code exchange nor by a refresh.
	q, verifier = e.stepUpParams(t, dyn, "notes:read", notesURI)
	consent := e.consentPage(t, b, q)
	got := e.decide(b, consent, "allow").redirect(t, stepUpCallback)
	status, tok = e.redeem(got.Get("code"), verifier, url.Values{"client_id": {dyn}, "redirect_uri": {stepUpCallback}, "scope": {"notes:read notes:write"}})
	if status != http.StatusOK || tok["scope"] != "notes:read" {
		t.Fatalf("code exchange asking for more: %d %v", status, tok)
	}
	for _, scope := range []string{"notes:write", "notes:read notes:write", "payments:transfer"} {
		if status, out := e.refreshScope(dyn, tok["refresh_token"].(string), scope); status != http.StatusBadRequest || out["error"] != oauth.CodeInvalidScope {
			t.Fatalf("refresh asking for %q: %d %v", scope, status, out)
		}
	}
}
