package consent_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/consent/consenttest"
	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

const (
	trustDomain   = "example.org"
	paymentsURI   = "https://pay.example.org/mcp"
	alicePassword = "correct horse battery staple"
	bobPassword   = "tr0ub4dor&3-but-longer"
	transferArgs  = `{"amount":20,"currency":"EUR","to":"bob"}`
	binding       = "Transfer 20 EUR to bob (ref 4F2A)"
)

var paymentsAgent = spiffeid.RequireFromString("spiffe://example.org/agent/payments")

// users is built once: hashing is deliberately slow.
var users = sync.OnceValues(func() (*userauth.Directory, error) {
	ah, err := userauth.HashPassword(alicePassword)
	if err != nil {
		return nil, err
	}
	bh, err := userauth.HashPassword(bobPassword)
	if err != nil {
		return nil, err
	}
	return userauth.NewDirectory([]userauth.User{
		{Name: "alice", Email: "alice@example.org", PasswordHash: ah},
		{Name: "bob", Email: "bob@example.org", PasswordHash: bh},
	})
})

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is the authorization server with CIBA and the approval pages on one
// origin, as the host mounts them, with a payments agent as CIBA client.
type env struct {
	t      *testing.T
	ctx    context.Context
	clock  *clock
	ca     *ca.CA
	cfg    authserver.Config
	as     atomic.Pointer[authserver.Server]
	pages  atomic.Pointer[consent.Pages]
	issuer string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := users()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), clock: &clock{now: time.Now().UTC().Truncate(time.Second)}}
	e.ca, err = ca.New(e.ctx, ca.Config{TrustDomain: "spiffe://" + trustDomain, Journal: &ca.MemoryJournal{}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, consent.DefaultPath) {
			e.pages.Load().Handler().ServeHTTP(w, r)
			return
		}
		e.as.Load().Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	e.issuer = srv.URL
	e.cfg = authserver.Config{
		Issuer:      e.issuer,
		Store:       authserver.NewMemoryStore(e.clock.Now),
		TrustDomain: trustDomain,
		SVIDs:       e.ca,
		Users:       dir,
		Agents: []authserver.AgentClient{{ID: credentials.MustParseIdentity(paymentsAgent.String()),
			Scopes: []string{"payments:transfer"}}},
		Resources: []authserver.Resource{{URI: paymentsURI, Scopes: []string{"payments:transfer"}}},
		CIBA:      &authserver.CIBAConfig{Clients: []authserver.CIBAClient{{ClientID: paymentsAgent.String()}}},
		Now:       e.clock.Now,
	}
	e.restart()
	return e
}

// restart starts a new authorization server on the same store, and new
// pages, as a host restart does.
func (e *env) restart() {
	e.t.Helper()
	as, err := authserver.New(e.ctx, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	pages, err := consent.New(consent.Config{Server: as, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	e.as.Store(as)
	e.pages.Store(pages)
}

func toolCall(args string) string {
	return `[{"type":"agenthost_tool_call","locations":["` + paymentsURI + `"],"tool":"payments/transfer","arguments":` + args + `}]`
}

// post sends a form as the payments agent, authenticated by a JWT-SVID,
// and decodes the JSON answer.
func (e *env) post(path string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	svid, _, err := e.ca.NewJWTSVID(e.ctx, paymentsAgent, []string{e.issuer})
	if err != nil {
		e.t.Fatal(err)
	}
	form.Set("client_assertion_type", oauth.AssertionJWTSPIFFE)
	form.Set("client_assertion", svid)
	resp, err := http.PostForm(e.issuer+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, out
}

// request sends a backchannel request for alice approving one transfer
// with args, and returns its auth_req_id.
func (e *env) request(args, bindingMessage string, extra url.Values) string {
	e.t.Helper()
	form := url.Values{
		"scope":                 {"openid payments:transfer"},
		"resource":              {paymentsURI},
		"login_hint":            {"alice"},
		"binding_message":       {bindingMessage},
		"authorization_details": {toolCall(args)},
	}
	for k, v := range extra {
		form[k] = v
	}
	status, body := e.post(authserver.PathBackchannel, form)
	if status != http.StatusOK {
		e.t.Fatalf("backchannel: %d %v", status, body)
	}
	return body["auth_req_id"].(string)
}

func (e *env) poll(authReqID string) (int, map[string]any) {
	e.t.Helper()
	return e.post(authserver.PathToken, url.Values{"grant_type": {oauth.GrantCIBA}, "auth_req_id": {authReqID}})
}

func (e *env) wantPoll(authReqID string, code string) {
	e.t.Helper()
	status, body := e.poll(authReqID)
	if status != http.StatusBadRequest || body["error"] != code {
		e.t.Fatalf("poll: %d %v, want %s", status, body, code)
	}
}

func (e *env) pageURL(authReqID string) string { return e.pages.Load().URL(authReqID) }

func (e *env) state(authReqID string) authserver.ApprovalState {
	e.t.Helper()
	a, err := e.as.Load().Approval(e.ctx, authserver.ApprovalID(authReqID))
	if err != nil {
		e.t.Fatal(err)
	}
	return a.State
}

func wantStatus(t *testing.T, p *consenttest.Page, err error, status int, text string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != status || !strings.Contains(p.Body, text) {
		t.Fatalf("page %s: status %d, want %d with %q:\n%s", p.URL, p.Status, status, text, p.Body)
	}
}

func TestApprovalEndToEnd(t *testing.T) {
	e := newEnv(t)
	authReqID := e.request(transferArgs, binding, nil)
	e.wantPoll(authReqID, oauth.CodeAuthorizationPending)
	e.wantPoll(authReqID, oauth.CodeSlowDown)

	pageURL := e.pageURL(authReqID)
	if !strings.HasPrefix(pageURL, e.issuer+consent.DefaultPath) || strings.Contains(pageURL, authReqID) {
		t.Fatalf("page URL %q must be on the issuer's origin and not carry the auth_req_id", pageURL)
	}
	// Not signed in: the page sends the browser to sign in and back.
	alice := consenttest.NewBrowser("alice", alicePassword)
	first, err := alice.Do(e.ctx, http.MethodGet, pageURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.URL.Path != authserver.PathSignIn || first.Fields.Get("return_to") != first.URL.Query().Get("return_to") ||
		!strings.HasPrefix(first.Fields.Get("return_to"), consent.DefaultPath) {
		t.Fatalf("first stop %s, fields %v", first.URL, first.Fields)
	}
	page, err := alice.Open(e.ctx, pageURL)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := txntoken.ArgsDigest(json.RawMessage(transferArgs))
	for _, want := range []string{binding, paymentsAgent.String(), "payments/transfer", paymentsURI, "&#34;amount&#34;: 20",
		"&#34;currency&#34;: &#34;EUR&#34;", digest, "act as <strong>alice</strong>"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("page lacks %q:\n%s", want, page.Body)
		}
	}
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'",
		"X-Frame-Options":         "DENY",
		"Cache-Control":           "no-store",
	} {
		if got := pageHeader(t, e, alice, pageURL, name); !strings.Contains(got, want) {
			t.Errorf("%s: %q", name, got)
		}
	}
	done, err := alice.Submit(e.ctx, page, "approve")
	wantStatus(t, done, err, http.StatusOK, "You approved the request")

	status, body := e.poll(authReqID)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, body)
	}
	claims, err := e.as.Load().VerifyAccessToken(e.ctx, body["access_token"].(string), paymentsURI)
	if err != nil {
		t.Fatal(err)
	}
	wantDetails := `[{"args_sha256":"` + digest + `","arguments":` + transferArgs + `,"locations":["` + paymentsURI +
		`"],"tool":"payments/transfer","type":"agenthost_tool_call"}]`
	if claims.Subject != "alice" || claims.ClientID != paymentsAgent.String() || string(claims.AuthorizationDetails) != wantDetails {
		t.Fatalf("claims %+v, details %s", claims, claims.AuthorizationDetails)
	}
	if got, _ := json.Marshal(body["authorization_details"]); string(got) != wantDetails {
		t.Fatalf("response authorization_details %s", got)
	}
	// One approval, one token; one decision.
	e.wantPoll(authReqID, oauth.CodeInvalidGrant)
	again, err := alice.Submit(e.ctx, page, "approve")
	wantStatus(t, again, err, http.StatusConflict, "already decided")
	reopened, err := alice.Open(e.ctx, pageURL)
	wantStatus(t, reopened, err, http.StatusConflict, "already approved")
}

func pageHeader(t *testing.T, e *env, b *consenttest.Browser, pageURL, name string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, pageURL, nil)
	u, _ := url.Parse(e.issuer)
	for _, c := range b.Cookies(u) {
		req.AddCookie(c)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get(name)
}

func TestDenyOnPage(t *testing.T) {
	e := newEnv(t)
	authReqID := e.request(transferArgs, binding, nil)
	p, err := consenttest.NewBrowser("alice", alicePassword).Deny(e.ctx, e.pageURL(authReqID))
	wantStatus(t, p, err, http.StatusOK, "You denied the request")
	e.wantPoll(authReqID, oauth.CodeAccessDenied)
}

func TestApprovalByAnotherUserIsRefused(t *testing.T) {
	e := newEnv(t)
	authReqID := e.request(transferArgs, binding, nil)
	pageURL := e.pageURL(authReqID)
	bob := consenttest.NewBrowser("bob", bobPassword)
	p, err := bob.Open(e.ctx, pageURL)
	wantStatus(t, p, err, http.StatusForbidden, "another account")
	if strings.Contains(p.Body, transferArgs) || strings.Contains(p.Body, "alice") || p.Decision {
		t.Fatalf("the refusal shows the request or its user:\n%s", p.Body)
	}
	// Even with a form token of his own session for this request, bob's
	// decision is refused.
	req := httptest.NewRequest(http.MethodPost, pageURL, nil)
	u, _ := url.Parse(e.issuer)
	for _, c := range bob.Cookies(u) {
		req.AddCookie(c)
	}
	token := e.as.Load().ApprovalCSRFToken(req, authserver.ApprovalID(authReqID))
	if token == "" {
		t.Fatal("bob has no session")
	}
	p, err = bob.Do(e.ctx, http.MethodPost, pageURL, url.Values{"csrf": {token}, "decision": {"approve"}})
	wantStatus(t, p, err, http.StatusForbidden, "another account")
	if e.state(authReqID) != authserver.ApprovalPending {
		t.Fatal("bob's refused decision changed the request")
	}
	e.wantPoll(authReqID, oauth.CodeAuthorizationPending)

	// Alice still can.
	p, err = consenttest.NewBrowser("alice", alicePassword).Approve(e.ctx, pageURL)
	wantStatus(t, p, err, http.StatusOK, "You approved")
	e.clock.Advance(10 * time.Second)
	if status, body := e.poll(authReqID); status != http.StatusOK {
		t.Fatalf("token: %d %v", status, body)
	}
}

func TestDecisionFormNeedsItsCSRFToken(t *testing.T) {
	e := newEnv(t)
	authReqID := e.request(transferArgs, binding, nil)
	other := e.request(`{"amount":1}`, "", nil)
	pageURL := e.pageURL(authReqID)
	alice := consenttest.NewBrowser("alice", alicePassword)
	page, err := alice.Open(e.ctx, pageURL)
	wantStatus(t, page, err, http.StatusOK, "Approve")
	otherPage, err := alice.Open(e.ctx, e.pageURL(other))
	wantStatus(t, otherPage, err, http.StatusOK, "Approve")
	// The same user in another browser has another session.
	alice2 := consenttest.NewBrowser("alice", alicePassword)
	page2, err := alice2.Open(e.ctx, pageURL)
	wantStatus(t, page2, err, http.StatusOK, "Approve")

	tests := []struct {
		name string
		csrf []string
	}{
		{"missing", nil},
		{"empty", []string{""}},
		{"another request's token", otherPage.Fields["csrf"]},
		{"another session's token", page2.Fields["csrf"]},
		{"garbage", []string{"bm90IGEgdG9rZW4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"decision": {"approve"}}
			if tt.csrf != nil {
				form["csrf"] = tt.csrf
			}
			p, err := alice.Do(e.ctx, http.MethodPost, pageURL, form)
			wantStatus(t, p, err, http.StatusForbidden, "Form expired")
		})
	}
	if e.state(authReqID) != authserver.ApprovalPending {
		t.Fatal("a forged decision changed the request")
	}
	// A post from a browser that is not signed in at all.
	p, err := consenttest.NewBrowser("alice", alicePassword).Do(e.ctx, http.MethodPost, pageURL,
		url.Values{"csrf": page.Fields["csrf"], "decision": {"approve"}})
	wantStatus(t, p, err, http.StatusUnauthorized, "Not signed in")
	// A form without a decision.
	p, err = alice.Do(e.ctx, http.MethodPost, pageURL, url.Values{"csrf": page.Fields["csrf"], "decision": {"maybe"}})
	wantStatus(t, p, err, http.StatusBadRequest, "no decision")
	if e.state(authReqID) != authserver.ApprovalPending {
		t.Fatal("a refused form changed the request")
	}
	p, err = alice.Submit(e.ctx, page, "approve")
	wantStatus(t, p, err, http.StatusOK, "You approved")
}

func TestExpiredRequestOnPage(t *testing.T) {
	e := newEnv(t)
	authReqID := e.request(transferArgs, binding, url.Values{"requested_expiry": {"90"}})
	alice := consenttest.NewBrowser("alice", alicePassword)
	page, err := alice.Open(e.ctx, e.pageURL(authReqID))
	wantStatus(t, page, err, http.StatusOK, "about a minute")
	e.clock.Advance(91 * time.Second)
	p, err := alice.Submit(e.ctx, page, "approve")
	wantStatus(t, p, err, http.StatusGone, "expired")
	p, err = alice.Open(e.ctx, e.pageURL(authReqID))
	wantStatus(t, p, err, http.StatusGone, "expired")
	e.wantPoll(authReqID, oauth.CodeExpiredToken)
}

func TestUnknownRequestOnPage(t *testing.T) {
	e := newEnv(t)
	alice := consenttest.NewBrowser("alice", alicePassword)
	p, err := alice.Open(e.ctx, e.pageURL("no-such-auth-req-id"))
	wantStatus(t, p, err, http.StatusNotFound, "no such request")
	p, err = alice.Open(e.ctx, e.issuer+consent.DefaultPath+"..%2f..%2foauth2%2ftoken")
	if err != nil || p.Status == http.StatusOK {
		t.Fatalf("odd id: %v %d", err, p.Status)
	}
}

func TestRestartKeepsPendingApproval(t *testing.T) {
	e := newEnv(t)
	authReqID := e.request(transferArgs, binding, nil)
	alice := consenttest.NewBrowser("alice", alicePassword)
	page, err := alice.Open(e.ctx, e.pageURL(authReqID))
	wantStatus(t, page, err, http.StatusOK, binding)

	e.restart()
	e.wantPoll(authReqID, oauth.CodeAuthorizationPending)
	pending, err := e.as.Load().PendingApprovals(e.ctx, "alice")
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending after restart: %v %v", pending, err)
	}
	// The form shown before the restart still works: the session and its
	// tokens are keyed by the store's secrets.
	p, err := alice.Submit(e.ctx, page, "approve")
	wantStatus(t, p, err, http.StatusOK, "You approved")
	e.restart()
	e.clock.Advance(10 * time.Second)
	status, body := e.poll(authReqID)
	if status != http.StatusOK {
		t.Fatalf("token after restarts: %d %v", status, body)
	}
}

func TestPageEscapesHostileArguments(t *testing.T) {
	e := newEnv(t)
	args := `{"memo":"</pre><script>alert(1)</script>","to":"\"><img src=x onerror=alert(1)>",` +
		`"iban":"DE89 3704 \u202e0044 0532","amount":20.10,"big":9007199254740993,"nested":{"z":1,"a":[true,null]},` +
		`"payee":"` + "bob\u202e\u200bevil" + `"}`
	authReqID := e.request(args, "<b>Pay</b> & go", nil)
	p, err := consenttest.NewBrowser("alice", alicePassword).Open(e.ctx, e.pageURL(authReqID))
	wantStatus(t, p, err, http.StatusOK, "Approve")
	for _, bad := range []string{"<script", "<img", "<b>", "\u202e", "\u200b"} {
		if strings.Contains(p.Body, bad) {
			t.Errorf("page contains %q unescaped:\n%s", bad, p.Body)
		}
	}
	for _, want := range []string{
		"&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
		"&lt;img src=x onerror=alert(1)&gt;",
		`DE89 3704 \u202e0044 0532`,
		`bob\u202e\u200bevil`,
		"&lt;b&gt;Pay&lt;/b&gt; &amp; go",
		// Numbers as written, members in their order.
		"&#34;amount&#34;: 20.10",
		"&#34;big&#34;: 9007199254740993",
		"&#34;z&#34;: 1,\n",
	} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("page lacks %q:\n%s", want, p.Body)
		}
	}
	if i, j := strings.Index(p.Body, "&#34;z&#34;"), strings.Index(p.Body, "&#34;a&#34;"); i < 0 || j < i {
		t.Errorf("member order changed")
	}
}

func TestNewChecksConfig(t *testing.T) {
	e := newEnv(t)
	for _, cfg := range []consent.Config{
		{},
		{Server: e.as.Load(), Path: "approve"},
		{Server: e.as.Load(), Path: "/approve/{x}/"},
		{Server: e.as.Load(), BaseURL: "ftp://host"},
	} {
		if _, err := consent.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	p, err := consent.New(consent.Config{Server: e.as.Load(), Path: "/ok/", BaseURL: "https://host.example/ignored/path"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.URL("abc"), "https://host.example/ok/"+authserver.ApprovalID("abc"); got != want {
		t.Fatalf("URL %q, want %q", got, want)
	}
}

// failingServer is an AuthServer whose store fails, to check the page
// answers 500 without internals.
type failingServer struct{ consent.AuthServer }

func (failingServer) SignedInUser(*http.Request) (string, bool) { return "alice", true }
func (failingServer) Approval(context.Context, string) (*authserver.Approval, error) {
	return nil, errors.New("database is on fire")
}

func TestStoreFailureIsAServerError(t *testing.T) {
	e := newEnv(t)
	p, err := consent.New(consent.Config{Server: failingServer{e.as.Load()}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, consent.DefaultPath+authserver.ApprovalID("x"), nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusInternalServerError || strings.Contains(string(body), "fire") {
		t.Fatalf("status %d: %s", rec.Code, body)
	}
}
