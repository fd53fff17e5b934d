package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

const (
	cliClient     = "notes-cli"   // public, one redirect URI
	otherClient   = "other-app"   // public, another redirect URI
	webClient     = "web-backend" // confidential, one redirect URI with a query
	jobClient     = "report-job"  // confidential, redirect URI but no code grant
	webSecret     = "web-backend-secret-value"
	alicePassword = "correct horse battery staple"
	bobPassword   = "tr0ub4dor&3-but-longer"
	testState     = "st-123"
	testNonce     = "n-456"
	badLogin      = "The user name or password is incorrect."
)

// testUsers is built once: hashing is deliberately slow.
var testUsers = sync.OnceValues(func() (*userauth.Directory, error) {
	ah, err := userauth.HashPassword(alicePassword)
	if err != nil {
		return nil, err
	}
	bh, err := userauth.HashPassword(bobPassword)
	if err != nil {
		return nil, err
	}
	return userauth.NewDirectory([]userauth.User{
		{Name: "alice", DisplayName: "Alice Liddell", Email: "alice@example.org", PasswordHash: ah},
		{Name: "bob", Email: "bob@example.org", PasswordHash: bh},
	})
})

var webSecretHash = sync.OnceValues(func() (string, error) { return userauth.HashPassword(webSecret) })

// codeEnv is a testEnv with users, the code-flow clients and a callback
// server standing in for the clients' redirect endpoints.
type codeEnv struct {
	*testEnv
	callback      string
	otherCallback string
	webCallback   string
	jobCallback   string
}

func newCodeEnv(t *testing.T, opts ...envOption) *codeEnv {
	t.Helper()
	users, err := testUsers()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := webSecretHash()
	if err != nil {
		t.Fatal(err)
	}
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "signed in")
	}))
	t.Cleanup(cb.Close)
	ce := &codeEnv{callback: cb.URL + "/cb", otherCallback: cb.URL + "/other", webCallback: cb.URL + "/web?tenant=blue",
		jobCallback: cb.URL + "/job"}
	withClients := func(c *Config) {
		c.Users = users
		c.Clients = append(c.Clients,
			StaticClient{ID: cliClient, Name: "Notes CLI", AuthMethod: oauth.AuthNone, RedirectURIs: []string{ce.callback}},
			StaticClient{ID: otherClient, AuthMethod: oauth.AuthNone, RedirectURIs: []string{ce.otherCallback}},
			StaticClient{ID: webClient, AuthMethod: oauth.AuthClientSecretPost, SecretHash: hash, RedirectURIs: []string{ce.webCallback}},
			StaticClient{ID: jobClient, AuthMethod: oauth.AuthClientSecretPost, SecretHash: hash,
				RedirectURIs: []string{ce.jobCallback}, GrantTypes: []string{oauth.GrantClientCredentials}},
		)
	}
	ce.testEnv = newTestEnv(t, append([]envOption{withClients}, opts...)...)
	return ce
}

// newVerifier returns a fresh PKCE code verifier.
func newVerifier(t testing.TB) string {
	v, err := randomToken(48)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// authParams is a good authorization request of the public client.
func (e *codeEnv) authParams(verifier string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {cliClient},
		"redirect_uri":          {e.callback},
		"state":                 {testState},
		"code_challenge":        {s256(verifier)},
		"code_challenge_method": {oauth.PKCES256},
		"scope":                 {"openid profile email notes:read"},
		"resource":              {notesURI},
		"nonce":                 {testNonce},
	}
}

func (e *codeEnv) authorizeURL(q url.Values) string {
	return e.issuer + PathAuthorize + "?" + q.Encode()
}

// browser is an HTTP client with cookies that does not follow redirects,
// so tests see every hop.
type browser struct {
	t      testing.TB
	client *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type response struct {
	status int
	header http.Header
	body   string
	url    *url.URL
}

func (b *browser) do(method, target string, form url.Values) *response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: string(raw), url: req.URL}
}

var (
	formTag  = regexp.MustCompile(`(?is)<form\b[^>]*>`)
	inputTag = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	attrRe   = regexp.MustCompile(`(?is)([a-z_:-]+)\s*=\s*"([^"]*)"`)
)

func attrs(tag string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(tag, -1) {
		out[strings.ToLower(m[1])] = html.UnescapeString(m[2])
	}
	return out
}

// form returns the absolute action URL and the hidden fields of the
// page's form.
func (r *response) form(t testing.TB) (string, url.Values) {
	t.Helper()
	loc := formTag.FindStringIndex(r.body)
	if loc == nil {
		t.Fatalf("page (status %d) has no form: %s", r.status, r.body)
	}
	rest := r.body[loc[1]:]
	if end := strings.Index(strings.ToLower(rest), "</form>"); end >= 0 {
		rest = rest[:end]
	}
	action, err := r.url.Parse(attrs(r.body[loc[0]:loc[1]])["action"])
	if err != nil {
		t.Fatal(err)
	}
	fields := url.Values{}
	for _, tag := range inputTag.FindAllString(rest, -1) {
		a := attrs(tag)
		if strings.EqualFold(a["type"], "hidden") {
			fields.Set(a["name"], a["value"])
		}
	}
	return action.String(), fields
}

// redirect returns the query of the redirect the response carries and
// checks it goes to want.
func (r *response) redirect(t testing.TB, want string) url.Values {
	t.Helper()
	if r.status != http.StatusFound && r.status != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect; body %s", r.status, r.body)
	}
	loc := r.header.Get("Location")
	base, _, _ := strings.Cut(want, "?")
	if !strings.HasPrefix(loc, want+"?") && !strings.HasPrefix(loc, want+"&") {
		t.Fatalf("redirect to %q, want %q", loc, want)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != base {
		t.Fatalf("redirect to %q, want %q", got, base)
	}
	return u.Query()
}

// signIn opens the authorization request q in b and signs in; it returns
// the page that follows (the consent page on success).
func (e *codeEnv) signIn(b *browser, q url.Values, user, password string) *response {
	e.t.Helper()
	page := b.do(http.MethodGet, e.authorizeURL(q), nil)
	if page.status != http.StatusOK {
		e.t.Fatalf("authorize: status %d: %s", page.status, page.body)
	}
	action, fields := page.form(e.t)
	if !strings.HasSuffix(action, PathLogin) {
		e.t.Fatalf("first page is not the login page: action %q", action)
	}
	fields.Set("username", user)
	fields.Set("password", password)
	return b.do(http.MethodPost, action, fields)
}

// decide posts decision on a consent page.
func (e *codeEnv) decide(b *browser, consent *response, decision string) *response {
	e.t.Helper()
	action, fields := consent.form(e.t)
	if !strings.HasSuffix(action, PathConsent) {
		e.t.Fatalf("not the consent page (status %d): %s", consent.status, consent.body)
	}
	fields.Set("decision", decision)
	return b.do(http.MethodPost, action, fields)
}

// code runs the browser part of the flow for q as alice and returns the
// code.
func (e *codeEnv) code(b *browser, q url.Values) string {
	e.t.Helper()
	consent := e.signIn(b, q, "alice", alicePassword)
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" {
		redirectURI = e.webCallback
	}
	got := e.decide(b, consent, "allow").redirect(e.t, redirectURI)
	if got.Get("code") == "" {
		e.t.Fatalf("no code in %v", got)
	}
	return got.Get("code")
}

// redeem sends a code token request of the public client.
func (e *codeEnv) redeem(code, verifier string, extra url.Values) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{
		"grant_type":    {oauth.GrantAuthorizationCode},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {e.callback},
		"client_id":     {cliClient},
	}
	for k, v := range extra {
		if v == nil {
			form.Del(k)
			continue
		}
		form[k] = v
	}
	status, body, _ := e.post(PathToken, form, nil)
	return status, body
}

func (e *codeEnv) refresh(client, token string) (int, map[string]any) {
	e.t.Helper()
	status, body, _ := e.post(PathToken, url.Values{
		"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {token}, "client_id": {client},
	}, nil)
	return status, body
}

func atHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func (e *codeEnv) verifyIDToken(token, clientID string) *jose.Token {
	e.t.Helper()
	t, err := jose.Verify(e.ctx, token, jose.VerifyOptions{
		Types: []jose.Typ{jose.TypJWT}, Algorithms: []jose.Alg{jose.ES256}, Keys: e.srv.Keys(), RequireKID: true,
		Issuer: e.issuer, Audience: clientID, RequireSubject: true, Now: e.clock.Now,
	})
	if err != nil {
		e.t.Fatalf("ID token: %v", err)
	}
	return t
}

func TestAuthorizationCodeFlow(t *testing.T) {
	e := newCodeEnv(t)
	b := newBrowser(t)
	verifier := newVerifier(t)
	q := e.authParams(verifier)

	login := b.do(http.MethodGet, e.authorizeURL(q), nil)
	if login.status != http.StatusOK || !strings.HasPrefix(login.header.Get("Content-Type"), "text/html") {
		t.Fatalf("authorize: %d %q", login.status, login.header.Get("Content-Type"))
	}
	if login.header.Get("Cache-Control") != "no-store" {
		t.Errorf("login page Cache-Control %q", login.header.Get("Cache-Control"))
	}
	action, fields := login.form(t)
	if action != e.issuer+PathLogin || fields.Get("request") == "" || fields.Get("csrf") == "" {
		t.Fatalf("login form: %q %v", action, fields)
	}
	fields.Set("username", "alice")
	fields.Set("password", alicePassword)
	consent := b.do(http.MethodPost, action, fields)
	if consent.status != http.StatusOK || !strings.Contains(consent.body, "Notes CLI") || !strings.Contains(consent.body, "notes:read") {
		t.Fatalf("consent page: %d %s", consent.status, consent.body)
	}
	// The redirect after the consent post must pass the page's form-action.
	cbURL, _ := url.Parse(e.callback)
	if csp := consent.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://"+cbURL.Host) {
		t.Errorf("consent page CSP %q does not admit the redirect URI", csp)
	}
	resp := e.decide(b, consent, "allow")
	if resp.status != http.StatusSeeOther || resp.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("consent answer: %d, Cache-Control %q", resp.status, resp.header.Get("Cache-Control"))
	}
	got := resp.redirect(t, e.callback)
	if got.Get("state") != testState || got.Get("iss") != e.issuer || len(got.Get("code")) < 43 {
		t.Fatalf("authorization response %v", got)
	}
	if n := e.store.count(nsRequests); n != 0 {
		t.Errorf("%d authorization requests left after consent", n)
	}
	// The callback server is where the browser lands.
	if landed := b.do(http.MethodGet, resp.header.Get("Location"), nil); landed.status != http.StatusOK {
		t.Errorf("callback answered %d", landed.status)
	}

	status, tok := e.redeem(got.Get("code"), verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	if tok["token_type"] != oauth.TokenTypeBearer || tok["scope"] != "openid profile email notes:read" {
		t.Errorf("token response %v", tok)
	}
	at := tok["access_token"].(string)
	claims := e.verify(at, notesURI)
	if claims.Subject != "alice" || claims.ClientID != cliClient || claims.Scope != "openid profile email notes:read" ||
		!slices.Equal(claims.Audience, []string{notesURI}) || claims.AuthTime == 0 {
		t.Errorf("access token claims %+v", claims)
	}

	idt := e.verifyIDToken(tok["id_token"].(string), cliClient)
	if idt.Subject != "alice" || idt.Claims["nonce"] != testNonce || idt.Claims["at_hash"] != atHash(at) ||
		idt.Claims["name"] != "Alice Liddell" || idt.Claims["email"] != "alice@example.org" ||
		idt.Claims["auth_time"] != float64(claims.AuthTime) {
		t.Errorf("ID token claims %v", idt.Claims)
	}
	if _, ok := idt.Claims["client_id"]; ok {
		t.Error("the ID token carries client_id, so it reads as an access token")
	}
	if want := e.clock.Now().Add(e.srv.cfg.AccessTokenTTL).Truncate(time.Second); !idt.ExpiresAt.Equal(want) {
		t.Errorf("ID token exp %v, want %v", idt.ExpiresAt, want)
	}

	// The refresh token rotates; the old one, used again, revokes the
	// grant, so the new one stops working too.
	rt1 := tok["refresh_token"].(string)
	status, next := e.refresh(cliClient, rt1)
	if status != http.StatusOK || next["refresh_token"] == rt1 || next["refresh_token"] == nil {
		t.Fatalf("refresh: %d %v", status, next)
	}
	if c := e.verify(next["access_token"].(string), notesURI); c.Subject != "alice" || c.ClientID != cliClient {
		t.Errorf("refreshed token claims %+v", c)
	}
	rt2 := next["refresh_token"].(string)
	if status, body := e.refresh(cliClient, rt1); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
		t.Fatalf("reused refresh token: %d %v", status, body)
	}
	if status, body := e.refresh(cliClient, rt2); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
		t.Fatalf("refresh token of a revoked family: %d %v", status, body)
	}

	// A second request in the same browser skips the login page.
	again := b.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(t))), nil)
	if action, _ := again.form(t); !strings.HasSuffix(action, PathConsent) {
		t.Errorf("with a session the authorization endpoint shows %q", action)
	}
	// prompt=login and an exceeded max_age ask for the password again.
	for _, extra := range []url.Values{{"prompt": {"login"}}, {"max_age": {"0"}}} {
		q := e.authParams(newVerifier(t))
		for k, v := range extra {
			q[k] = v
		}
		e.clock.Advance(time.Second)
		page := b.do(http.MethodGet, e.authorizeURL(q), nil)
		if action, _ := page.form(t); !strings.HasSuffix(action, PathLogin) {
			t.Errorf("%v: the authorization endpoint shows %q", extra, action)
		}
	}
}

func TestAuthorizationCodeConfidentialClient(t *testing.T) {
	e := newCodeEnv(t)
	verifier := newVerifier(t)
	// No redirect_uri: the client's only one is used, and its query is kept.
	q := url.Values{
		"response_type": {"code"}, "client_id": {webClient}, "state": {testState},
		"code_challenge": {s256(verifier)}, "code_challenge_method": {oauth.PKCES256}, "scope": {"notes:read"},
	}
	b := newBrowser(t)
	resp := e.decide(b, e.signIn(b, q, "alice", alicePassword), "allow")
	if loc := resp.header.Get("Location"); !strings.HasPrefix(loc, e.webCallback+"&code=") {
		t.Fatalf("redirect %q does not keep the registered query", loc)
	}
	got := resp.redirect(t, e.webCallback)
	if got.Get("tenant") != "blue" {
		t.Fatalf("query %v", got)
	}
	form := url.Values{
		"grant_type": {oauth.GrantAuthorizationCode}, "code": {got.Get("code")}, "code_verifier": {verifier},
		"client_id": {webClient}, "client_secret": {webSecret},
	}
	status, tok, _ := e.post(PathToken, form, nil)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	c := e.verify(tok["access_token"].(string), e.issuer)
	if c.Subject != "alice" || c.ClientID != webClient || c.Scope != "notes:read" {
		t.Errorf("claims %+v", c)
	}
	if tok["id_token"] != nil {
		t.Error("an ID token without the openid scope")
	}
	// A confidential client must authenticate to redeem a code.
	form.Del("client_secret")
	if status, body, _ := e.post(PathToken, form, nil); status != http.StatusUnauthorized || body["error"] != oauth.CodeInvalidClient {
		t.Errorf("unauthenticated confidential client: %d %v", status, body)
	}
}

// TestAuthorizationCodeResourceNarrowing: a code granted for one
// resource gives a token for it whether or not the token request names it
// again; naming another is invalid_target (RFC 8707 §2.2). An
// authorization request cannot name several (TestOneAudiencePerToken).
func TestAuthorizationCodeResourceNarrowing(t *testing.T) {
	for _, extra := range []url.Values{nil, {"resource": {paymentsURI}}} {
		e := newCodeEnv(t)
		verifier := newVerifier(t)
		q := e.authParams(verifier)
		q.Set("resource", paymentsURI)
		q.Set("scope", "openid payments:transfer")
		code := e.code(newBrowser(t), q)
		status, tok := e.redeem(code, verifier, extra)
		if status != http.StatusOK {
			t.Fatalf("token (%v): %d %v", extra, status, tok)
		}
		c := e.verify(tok["access_token"].(string), paymentsURI)
		if !slices.Equal(c.Audience, []string{paymentsURI}) || c.Scope != "openid payments:transfer" {
			t.Errorf("token (%v): aud %v scope %q", extra, c.Audience, c.Scope)
		}
	}
}

func TestLoginErrorIsTheSameForUnknownUsers(t *testing.T) {
	e := newCodeEnv(t)
	var bodies []string
	for _, creds := range [][2]string{{"alice", "wrong"}, {"nobody", "wrong"}, {"", ""}} {
		b := newBrowser(t)
		page := e.signIn(b, e.authParams(newVerifier(t)), creds[0], creds[1])
		if page.status != http.StatusUnauthorized || !strings.Contains(page.body, badLogin) {
			t.Fatalf("%v: %d %s", creds, page.status, page.body)
		}
		if _, fields := page.form(t); fields.Get("request") == "" {
			t.Errorf("%v: the login page lost the request", creds)
		}
		u, _ := url.Parse(e.issuer)
		for _, c := range b.client.Jar.Cookies(u) {
			if !strings.Contains(c.Name, "csrf") {
				t.Errorf("%v: failed sign-in set cookie %q", creds, c.Name)
			}
		}
		body := strings.ReplaceAll(page.body, creds[0], "")
		body = regexp.MustCompile(`value="[^"]*"`).ReplaceAllString(body, "")
		bodies = append(bodies, body)
	}
	if bodies[0] != bodies[1] {
		t.Errorf("unknown user and wrong password pages differ:\n%s\n%s", bodies[0], bodies[1])
	}
}

// codeOutcome is what a negative case observed.
type codeOutcome struct {
	status int
	// code is the OAuth error, from a redirect or a JSON body; "" for an
	// HTML page.
	code string
	// redirect is the redirect's query when there was one.
	redirect url.Values
}

type codeCase struct {
	name   string
	run    func(e *codeEnv) codeOutcome
	status int
	code   string
	// issues marks cases that legitimately issue tokens before failing.
	issues bool
}

// authorizeWith sends the public client's authorization request changed
// by mutate (a nil value deletes the parameter) in a fresh browser.
func authorizeWith(mutate url.Values) func(e *codeEnv) codeOutcome {
	return func(e *codeEnv) codeOutcome {
		q := e.authParams(newVerifier(e.t))
		for k, v := range mutate {
			if v == nil {
				q.Del(k)
				continue
			}
			q[k] = v
		}
		return e.observe(newBrowser(e.t).do(http.MethodGet, e.authorizeURL(q), nil))
	}
}

// authorizeRaw sends a raw query.
func authorizeRaw(query func(e *codeEnv) string) func(e *codeEnv) codeOutcome {
	return func(e *codeEnv) codeOutcome {
		return e.observe(newBrowser(e.t).do(http.MethodGet, e.issuer+PathAuthorize+"?"+query(e), nil))
	}
}

func (e *codeEnv) observe(r *response) codeOutcome {
	e.t.Helper()
	out := codeOutcome{status: r.status}
	switch r.status {
	case http.StatusFound, http.StatusSeeOther:
		loc := r.header.Get("Location")
		var target string
		for _, cb := range []string{e.callback, e.otherCallback, e.webCallback, e.jobCallback} {
			if strings.HasPrefix(loc, cb+"?") || strings.HasPrefix(loc, cb+"&") {
				target = cb
			}
		}
		if target == "" {
			e.t.Fatalf("redirect to an unregistered URI %q", loc)
		}
		out.redirect = r.redirect(e.t, target)
		out.code = out.redirect.Get("error")
		if out.redirect.Get("iss") != e.issuer {
			e.t.Errorf("redirect without iss: %v", out.redirect)
		}
		if out.redirect.Has("code") && out.code != "" {
			e.t.Errorf("error redirect with a code: %v", out.redirect)
		}
	default:
		if r.header.Get("Location") != "" {
			e.t.Errorf("status %d with Location %q", r.status, r.header.Get("Location"))
		}
		if strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			out.code = jsonError(r.body)
		}
	}
	return out
}

var errorField = regexp.MustCompile(`"error"\s*:\s*"([^"]*)"`)

func jsonError(body string) string {
	if m := errorField.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// redeemWith runs the flow and sends a token request changed by extra.
func redeemWith(extra func(e *codeEnv, code, verifier string) url.Values) func(e *codeEnv) codeOutcome {
	return func(e *codeEnv) codeOutcome {
		verifier := newVerifier(e.t)
		code := e.code(newBrowser(e.t), e.authParams(verifier))
		status, body := e.redeem(code, verifier, extra(e, code, verifier))
		c, _ := body["error"].(string)
		return codeOutcome{status: status, code: c}
	}
}

// consentStep runs the flow up to the consent page and lets step post what
// it wants.
func consentStep(step func(e *codeEnv, b *browser, consent *response) *response) func(e *codeEnv) codeOutcome {
	return func(e *codeEnv) codeOutcome {
		b := newBrowser(e.t)
		consent := e.signIn(b, e.authParams(newVerifier(e.t)), "alice", alicePassword)
		if consent.status != http.StatusOK {
			e.t.Fatalf("sign-in: %d", consent.status)
		}
		return e.observe(step(e, b, consent))
	}
}

func repeat(n int) string { return strings.Repeat("a", n) }

func codeCases() []codeCase {
	const page = ""
	return []codeCase{
		// Errors that must not redirect: the client or redirect_uri is
		// not trusted.
		{name: "unknown client", run: authorizeWith(url.Values{"client_id": {"nobody"}}), status: 400, code: page},
		{name: "missing client_id", run: authorizeWith(url.Values{"client_id": nil}), status: 400, code: page},
		{name: "agent as client", run: authorizeWith(url.Values{"client_id": {researchID.String()}}), status: 400, code: page},
		{name: "redirect_uri extra slash", run: func(e *codeEnv) codeOutcome {
			return authorizeWith(url.Values{"redirect_uri": {e.callback + "/"}})(e)
		}, status: 400, code: page},
		{name: "redirect_uri added query", run: func(e *codeEnv) codeOutcome {
			return authorizeWith(url.Values{"redirect_uri": {e.callback + "?x=1"}})(e)
		}, status: 400, code: page},
		{name: "redirect_uri case change", run: func(e *codeEnv) codeOutcome {
			return authorizeWith(url.Values{"redirect_uri": {strings.Replace(e.callback, "/cb", "/CB", 1)}})(e)
		}, status: 400, code: page},
		{name: "redirect_uri scheme case change", run: func(e *codeEnv) codeOutcome {
			return authorizeWith(url.Values{"redirect_uri": {"HTTP" + strings.TrimPrefix(e.callback, "http")}})(e)
		}, status: 400, code: page},
		{name: "redirect_uri fragment", run: func(e *codeEnv) codeOutcome {
			return authorizeWith(url.Values{"redirect_uri": {e.callback + "#frag"}})(e)
		}, status: 400, code: page},
		{name: "redirect_uri localhost for 127.0.0.1", run: func(e *codeEnv) codeOutcome {
			return authorizeWith(url.Values{"redirect_uri": {strings.Replace(e.callback, "127.0.0.1", "localhost", 1)}})(e)
		}, status: 400, code: page},
		{name: "redirect_uri of another client", run: func(e *codeEnv) codeOutcome {
			return authorizeWith(url.Values{"redirect_uri": {e.otherCallback}})(e)
		}, status: 400, code: page},
		{name: "redirect_uri missing for a public client", run: authorizeWith(url.Values{"redirect_uri": nil}), status: 400, code: page},
		{name: "duplicated client_id", run: authorizeWith(url.Values{"client_id": {cliClient, cliClient}}), status: 400, code: page},
		{name: "duplicated redirect_uri", run: func(e *codeEnv) codeOutcome {
			return authorizeWith(url.Values{"redirect_uri": {e.callback, e.callback}})(e)
		}, status: 400, code: page},
		{name: "oversized parameter", run: authorizeWith(url.Values{"state": {repeat(oauth.MaxParamBytes + 1)}}), status: 400, code: page},
		{name: "oversized query", run: authorizeRaw(func(e *codeEnv) string {
			return e.authParams(newVerifier(e.t)).Encode() + "&x=" + repeat(oauth.MaxFormBytes)
		}), status: 400, code: page},
		{name: "control character", run: authorizeWith(url.Values{"state": {"a\x00b"}}), status: 400, code: page},
		{name: "bad percent encoding", run: authorizeRaw(func(e *codeEnv) string {
			return e.authParams(newVerifier(e.t)).Encode() + "&state=%zz"
		}), status: 400, code: page},

		// Errors that go back to the client.
		{name: "response_type token", run: authorizeWith(url.Values{"response_type": {"token"}}), status: 302, code: oauth.CodeUnsupportedResponseType},
		{name: "response_type code id_token", run: authorizeWith(url.Values{"response_type": {"code id_token"}}), status: 302, code: oauth.CodeUnsupportedResponseType},
		{name: "response_type missing", run: authorizeWith(url.Values{"response_type": nil}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "duplicated response_type", run: authorizeWith(url.Values{"response_type": {"code", "code"}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "duplicated scope", run: authorizeWith(url.Values{"scope": {"openid", "openid"}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "duplicated code_challenge", run: authorizeWith(url.Values{"code_challenge": {repeat(43), repeat(43)}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "client without the code grant", run: authorizeWith(url.Values{"client_id": {jobClient}, "redirect_uri": nil}), status: 302, code: oauth.CodeUnauthorizedClient},
		{name: "PKCE missing", run: authorizeWith(url.Values{"code_challenge": nil, "code_challenge_method": nil}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "PKCE method missing means plain", run: authorizeWith(url.Values{"code_challenge_method": nil}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "PKCE plain", run: authorizeWith(url.Values{"code_challenge_method": {"plain"}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "PKCE method lowercase", run: authorizeWith(url.Values{"code_challenge_method": {"s256"}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "PKCE challenge too short", run: authorizeWith(url.Values{"code_challenge": {repeat(42)}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "PKCE challenge too long", run: authorizeWith(url.Values{"code_challenge": {repeat(129)}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "PKCE challenge bad characters", run: authorizeWith(url.Values{"code_challenge": {repeat(42) + "="}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "unknown scope", run: authorizeWith(url.Values{"scope": {"openid admin"}}), status: 302, code: oauth.CodeInvalidScope},
		{name: "scope of another resource", run: authorizeWith(url.Values{"scope": {"payments:transfer"}}), status: 302, code: oauth.CodeInvalidScope},
		{name: "malformed scope", run: authorizeWith(url.Values{"scope": {"openid  notes:read"}}), status: 302, code: oauth.CodeInvalidScope},
		{name: "unknown resource", run: authorizeWith(url.Values{"resource": {"https://evil.example/api"}}), status: 302, code: oauth.CodeInvalidTarget},
		{name: "resource with fragment", run: authorizeWith(url.Values{"resource": {notesURI + "#x"}}), status: 302, code: oauth.CodeInvalidTarget},
		{name: "relative resource", run: authorizeWith(url.Values{"resource": {"/mcp"}}), status: 302, code: oauth.CodeInvalidTarget},
		{name: "empty resource", run: authorizeWith(url.Values{"resource": {""}}), status: 302, code: oauth.CodeInvalidTarget},
		{name: "malformed authorization_details", run: authorizeWith(url.Values{"authorization_details": {`{"type":"x"}`}}), status: 302, code: oauth.CodeInvalidAuthDetails},
		{name: "authorization_details without type", run: authorizeWith(url.Values{"authorization_details": {`[{"actions":["read"]}]`}}), status: 302, code: oauth.CodeInvalidAuthDetails},
		{name: "prompt none without session", run: authorizeWith(url.Values{"prompt": {"none"}}), status: 302, code: oauth.CodeLoginRequired},
		{name: "prompt none with login", run: authorizeWith(url.Values{"prompt": {"none login"}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "negative max_age", run: authorizeWith(url.Values{"max_age": {"-1"}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "oversized state", run: authorizeWith(url.Values{"state": {repeat(maxStateBytes + 1)}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "oversized nonce", run: authorizeWith(url.Values{"nonce": {repeat(maxNonceBytes + 1)}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "request object", run: authorizeWith(url.Values{"request": {"a.b.c"}}), status: 302, code: codeRequestNotSupported},
		{name: "request_uri", run: authorizeWith(url.Values{"request_uri": {"urn:x"}}), status: 302, code: codeRequestURINotSupported},
		{name: "response_mode fragment", run: authorizeWith(url.Values{"response_mode": {"fragment"}}), status: 302, code: oauth.CodeInvalidRequest},
		{name: "malformed dpop_jkt", run: authorizeWith(url.Values{"dpop_jkt": {"not-a-thumbprint"}}), status: 302, code: oauth.CodeInvalidRequest},

		// Login and consent.
		{name: "wrong password", run: func(e *codeEnv) codeOutcome {
			return e.observe(e.signIn(newBrowser(e.t), e.authParams(newVerifier(e.t)), "alice", "wrong"))
		}, status: 401, code: page},
		{name: "unknown user", run: func(e *codeEnv) codeOutcome {
			return e.observe(e.signIn(newBrowser(e.t), e.authParams(newVerifier(e.t)), "mallory", alicePassword))
		}, status: 401, code: page},
		{name: "oversized password", run: func(e *codeEnv) codeOutcome {
			return e.observe(e.signIn(newBrowser(e.t), e.authParams(newVerifier(e.t)), "alice", repeat(4096)))
		}, status: 401, code: page},
		{name: "login CSRF missing", run: func(e *codeEnv) codeOutcome {
			b := newBrowser(e.t)
			action, fields := b.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(e.t))), nil).form(e.t)
			fields.Del("csrf")
			fields.Set("username", "alice")
			fields.Set("password", alicePassword)
			return e.observe(b.do(http.MethodPost, action, fields))
		}, status: 403, code: page},
		{name: "login CSRF from another browser", run: func(e *codeEnv) codeOutcome {
			_, theirs := newBrowser(e.t).do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(e.t))), nil).form(e.t)
			b := newBrowser(e.t)
			action, fields := b.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(e.t))), nil).form(e.t)
			fields.Set("csrf", theirs.Get("csrf"))
			fields.Set("username", "alice")
			fields.Set("password", alicePassword)
			return e.observe(b.do(http.MethodPost, action, fields))
		}, status: 403, code: page},
		{name: "login for an unknown request", run: func(e *codeEnv) codeOutcome {
			b := newBrowser(e.t)
			action, fields := b.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(e.t))), nil).form(e.t)
			fields.Set("request", "forged")
			fields.Set("username", "alice")
			fields.Set("password", alicePassword)
			return e.observe(b.do(http.MethodPost, action, fields))
		}, status: 400, code: page},
		{name: "login by GET", run: func(e *codeEnv) codeOutcome {
			return e.observe(newBrowser(e.t).do(http.MethodGet, e.issuer+PathLogin, nil))
		}, status: 405, code: page},
		{name: "consent CSRF missing", run: consentStep(func(e *codeEnv, b *browser, consent *response) *response {
			action, fields := consent.form(e.t)
			fields.Del("csrf")
			fields.Set("decision", "allow")
			return b.do(http.MethodPost, action, fields)
		}), status: 403, code: page},
		{name: "consent CSRF wrong", run: consentStep(func(e *codeEnv, b *browser, consent *response) *response {
			action, fields := consent.form(e.t)
			fields.Set("csrf", base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
			fields.Set("decision", "allow")
			return b.do(http.MethodPost, action, fields)
		}), status: 403, code: page},
		{name: "deny", run: consentStep(func(e *codeEnv, b *browser, consent *response) *response {
			return e.decide(b, consent, "deny")
		}), status: 303, code: oauth.CodeAccessDenied},
		{name: "consent answered twice", run: consentStep(func(e *codeEnv, b *browser, consent *response) *response {
			if first := e.decide(b, consent, "allow"); first.status != http.StatusSeeOther {
				e.t.Fatalf("first answer: %d", first.status)
			}
			return e.decide(b, consent, "allow")
		}), status: 400, code: page},
		{name: "consent without decision", run: consentStep(func(e *codeEnv, b *browser, consent *response) *response {
			return e.decide(b, consent, "maybe")
		}), status: 400, code: page},
		{name: "consent without session", run: consentStep(func(e *codeEnv, b *browser, consent *response) *response {
			// Another browser with its own CSRF cookie posts alice's request.
			other := newBrowser(e.t)
			_, mine := other.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(e.t))), nil).form(e.t)
			action, fields := consent.form(e.t)
			fields.Set("csrf", mine.Get("csrf"))
			fields.Set("decision", "allow")
			return other.do(http.MethodPost, action, fields)
		}), status: 401, code: page},
		{name: "consent by another user", run: consentStep(func(e *codeEnv, b *browser, consent *response) *response {
			bob := newBrowser(e.t)
			bobsConsent := e.signIn(bob, e.authParams(newVerifier(e.t)), "bob", bobPassword)
			_, bobs := bobsConsent.form(e.t)
			action, fields := consent.form(e.t)
			fields.Set("csrf", bobs.Get("csrf"))
			fields.Set("decision", "allow")
			return bob.do(http.MethodPost, action, fields)
		}), status: 403, code: page},

		// Token endpoint.
		{name: "wrong code_verifier", run: redeemWith(func(e *codeEnv, _, _ string) url.Values {
			return url.Values{"code_verifier": {newVerifier(e.t)}}
		}), status: 400, code: oauth.CodeInvalidGrant},
		{name: "missing code_verifier", run: redeemWith(func(*codeEnv, string, string) url.Values {
			return url.Values{"code_verifier": nil}
		}), status: 400, code: oauth.CodeInvalidRequest},
		{name: "short code_verifier", run: redeemWith(func(_ *codeEnv, _, v string) url.Values {
			return url.Values{"code_verifier": {v[:42]}}
		}), status: 400, code: oauth.CodeInvalidGrant},
		{name: "challenge as verifier", run: redeemWith(func(_ *codeEnv, _, v string) url.Values {
			return url.Values{"code_verifier": {s256(v)}}
		}), status: 400, code: oauth.CodeInvalidGrant},
		{name: "code for another client", run: redeemWith(func(e *codeEnv, _, _ string) url.Values {
			return url.Values{"client_id": {otherClient}, "redirect_uri": {e.otherCallback}}
		}), status: 400, code: oauth.CodeInvalidGrant},
		{name: "expired code", run: redeemWith(func(e *codeEnv, _, _ string) url.Values {
			e.clock.Advance(e.srv.cfg.CodeTTL + time.Second)
			return nil
		}), status: 400, code: oauth.CodeInvalidGrant},
		{name: "redirect_uri missing at the token endpoint", run: redeemWith(func(*codeEnv, string, string) url.Values {
			return url.Values{"redirect_uri": nil}
		}), status: 400, code: oauth.CodeInvalidRequest},
		{name: "redirect_uri differs at the token endpoint", run: redeemWith(func(e *codeEnv, _, _ string) url.Values {
			return url.Values{"redirect_uri": {e.callback + "/"}}
		}), status: 400, code: oauth.CodeInvalidGrant},
		{name: "resource not authorized", run: redeemWith(func(*codeEnv, string, string) url.Values {
			return url.Values{"resource": {paymentsURI}}
		}), status: 400, code: oauth.CodeInvalidTarget},
		{name: "unknown code", run: redeemWith(func(*codeEnv, string, string) url.Values {
			return url.Values{"code": {"not-a-code"}}
		}), status: 400, code: oauth.CodeInvalidGrant},
		{name: "duplicated code", run: redeemWith(func(_ *codeEnv, code, _ string) url.Values {
			return url.Values{"code": {code, code}}
		}), status: 400, code: oauth.CodeInvalidRequest},
		{name: "code reuse", run: func(e *codeEnv) codeOutcome {
			verifier := newVerifier(e.t)
			code := e.code(newBrowser(e.t), e.authParams(verifier))
			status, first := e.redeem(code, verifier, nil)
			if status != http.StatusOK {
				e.t.Fatalf("first redemption: %d %v", status, first)
			}
			status, body := e.redeem(code, verifier, nil)
			// What the first redemption issued is revoked.
			if s, b := e.refresh(cliClient, first["refresh_token"].(string)); s != http.StatusBadRequest || b["error"] != oauth.CodeInvalidGrant {
				e.t.Errorf("refresh token of a reused code: %d %v", s, b)
			}
			if _, err := e.srv.VerifyAccessToken(e.ctx, first["access_token"].(string), notesURI); err == nil {
				e.t.Error("access token of a reused code still verifies")
			}
			c, _ := body["error"].(string)
			return codeOutcome{status: status, code: c}
		}, status: 400, code: oauth.CodeInvalidGrant, issues: true},
		{name: "DPoP-bound code without proof", run: func(e *codeEnv) codeOutcome {
			verifier := newVerifier(e.t)
			q := e.authParams(verifier)
			q.Set("dpop_jkt", base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
			status, body := e.redeem(e.code(newBrowser(e.t), q), verifier, nil)
			c, _ := body["error"].(string)
			return codeOutcome{status: status, code: c}
		}, status: 400, code: oauth.CodeInvalidGrant},
	}
}

func TestAuthorizationCodeNegative(t *testing.T) {
	cases := codeCases()
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCodeEnv(t)
			got := tc.run(e)
			if got.status != tc.status || got.code != tc.code {
				t.Fatalf("got %d %q (%v), want %d %q", got.status, got.code, got.redirect, tc.status, tc.code)
			}
			if got.redirect != nil {
				if st := got.redirect.Get("state"); st != testState && !strings.HasPrefix(tc.name, "oversized state") {
					t.Errorf("state %q not echoed", st)
				}
				if got.redirect.Get("code") != "" {
					t.Error("an error redirect carries a code")
				}
			}
			if !tc.issues {
				for _, ns := range []string{nsRefresh, nsFamilies, nsRevoked} {
					if n := e.store.count(ns); n != 0 {
						t.Errorf("a refused request left %d records in %s", n, ns)
					}
				}
			}
		})
	}
}

func TestPromptNoneWithSessionNeedsConsent(t *testing.T) {
	e := newCodeEnv(t)
	b := newBrowser(t)
	e.code(b, e.authParams(newVerifier(t)))
	q := e.authParams(newVerifier(t))
	q.Set("prompt", "none")
	got := b.do(http.MethodGet, e.authorizeURL(q), nil).redirect(t, e.callback)
	if got.Get("error") != oauth.CodeConsentRequired || got.Get("state") != testState {
		t.Fatalf("prompt=none with a session: %v", got)
	}
}

func TestAuthorizeByPost(t *testing.T) {
	e := newCodeEnv(t)
	b := newBrowser(t)
	page := b.do(http.MethodPost, e.issuer+PathAuthorize, e.authParams(newVerifier(t)))
	if action, _ := page.form(t); page.status != http.StatusOK || !strings.HasSuffix(action, PathLogin) {
		t.Fatalf("POST authorize: %d %q", page.status, action)
	}
	q := e.authParams(newVerifier(t))
	q.Set("response_type", "token")
	resp := b.do(http.MethodPost, e.issuer+PathAuthorize, q)
	if resp.status != http.StatusSeeOther {
		t.Fatalf("error after POST: status %d, want 303", resp.status)
	}
	if got := resp.redirect(t, e.callback); got.Get("error") != oauth.CodeUnsupportedResponseType {
		t.Fatalf("error after POST: %v", got)
	}
	if r := b.do(http.MethodPut, e.issuer+PathAuthorize, q); r.status != http.StatusMethodNotAllowed {
		t.Errorf("PUT authorize: %d", r.status)
	}
}

func TestAuthorizationDetailsFlow(t *testing.T) {
	e := newCodeEnv(t)
	verifier := newVerifier(t)
	q := e.authParams(verifier)
	q.Set("authorization_details", `[{"type":"note_access","actions":["read"],"locations":["`+notesURI+`"]}]`)
	b := newBrowser(t)
	consent := e.signIn(b, q, "alice", alicePassword)
	if !strings.Contains(consent.body, "note_access") {
		t.Fatalf("consent page does not show the authorization details: %s", consent.body)
	}
	got := e.decide(b, consent, "allow").redirect(t, e.callback)
	status, tok := e.redeem(got.Get("code"), verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	c := e.verify(tok["access_token"].(string), notesURI)
	if !strings.Contains(string(c.AuthorizationDetails), `"note_access"`) || tok["authorization_details"] == nil {
		t.Errorf("authorization_details lost: token %s, response %v", c.AuthorizationDetails, tok["authorization_details"])
	}
}

func TestDetailLines(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{``, nil},
		{`[{"type":"a"}]`, []string{"a"}},
		{`[{"type":"pay","amount":"5","actions":["x"]}]`, []string{`pay: actions=["x"], amount="5"`}},
		{`[{"type":"a"},{"type":"b","k":1}]`, []string{"a", "b: k=1"}},
		{`{`, []string{"(unreadable authorization details)"}},
	}
	for _, tt := range tests {
		if got := detailLines([]byte(tt.raw)); !slices.Equal(got, tt.want) {
			t.Errorf("detailLines(%s) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestValidPKCEValue(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{repeat(43), true},
		{repeat(128), true},
		{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", true},
		{repeat(42), false},
		{repeat(129), false},
		{repeat(42) + "+", false},
		{repeat(42) + "/", false},
		{repeat(42) + "=", false},
		{repeat(42) + " ", false},
		{repeat(41) + "é", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := validPKCEValue(tt.v); got != tt.want {
			t.Errorf("validPKCEValue(%q) = %v", tt.v, got)
		}
	}
	// The RFC 7636 Appendix B example.
	if got := s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Errorf("s256 = %q", got)
	}
}

// userinfoGet calls the UserInfo endpoint with the given headers.
func (e *codeEnv) userinfoGet(header http.Header) (int, string, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.issuer+PathUserinfo, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// userAccessToken issues an access token for the UserInfo tests.
func (e *codeEnv) userAccessToken(sub string, authTime time.Time, jkt string, aud string, scopes ...string) string {
	e.t.Helper()
	req := &tokenRequest{jkt: jkt, client: &authenticated{client: &client{ID: cliClient}}}
	it, err := e.srv.issueAccessToken(e.ctx, req, accessGrant{
		Subject: sub, ClientID: cliClient, Scopes: scopes, Audience: []string{aud}, AuthTime: authTime,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return it.Token
}

func TestUserinfo(t *testing.T) {
	e := newCodeEnv(t)
	now := e.clock.Now()
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	// A token from the code flow, for this server.
	verifier := newVerifier(t)
	q := e.authParams(verifier)
	q.Del("resource")
	status, tok := e.redeem(e.code(newBrowser(t), q), verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	flowToken := tok["access_token"].(string)
	revoked := e.userAccessToken("alice", now, "", e.issuer, "openid")
	if status, body, _ := e.post(PathRevoke, url.Values{"token": {revoked}, "client_id": {cliClient}}, nil); status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, body)
	}

	tests := []struct {
		name      string
		header    http.Header
		status    int
		want      string // substring of the body (200) or of WWW-Authenticate
		challenge string // scheme the challenge must use
	}{
		{"code flow token", bearer(flowToken), 200, `"sub":"alice","name":"Alice Liddell","email":"alice@example.org"`, ""},
		{"openid only", bearer(e.userAccessToken("alice", now, "", e.issuer, "openid")), 200, `{"sub":"alice"}`, ""},
		{"email only", bearer(e.userAccessToken("bob", now, "", e.issuer, "openid", "email")), 200, `{"sub":"bob","email":"bob@example.org"}`, ""},
		{"lowercase scheme", http.Header{"Authorization": {"bearer " + flowToken}}, 200, `"sub":"alice"`, ""},
		{"no credentials", http.Header{}, 401, "Bearer", "Bearer"},
		{"garbage token", bearer("not-a-token"), 401, `error="invalid_token"`, "Bearer"},
		{"token for a resource", bearer(e.userAccessToken("alice", now, "", notesURI, "openid")), 401, `error="invalid_token"`, "Bearer"},
		{"no openid scope", bearer(e.userAccessToken("alice", now, "", e.issuer, "profile")), 403, `error="insufficient_scope"`, "Bearer"},
		{"no user session", bearer(e.userAccessToken("alice", time.Time{}, "", e.issuer, "openid")), 401, `error="invalid_token"`, "Bearer"},
		{"unknown user", bearer(e.userAccessToken("mallory", now, "", e.issuer, "openid")), 401, `error="invalid_token"`, "Bearer"},
		{"revoked token", bearer(revoked), 401, `error="invalid_token"`, "Bearer"},
		{"ID token as access token", bearer(e.idToken(t)), 401, `error="invalid_token"`, "Bearer"},
		{"DPoP-bound token as Bearer", bearer(e.userAccessToken("alice", now, "x", e.issuer, "openid")), 401, `error="invalid_token"`, "DPoP"},
		{"Bearer token with DPoP scheme", http.Header{"Authorization": {"DPoP " + flowToken}}, 401, `error="invalid_token"`, "DPoP"},
		{"DPoP scheme without proof", http.Header{"Authorization": {"DPoP " + e.userAccessToken("alice", now, "x", e.issuer, "openid")}}, 401, `error="invalid_dpop_proof"`, "DPoP"},
		{"two Authorization headers", http.Header{"Authorization": {"Bearer " + flowToken, "Bearer " + flowToken}}, 400, `error="invalid_request"`, ""},
		{"Basic scheme", http.Header{"Authorization": {"Basic YTpi"}}, 400, `error="invalid_request"`, ""},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, 400, `error="invalid_request"`, "Bearer"},
		{"token with a space", http.Header{"Authorization": {"Bearer a b"}}, 400, `error="invalid_request"`, "Bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := e.userinfoGet(tt.header)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s %v", status, tt.status, body, hdr)
			}
			if status == http.StatusOK {
				if !strings.Contains(body, tt.want) || hdr.Get("Cache-Control") != "no-store" {
					t.Errorf("body %s, Cache-Control %q", body, hdr.Get("Cache-Control"))
				}
				return
			}
			challenges := strings.Join(hdr.Values("WWW-Authenticate"), " | ")
			if !strings.Contains(challenges, tt.want) {
				t.Errorf("WWW-Authenticate %q lacks %q", challenges, tt.want)
			}
			if tt.challenge != "" && !strings.Contains(challenges, tt.challenge+" ") && challenges != tt.challenge {
				t.Errorf("WWW-Authenticate %q is not a %s challenge", challenges, tt.challenge)
			}
		})
	}

	req, _ := http.NewRequest(http.MethodPut, e.issuer+PathUserinfo, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", resp.StatusCode)
	}
}

// idToken runs the flow and returns the ID token.
func (e *codeEnv) idToken(t *testing.T) string {
	t.Helper()
	verifier := newVerifier(t)
	status, tok := e.redeem(e.code(newBrowser(t), e.authParams(verifier)), verifier, nil)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	return tok["id_token"].(string)
}

func TestDPoPBoundCodeFlow(t *testing.T) {
	e := newCodeEnv(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	proof := func(method, target, accessToken string) string {
		p, err := dpop.NewProof(e.ctx, key, dpop.ProofParams{Method: method, URL: target, AccessToken: accessToken, Now: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	verifier := newVerifier(t)
	q := e.authParams(verifier)
	q.Del("resource")
	q.Set("dpop_jkt", jkt)
	code := e.code(newBrowser(t), q)
	form := url.Values{
		"grant_type": {oauth.GrantAuthorizationCode}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {e.callback}, "client_id": {cliClient},
	}
	status, tok, _ := e.post(PathToken, form, http.Header{"DPoP": {proof(http.MethodPost, e.issuer+PathToken, "")}})
	if status != http.StatusOK || tok["token_type"] != oauth.TokenTypeDPoP {
		t.Fatalf("token: %d %v", status, tok)
	}
	at := tok["access_token"].(string)
	if c := e.verify(at, e.issuer); c.Confirmation == nil || c.Confirmation.JKT != jkt {
		t.Fatalf("access token cnf %+v", c.Confirmation)
	}
	// UserInfo wants the DPoP scheme and a proof with ath.
	status, body, _ := e.userinfoGet(http.Header{
		"Authorization": {"DPoP " + at}, "DPoP": {proof(http.MethodGet, e.issuer+PathUserinfo, at)},
	})
	if status != http.StatusOK || !strings.Contains(body, `"sub":"alice"`) {
		t.Fatalf("userinfo: %d %s", status, body)
	}
	// The public client's refresh token is bound to the key.
	rt := tok["refresh_token"].(string)
	refresh := url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {rt}, "client_id": {cliClient}}
	if status, body, _ := e.post(PathToken, refresh, nil); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidDPoPProof {
		t.Errorf("refresh without proof: %d %v", status, body)
	}
	status, next, _ := e.post(PathToken, refresh, http.Header{"DPoP": {proof(http.MethodPost, e.issuer+PathToken, "")}})
	if status != http.StatusOK || next["token_type"] != oauth.TokenTypeDPoP {
		t.Errorf("refresh with proof: %d %v", status, next)
	}
}

// TestOAuth2ClientInterop drives the flow with golang.org/x/oauth2 as the
// client and an HTTP client with cookies as the browser.
func TestOAuth2ClientInterop(t *testing.T) {
	e := newCodeEnv(t)
	cfg := &oauth2.Config{
		ClientID: cliClient,
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.issuer + PathAuthorize,
			TokenURL:  e.issuer + PathToken,
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: e.callback,
		Scopes:      []string{"openid", "notes:read"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(testState, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", notesURI))

	b := newBrowser(t)
	login := b.do(http.MethodGet, authURL, nil)
	action, fields := login.form(t)
	fields.Set("username", "alice")
	fields.Set("password", alicePassword)
	consent := b.do(http.MethodPost, action, fields)
	got := e.decide(b, consent, "allow").redirect(t, e.callback)
	if got.Get("state") != testState || got.Get("iss") != e.issuer {
		t.Fatalf("authorization response %v", got)
	}

	ctx := context.WithValue(e.ctx, oauth2.HTTPClient, http.DefaultClient)
	tok, err := cfg.Exchange(ctx, got.Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", notesURI))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != oauth.TokenTypeBearer || tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("token %+v", tok)
	}
	if c := e.verify(tok.AccessToken, notesURI); c.Subject != "alice" || c.ClientID != cliClient {
		t.Errorf("claims %+v", c)
	}

	// An expired token makes the token source refresh.
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, &stale).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.RefreshToken == "" {
		t.Fatalf("the token source did not refresh: %+v", fresh)
	}
	if c := e.verify(fresh.AccessToken, notesURI); c.Subject != "alice" {
		t.Errorf("refreshed claims %+v", c)
	}
	// The rotated-out refresh token is refused through the library too.
	if _, err := cfg.TokenSource(ctx, &stale).Token(); err == nil {
		t.Error("a used refresh token was accepted")
	} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != oauth.CodeInvalidGrant {
		t.Errorf("refresh with a used token: %v", err)
	}
}

// liteServer is a server without agents or listener, for fuzz targets
// and benchmarks; it returns the public client's redirect URI.
func liteServer(tb testing.TB) (*Server, string) {
	tb.Helper()
	users, err := testUsers()
	if err != nil {
		tb.Fatal(err)
	}
	const callback = "http://127.0.0.1:9/cb"
	s, err := New(context.Background(), Config{
		Issuer:    "http://127.0.0.1:8",
		Store:     NewMemoryStore(nil),
		Users:     users,
		Clients:   []StaticClient{{ID: cliClient, AuthMethod: oauth.AuthNone, RedirectURIs: []string{callback}}},
		Resources: []Resource{{URI: notesURI, Scopes: []string{"notes:read"}}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s, callback
}

// FuzzAuthorize checks that no query makes the authorization endpoint
// fail badly or redirect anywhere but the registered redirect URI, and
// that it never hands out a code.
func FuzzAuthorize(f *testing.F) {
	s, callback := liteServer(f)
	good := url.Values{
		"response_type": {"code"}, "client_id": {cliClient}, "redirect_uri": {callback}, "state": {"s"},
		"code_challenge": {repeat(43)}, "code_challenge_method": {"S256"}, "scope": {"openid notes:read"},
		"resource": {notesURI},
	}
	f.Add(good.Encode())
	f.Add("client_id=" + cliClient + "&redirect_uri=" + url.QueryEscape(callback) + "&response_type=token")
	f.Add("client_id=" + cliClient + "&redirect_uri=" + url.QueryEscape(callback) + "&prompt=none&code_challenge=" + repeat(43))
	f.Add("client_id=x&redirect_uri=http://evil/")
	f.Add("client_id=" + cliClient + "&client_id=" + cliClient)
	f.Add("%zz=1")
	f.Add("")
	f.Fuzz(func(t *testing.T, query string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: PathAuthorize, RawQuery: query},
			Header: http.Header{}, Host: "127.0.0.1:8"}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest:
			if w.Header().Get("Location") != "" {
				t.Fatalf("status %d with Location", w.Code)
			}
		case http.StatusFound:
			loc := w.Header().Get("Location")
			if !strings.HasPrefix(loc, callback+"?") {
				t.Fatalf("redirect to %q", loc)
			}
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			if u.Query().Get("iss") != s.Issuer() || u.Query().Get("error") == "" || u.Query().Has("code") {
				t.Fatalf("redirect %q", loc)
			}
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}

// FuzzAccessTokenFrom checks the Authorization header parser.
func FuzzAccessTokenFrom(f *testing.F) {
	for _, h := range []string{"Bearer abc", "DPoP a.b.c", "bearer x==", "Basic YTpi", "Bearer ", "Bearer a b", "", "Bearer \x00"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := &http.Request{Header: http.Header{"Authorization": {h}}}
		scheme, token, err := accessTokenFrom(r)
		if err != nil {
			if token != "" {
				t.Fatalf("error %v with token %q", err, token)
			}
			return
		}
		if scheme != oauth.TokenTypeBearer && scheme != oauth.TokenTypeDPoP {
			t.Fatalf("scheme %q", scheme)
		}
		if token == "" || !validToken68(token) || !strings.HasSuffix(h, token) {
			t.Fatalf("token %q from %q", token, h)
		}
	})
}

func BenchmarkAuthorizeRequest(b *testing.B) {
	s, callback := liteServer(b)
	query := url.Values{
		"response_type": {"code"}, "client_id": {cliClient}, "redirect_uri": {callback}, "state": {"s"},
		"code_challenge": {repeat(43)}, "code_challenge_method": {"S256"}, "scope": {"openid notes:read"},
		"resource": {notesURI},
	}.Encode()
	h := s.Handler()
	for b.Loop() {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: PathAuthorize, RawQuery: query},
			Header: http.Header{}, Host: "127.0.0.1:8"}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkCodeExchange(b *testing.B) {
	s, callback := liteServer(b)
	ctx := context.Background()
	verifier := newVerifier(b)
	h := s.Handler()
	for b.Loop() {
		code, err := s.issueCode(ctx, &authRequest{ClientID: cliClient, RedirectURI: callback, RedirectURISent: true,
			CodeChallenge: s256(verifier), Scopes: []string{"openid"}, User: "alice", AuthTime: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		form := url.Values{"grant_type": {oauth.GrantAuthorizationCode}, "code": {code}, "code_verifier": {verifier},
			"redirect_uri": {callback}, "client_id": {cliClient}}.Encode()
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8"+PathToken, strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// TestRedirectURIMatching: exact string comparison, except the port of a
// loopback IP literal (RFC 8252 §7.3).
func TestRedirectURIMatching(t *testing.T) {
	c := &client{AuthMethod: oauth.AuthNone, RedirectURIs: []string{
		"http://127.0.0.1/cb", "http://[::1]:8080/cb?x=1", "https://app.example:8443/cb", "http://localhost:9000/cb", "com.example.app:/cb",
	}}
	for sent, ok := range map[string]bool{
		"http://127.0.0.1/cb":           true,
		"http://127.0.0.1:51234/cb":     true,
		"http://[::1]:1/cb?x=1":         true,
		"https://app.example:8443/cb":   true,
		"com.example.app:/cb":           true,
		"http://localhost:9000/cb":      true,
		"http://localhost:9001/cb":      false, // a name, not a loopback IP literal
		"https://app.example:9443/cb":   false,
		"http://127.0.0.1:5/cb/":        false,
		"http://127.0.0.1:5/CB":         false,
		"HTTP://127.0.0.1:5/cb":         false,
		"http://127.0.0.1:5/cb?y=2":     false,
		"http://127.0.0.1:5/cb#f":       false,
		"http://u@127.0.0.1:5/cb":       false,
		"http://127.0.0.2:5/cb":         false,
		"http://[::1]:1/cb":             false,
		"https://127.0.0.1:5/cb":        false,
		"http://127.0.0.1.nip.io:5/cb":  false,
		"http://0x7f000001:5/cb":        false,
		"com.example.app:/cb/../evil":   false,
		"http://127.0.0.1:5/cb/../evil": false,
		// The port may vary, but must be a port (RFC 8252 §7.3).
		"http://127.0.0.1:65535/cb": true,
		"http://127.0.0.1:99999/cb": false,
		"http://127.0.0.1:65536/cb": false,
		"http://127.0.0.1:0/cb":     false,
		"http://127.0.0.1:00080/cb": false,
		"http://127.0.0.1:/cb":      false,
		"http://[::1]:70000/cb?x=1": false,
	} {
		got, perr := redirectFor(c, sent)
		if (perr == nil) != ok || (ok && got != sent) {
			t.Errorf("redirectFor(%q) = %q, %v; want ok=%v", sent, got, perr, ok)
		}
	}
}

// TestNarrowScope: an authorization request keeps the scopes the client
// may ask for and drops the rest; nothing left is invalid_scope.
func TestNarrowScope(t *testing.T) {
	c := &client{Scopes: []string{"notes:read", "openid"}}
	for raw, want := range map[string]string{
		"notes:read notes:write": "notes:read",
		"openid notes:read":      "openid notes:read",
		"":                       "",
	} {
		f, err := narrowScope(oauth.NewForm(url.Values{"scope": {raw}}), c)
		got, _ := f.Get("scope")
		if err != nil || got != want {
			t.Errorf("%q → %q, %v; want %q", raw, got, err, want)
		}
	}
	if _, err := narrowScope(oauth.NewForm(url.Values{"scope": {"notes:write"}}), c); err == nil {
		t.Error("nothing left was accepted")
	}
	f, err := narrowScope(oauth.NewForm(url.Values{"scope": {"anything"}}), &client{})
	if got, _ := f.Get("scope"); err != nil || got != "anything" {
		t.Errorf("client without a scope list: %q %v", got, err)
	}
}
