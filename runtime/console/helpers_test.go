package console

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/store"
)

// fakeBackend is a host with fixed agents, tasks, approvals and records;
// it records the remedies asked of it.
type fakeBackend struct {
	mu        sync.Mutex
	agents    []Agent
	tasks     []Task
	changed   map[string]chan struct{}
	approvals []Approval
	records   []audit.Entry
	trace     *audit.TraceNode
	revoked   map[string]bool
	remedies  []string // "quarantine agent reason"
	verifies  int
	// verifyProblem and verifyErr are what AuditVerify finds.
	verifyProblem string
	verifyErr     error
	// activeErr is what UserActive fails with.
	activeErr error
}

var _ Backend = (*fakeBackend)(nil)

func (b *fakeBackend) Agents(context.Context) ([]Agent, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Agent(nil), b.agents...), nil
}

func (b *fakeBackend) remedy(what, agent, reason string, needState string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, a := range b.agents {
		if a.Name != agent {
			continue
		}
		if needState != "" && a.State != needState {
			return fmt.Errorf("%w: %s", ErrNotQuarantined, agent)
		}
		b.remedies = append(b.remedies, what+" "+agent+" "+reason)
		if what == "quarantine" {
			b.agents[i].State = AgentQuarantined
		} else {
			b.agents[i].State = AgentRunning
		}
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnknownAgent, agent)
}

func (b *fakeBackend) Quarantine(_ context.Context, agent, reason string) error {
	return b.remedy("quarantine", agent, reason, "")
}

func (b *fakeBackend) Release(_ context.Context, agent, reason string) error {
	return b.remedy("release", agent, reason, AgentQuarantined)
}

func (b *fakeBackend) remedyLog() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.remedies...)
}

func (b *fakeBackend) Tasks(context.Context) []Task {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Task, len(b.tasks))
	for i, t := range b.tasks {
		t.Events = nil
		out[i] = t
	}
	return out
}

func (b *fakeBackend) WatchTask(_ context.Context, id string) (Task, <-chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range b.tasks {
		if t.ID == id {
			if b.changed == nil {
				b.changed = map[string]chan struct{}{}
			}
			ch := b.changed[id]
			if ch == nil {
				ch = make(chan struct{})
				b.changed[id] = ch
			}
			t.Events = append([]TaskEvent(nil), t.Events...)
			return t, ch, true
		}
	}
	return Task{}, nil, false
}

// update changes task id and wakes its watchers.
func (b *fakeBackend) update(id string, f func(*Task)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.tasks {
		if b.tasks[i].ID == id {
			f(&b.tasks[i])
		}
	}
	if ch := b.changed[id]; ch != nil {
		close(ch)
		delete(b.changed, id)
	}
}

func (b *fakeBackend) Approvals(_ context.Context, user string) ([]Approval, error) {
	var out []Approval
	for _, a := range b.approvals {
		if user == "" || a.User == user {
			out = append(out, a)
		}
	}
	return out, nil
}

func (b *fakeBackend) AuditRead(_ context.Context, from int64, limit int) ([]audit.Entry, error) {
	n := int64(len(b.records))
	if from < 0 {
		from, limit = max(0, n+from), int(-from)
	}
	if from >= n {
		return nil, nil
	}
	return b.records[from:min(n, from+int64(limit))], nil
}

func (b *fakeBackend) AuditTrace(_ context.Context, id string) (*audit.TraceNode, error) {
	if b.trace == nil || b.trace.Txn != id {
		return nil, fmt.Errorf("trace %s: %w", id, audit.ErrNotFound)
	}
	return b.trace, nil
}

func (b *fakeBackend) AuditCheckpoint(context.Context) (Checkpoint, error) {
	return Checkpoint{Size: int64(len(b.records)), Hash: "aGFzaA==", Origin: "agenthost-audit/test", VerifierKey: "agenthost-audit/test+1234+AAAA"}, nil
}

func (b *fakeBackend) AuditVerify(context.Context) (Verification, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.verifies++
	if b.verifyErr != nil {
		return Verification{}, b.verifyErr
	}
	n := int64(len(b.records))
	return Verification{Size: n, Records: n, Checkpoints: 1, Covered: n, Problem: b.verifyProblem}, nil
}

func (b *fakeBackend) Trust(context.Context) (Trust, error) {
	now := time.Now()
	return Trust{TrustDomain: "example.test", Source: "The host's own CA",
		Authorities: []Authority{{Kind: "x509", Slot: "current", Key: "CN=example.test serial 1", NotBefore: now, NotAfter: now.Add(time.Hour)}},
		SigningKeys: []SigningKey{{KID: "kid-1", State: "current", Activates: now}}}, nil
}

func (b *fakeBackend) UserActive(_ context.Context, user string, _ time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.activeErr != nil {
		return false, b.activeErr
	}
	return (user == "alice" || user == "bob" || user == "<img src=x onerror=alert(1)>") && !b.revoked[user], nil
}

// fakeAS is the authorization server the console signs in at: its
// authorization endpoint signs in whoever the test names (the user query
// parameter of the login URL is not sent; the test sets next) and sends
// the browser back with a code; its token endpoint checks PKCE.
type fakeAS struct {
	t       *testing.T
	issuer  string
	mu      sync.Mutex
	user    string
	codes   map[string]fakeCode
	revoked []string
	// iss overrides the iss the authorization response carries.
	iss *string
}

type fakeCode struct {
	user, challenge, redirect string
}

func (as *fakeAS) signInAs(user string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.user = user
}

func (as *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != "console-test" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		q.Get("scope") != "openid profile" {
		http.Error(w, "bad authorization request "+r.URL.RawQuery, http.StatusBadRequest)
		return
	}
	as.mu.Lock()
	code := fmt.Sprintf("code-%d", len(as.codes))
	as.codes[code] = fakeCode{user: as.user, challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	iss := as.issuer
	if as.iss != nil {
		iss = *as.iss
	}
	as.mu.Unlock()
	back := url.Values{"code": {code}, "state": {q.Get("state")}}
	if iss != "" {
		back.Set("iss", iss)
	}
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusSeeOther)
}

func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	as.mu.Lock()
	c, ok := as.codes[r.PostForm.Get("code")]
	delete(as.codes, r.PostForm.Get("code"))
	as.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("client_id") != "console-test":
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidGrant, "unknown code"))
	case base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidGrant, "PKCE verification failed"))
	case r.PostForm.Get("redirect_uri") != c.redirect:
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidGrant, "redirect_uri differs"))
	default:
		oauth.WriteJSON(w, http.StatusOK, oauth.TokenResponse{AccessToken: "at-" + c.user, TokenType: "Bearer", ExpiresIn: 300})
	}
}

func (as *fakeAS) userinfo(w http.ResponseWriter, r *http.Request) {
	user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer at-")
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, map[string]string{"sub": user, "name": strings.ToUpper(user[:1]) + user[1:] + " Example"})
}

func (as *fakeAS) revoke(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	as.mu.Lock()
	as.revoked = append(as.revoked, r.PostForm.Get("token"))
	as.mu.Unlock()
}

// env is a console with a fake backend and a fake authorization server on
// one origin. With several consoles (newCluster) the origin is a load
// balancer in front of them: each request goes to the console use chose.
type env struct {
	t       *testing.T
	b       *fakeBackend
	as      *fakeAS
	console *Console
	srv     *httptest.Server
	// cfg is the consoles' configuration, for restart.
	cfg Config
	// consoles are the consoles behind the origin; at is the index of
	// the one that serves the next requests.
	mu       sync.Mutex
	consoles []*Console
	at       int
}

func newEnv(t *testing.T, b *fakeBackend) *env {
	t.Helper()
	return newCluster(t, b, nil, nil, 1)
}

// newCluster is an env with n consoles behind one origin, as hosts
// behind a load balancer, keeping their state in kv (nil: each its own,
// in memory) and reading the time from now (nil: time.Now).
func newCluster(t *testing.T, b *fakeBackend, kv store.KV, now func() time.Time, n int) *env {
	t.Helper()
	e := &env{t: t, b: b, as: &fakeAS{t: t, codes: map[string]fakeCode{}}}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/authorize", e.as.authorize)
	mux.HandleFunc("/oauth2/token", e.as.token)
	mux.HandleFunc("/oauth2/userinfo", e.as.userinfo)
	mux.HandleFunc("/oauth2/revoke", e.as.revoke)
	mux.HandleFunc(Path, func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		c := e.consoles[e.at]
		e.mu.Unlock()
		c.Handler().ServeHTTP(w, r)
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.as.issuer = e.srv.URL
	e.cfg = Config{
		Backend:  b,
		Issuer:   e.srv.URL,
		ClientID: "console-test",
		Admins:   []string{"alice"},
		Metadata: oauth.ServerMetadata{Issuer: e.srv.URL, AuthorizationEndpoint: e.srv.URL + "/oauth2/authorize",
			TokenEndpoint: e.srv.URL + "/oauth2/token", UserinfoEndpoint: e.srv.URL + "/oauth2/userinfo",
			RevocationEndpoint: e.srv.URL + "/oauth2/revoke", AuthorizationResponseIssParameterSupported: true},
		HTTPClient: e.srv.Client(),
		Store:      kv,
		Now:        now,
	}
	for range n {
		e.consoles = append(e.consoles, e.start())
	}
	e.console = e.consoles[0]
	return e
}

// start makes a console of e's configuration and runs it until the test
// ends.
func (e *env) start() *Console {
	e.t.Helper()
	c, err := New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return c
}

// use sends the next requests to console i.
func (e *env) use(i int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.at = i
}

// restart replaces console i with a new one of the same configuration,
// as a host that restarts.
func (e *env) restart(i int) {
	e.t.Helper()
	c := e.start()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.consoles[i] = c
	if i == 0 {
		e.console = c
	}
}

// browser is a cookie jar and a client that follows redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// signIn signs the browser in as user and returns the page it lands on.
func (e *env) signIn(user string) *browser {
	e.t.Helper()
	b := e.browser()
	e.as.signInAs(user)
	status, body, _ := b.get(Path)
	if status != http.StatusOK {
		e.t.Fatalf("sign in as %s: status %d\n%s", user, status, body)
	}
	return b
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.e.t.Helper()
	resp, err := b.c.Get(b.e.srv.URL + path)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.e.t.Helper()
	resp, err := b.c.PostForm(b.e.srv.URL+path, form)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the session's forms, read from a page.
func (b *browser) csrf() string {
	b.e.t.Helper()
	_, body, _ := b.get(Path + "tasks")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		b.e.t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return m[1]
}

// testBackend is a backend with two agents, a task of alice's and one of
// bob's, and an approval request for each.
func testBackend() *fakeBackend {
	now := time.Now()
	return &fakeBackend{
		agents: []Agent{
			{Name: "research", SPIFFEID: "spiffe://example.test/agent/research", State: AgentRunning, PID: 42, Since: now,
				SVIDExpires: now.Add(time.Hour), BinarySHA256: strings.Repeat("ab", 32), Attestation: "verified", MeasuredSHA256: strings.Repeat("ab", 32)},
			{Name: "payments", SPIFFEID: "spiffe://example.test/agent/payments", State: AgentRunning, PID: 43, Since: now,
				BinarySHA256: strings.Repeat("cd", 32), Attestation: "verified"},
		},
		tasks: []Task{
			{ID: "task-alice", Txn: "txn-alice", Agent: "research", User: "alice", Input: "what time is it", Started: now,
				State: TaskRunning, Events: []TaskEvent{{Seq: 1, Time: now, Type: "tool_call", Tool: "clock/now", Arguments: "{}"}}},
			{ID: "task-bob", Txn: "txn-bob", Agent: "payments", User: "bob", Input: "balance of bob", Started: now, Ended: now,
				State: TaskCompleted, Result: "bob: 12.50"},
			{ID: "task-nobody", Txn: "txn-nobody", Agent: "research", Input: "for nobody", Started: now, Ended: now, State: TaskCompleted},
		},
		approvals: []Approval{
			{ID: "ap-alice", URL: "http://as.example/approve/ap-alice", User: "alice", BindingMessage: "transfer 500 to bob", Tool: "payments/transfer", Created: now, Expires: now.Add(5 * time.Minute)},
			{ID: "ap-bob", URL: "http://as.example/approve/ap-bob", User: "bob", BindingMessage: "transfer 900 to carol", Tool: "payments/transfer", Created: now, Expires: now.Add(5 * time.Minute)},
		},
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
