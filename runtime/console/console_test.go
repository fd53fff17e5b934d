package console

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
)

// TestSignIn: a browser without a session is sent to the authorization
// server and back; the code is exchanged with the PKCE verifier, the user
// read from userinfo, the access token revoked, and the browser lands
// where it was going, signed in with a session cookie that is HttpOnly
// and SameSite=Lax. An admin starts at the agents, a user at their tasks.
func TestSignIn(t *testing.T) {
	e := newEnv(t, testBackend())
	b := e.browser()
	e.as.signInAs("alice")
	status, body, _ := b.get(Path + "approvals")
	if status != http.StatusOK || !strings.Contains(body, "<h1>Approvals</h1>") || !strings.Contains(body, "Alice Example") {
		t.Fatalf("after signing in: %d\n%s", status, body)
	}
	if e.as.revoked == nil || e.as.revoked[0] != "at-alice" {
		t.Errorf("the sign-in's access token was not revoked: %q", e.as.revoked)
	}
	u, _ := url.Parse(e.srv.URL)
	var found bool
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == CookieName {
			found = true
		}
	}
	if !found {
		t.Errorf("no %s cookie", CookieName)
	}
	// The cookie's attributes, as set on the callback's response.
	noFollow := &http.Client{Jar: b.c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(e.srv.URL + Path + "login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Errorf("login while signed in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	b2 := e.browser()
	b2.c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err = b2.c.Get(e.srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	resp, err = (&http.Client{Jar: b2.c.Jar, CheckRedirect: noFollow.CheckRedirect}).Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var set string
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, CookieName+"=") {
			set = c
		}
	}
	if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") || !strings.Contains(set, "Path=/") {
		t.Errorf("session cookie %q", set)
	}

	for user, want := range map[string]string{"alice": "<h1>Agents</h1>", "bob": "<h1>Tasks</h1>"} {
		_, body, _ := e.signIn(user).get(Path)
		if !strings.Contains(body, want) {
			t.Errorf("%s's home is not %s:\n%s", user, want, body)
		}
	}
}

// TestSignInRefused: a callback with a state the console did not send,
// used twice, from another browser, from another issuer, or whose code
// does not go with the PKCE verifier, signs nobody in.
func TestSignInRefused(t *testing.T) {
	e := newEnv(t, testBackend())
	e.as.signInAs("alice")
	// The redirect to the callback, not followed.
	start := func(b *browser) *url.URL {
		b.c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
			if strings.HasSuffix(r.URL.Path, "/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp, err := b.c.Get(e.srv.URL + Path + "tasks")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("no redirect to the callback: %d", resp.StatusCode)
		}
		b.c.CheckRedirect = nil
		return loc
	}
	signedIn := func(b *browser) bool {
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		defer func() { b.c.CheckRedirect = nil }()
		resp, err := b.c.Get(e.srv.URL + Path + "tasks")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	t.Run("another browser", func(t *testing.T) {
		cb := start(e.browser())
		other := e.browser()
		if status, body, _ := other.get(cb.RequestURI()); status != http.StatusBadRequest || !strings.Contains(body, "another browser") {
			t.Errorf("callback in another browser: %d\n%s", status, body)
		}
		if signedIn(other) {
			t.Error("the other browser is signed in")
		}
	})
	t.Run("used twice", func(t *testing.T) {
		b := e.browser()
		cb := start(b)
		if status, _, _ := b.get(cb.RequestURI()); status != http.StatusOK {
			t.Fatalf("first callback: %d", status)
		}
		b2 := e.browser()
		if status, _, _ := b2.get(cb.RequestURI()); status != http.StatusBadRequest {
			t.Errorf("second callback: %d", status)
		}
	})
	t.Run("unknown state", func(t *testing.T) {
		b := e.browser()
		if status, _, _ := b.get(Path + "callback?code=code-0&state=forged"); status != http.StatusBadRequest || signedIn(b) {
			t.Errorf("forged state: %d", status)
		}
	})
	t.Run("another issuer", func(t *testing.T) {
		evil := "https://evil.example"
		e.as.iss = &evil
		defer func() { e.as.iss = nil }()
		b := e.browser()
		cb := start(b)
		if status, _, _ := b.get(cb.RequestURI()); status != http.StatusBadRequest || signedIn(b) {
			t.Errorf("mix-up: %d", status)
		}
	})
	t.Run("no issuer", func(t *testing.T) {
		none := ""
		e.as.iss = &none
		defer func() { e.as.iss = nil }()
		b := e.browser()
		cb := start(b)
		if status, _, _ := b.get(cb.RequestURI()); status != http.StatusBadRequest || signedIn(b) {
			t.Errorf("no iss from a server that promises it: %d", status)
		}
	})
	t.Run("code of another sign-in", func(t *testing.T) {
		b := e.browser()
		cb := start(b)
		other := start(e.browser())
		q := cb.Query()
		q.Set("code", other.Query().Get("code"))
		if status, _, _ := b.get(Path + "callback?" + q.Encode()); status != http.StatusBadGateway || signedIn(b) {
			t.Errorf("a code with another verifier: %d", status)
		}
	})
	t.Run("declined", func(t *testing.T) {
		b := e.browser()
		cb := start(b)
		q := cb.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		if status, body, _ := b.get(Path + "callback?" + q.Encode()); status != http.StatusForbidden || !strings.Contains(body, "did not allow") {
			t.Errorf("declined: %d\n%s", status, body)
		}
	})
	t.Run("next elsewhere", func(t *testing.T) {
		b := e.browser()
		b.c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
			if r.URL.Host != strings.TrimPrefix(e.srv.URL, "http://") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		for _, next := range []string{"https://evil.example/", "//evil.example/", "/oauth2/token", "/console/\\evil", "/console/../oauth2/token", "/console//evil.example/"} {
			resp, err := b.c.Get(e.srv.URL + Path + "login?next=" + url.QueryEscape(next))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.Request.URL.Host != strings.TrimPrefix(e.srv.URL, "http://") || !strings.HasPrefix(resp.Request.URL.Path, "/console/") {
				t.Errorf("next %q led to %s", next, resp.Request.URL)
			}
		}
	})
}

// TestSecurityHeaders: every response of the console, pages, messages,
// redirects and static files, carries the strict CSP and the other
// security headers; no page holds inline script or style.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, testBackend())
	b := e.signIn("alice")
	inline := regexp.MustCompile(`(?i)<style|\sstyle=|<script>|<script\s+[^>]*>[^<]|\son[a-z]+=|javascript:`)
	for _, p := range []string{"agents", "tasks", "tasks/task-alice", "approvals", "audit", "trust", "no-such-page", "static/console.css", "static/live.js"} {
		status, body, h := b.get(Path + p)
		if status != http.StatusOK && p != "no-such-page" {
			t.Errorf("%s: status %d", p, status)
		}
		if got := h.Get("Content-Security-Policy"); got != "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'" {
			t.Errorf("%s: CSP %q", p, got)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if h.Get(k) != want {
				t.Errorf("%s: %s %q", p, k, h.Get(k))
			}
		}
		if strings.HasPrefix(p, "static/") {
			if !strings.HasPrefix(h.Get("Content-Type"), map[bool]string{true: "text/css", false: "text/javascript"}[strings.HasSuffix(p, ".css")]) {
				t.Errorf("%s: content type %q", p, h.Get("Content-Type"))
			}
			continue
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", p, h.Get("Cache-Control"))
		}
		if m := inline.FindString(body); m != "" {
			t.Errorf("%s: inline code %q", p, m)
		}
	}
	// The live view's script is an external file.
	if _, body, _ := b.get(Path + "tasks/task-alice"); !strings.Contains(body, `<script src="/console/static/live.js" defer></script>`) {
		t.Errorf("the running task's page does not load the live view script")
	}
	// Signed out: the redirect to sign in carries the headers too.
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(e.srv.URL + Path + "agents")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Content-Security-Policy") == "" ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/console/login?next=%2Fconsole%2Fagents") {
		t.Errorf("signed out: %d to %q, CSP %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Security-Policy"))
	}
}

// TestCSRF: a form posted without the session's token, with a token of
// another session, or from a browser that is not signed in, is refused
// with 403 and changes nothing; with the token it is done.
func TestCSRF(t *testing.T) {
	be := testBackend()
	e := newEnv(t, be)
	alice := e.signIn("alice")
	otherAlice := e.signIn("alice")
	tests := []struct {
		name string
		b    *browser
		csrf string
	}{
		{"no token", alice, ""},
		{"malformed token", alice, "not-a-token"},
		{"another session's token", alice, otherAlice.csrf()},
		{"not signed in", e.browser(), alice.csrf()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"reason": {"suspicious"}}
			if tt.csrf != "" {
				form.Set("csrf", tt.csrf)
			}
			for _, p := range []string{"agents/payments/quarantine", "audit/verify", "logout"} {
				status, body := tt.b.post(Path+p, form)
				if status != http.StatusForbidden || !strings.Contains(body, "nothing was changed") {
					t.Errorf("POST %s: %d\n%s", p, status, body)
				}
			}
			if got := be.remedyLog(); len(got) != 0 {
				t.Fatalf("the backend was asked %q", got)
			}
		})
	}
	// Still signed in after the refused sign-outs.
	if status, _, _ := alice.get(Path + "agents"); status != http.StatusOK {
		t.Fatalf("alice after refused forms: %d", status)
	}
	verifies := be.verifies
	if status, _ := alice.post(Path+"agents/payments/quarantine", url.Values{"csrf": {alice.csrf()}, "reason": {"suspicious"}}); status != http.StatusOK {
		t.Fatalf("quarantine with the token: %d", status)
	}
	if got := be.remedyLog(); len(got) != 1 || got[0] != "quarantine payments suspicious (console: alice)" {
		t.Fatalf("remedies %q", got)
	}
	if _, body, _ := alice.get(Path + "agents"); !strings.Contains(body, "/console/agents/payments/release") {
		t.Error("the quarantined agent offers no release")
	}
	if status, _ := alice.post(Path+"agents/payments/release", url.Values{"csrf": {alice.csrf()}, "reason": {"checked"}}); status != http.StatusOK {
		t.Fatalf("release: %d", status)
	}
	if status, _ := alice.post(Path+"agents/payments/release", url.Values{"csrf": {alice.csrf()}, "reason": {"again"}}); status != http.StatusConflict {
		t.Errorf("release of an agent not quarantined: %d", status)
	}
	if status, _ := alice.post(Path+"agents/nosuch/quarantine", url.Values{"csrf": {alice.csrf()}, "reason": {"x"}}); status != http.StatusNotFound {
		t.Errorf("quarantine of an unknown agent: %d", status)
	}
	if status, _ := alice.post(Path+"agents/payments/quarantine", url.Values{"csrf": {alice.csrf()}, "reason": {" "}}); status != http.StatusBadRequest {
		t.Errorf("quarantine without a reason: %d", status)
	}
	if status, _ := alice.post(Path+"audit/verify", url.Values{"csrf": {alice.csrf()}}); status != http.StatusOK || be.verifies != verifies+1 {
		t.Errorf("verify: %d, %d verifications", status, be.verifies-verifies)
	}

	// Signing out ends the session: its cookie is worth nothing after.
	u, _ := url.Parse(e.srv.URL)
	kept := alice.c.Jar.Cookies(u)
	if status, body := alice.post(Path+"logout", url.Values{"csrf": {alice.csrf()}}); status != http.StatusOK || !strings.Contains(body, "signed out") {
		t.Fatalf("sign out: %d\n%s", status, body)
	}
	replay := e.browser()
	replay.c.Jar.SetCookies(u, kept)
	replay.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if status, _, _ := replay.get(Path + "agents"); status != http.StatusSeeOther {
		t.Errorf("the signed-out session's cookie still works: %d", status)
	}
}

// TestNotAdmin: a user who is not an admin gets 403 for the admin pages
// and actions, even with their own valid CSRF token, and sees only their
// own tasks and approval requests; another user's task does not exist
// for them.
func TestNotAdmin(t *testing.T) {
	be := testBackend()
	e := newEnv(t, be)
	bob := e.signIn("bob")
	for _, p := range []string{"agents", "audit", "audit/txn/txn-alice", "trust"} {
		if status, body, _ := bob.get(Path + p); status != http.StatusForbidden || !strings.Contains(body, "Operators only") {
			t.Errorf("bob GET %s: %d", p, status)
		}
	}
	csrf := bob.csrf()
	for _, p := range []string{"agents/payments/quarantine", "agents/payments/release", "audit/verify"} {
		if status, body := bob.post(Path+p, url.Values{"csrf": {csrf}, "reason": {"bob says so"}}); status != http.StatusForbidden || !strings.Contains(body, "nothing was changed") {
			t.Errorf("bob POST %s: %d\n%s", p, status, body)
		}
	}
	if got := be.remedyLog(); len(got) != 0 || be.verifies != 0 {
		t.Fatalf("bob's posts reached the backend: %q, %d verifications", got, be.verifies)
	}
	_, body, _ := bob.get(Path + "tasks")
	if !strings.Contains(body, "task-bob") || strings.Contains(body, "task-alice") || strings.Contains(body, "task-nobody") {
		t.Errorf("bob's tasks:\n%s", body)
	}
	for _, link := range []string{">Agents<", ">Audit<", ">Trust<", "Quarantine"} {
		if strings.Contains(body, link) {
			t.Errorf("bob's page offers %s", link)
		}
	}
	for _, p := range []string{"tasks/task-alice", "tasks/task-alice/events", "tasks/task-nobody"} {
		if status, _, _ := bob.get(Path + p); status != http.StatusNotFound {
			t.Errorf("bob GET %s: %d", p, status)
		}
	}
	_, body, _ = bob.get(Path + "approvals")
	if !strings.Contains(body, "transfer 900 to carol") || strings.Contains(body, "transfer 500 to bob") || !strings.Contains(body, "/approve/ap-bob") {
		t.Errorf("bob's approvals:\n%s", body)
	}
	// The admin sees every task and request, and may open only her own
	// request's page.
	alice := e.signIn("alice")
	_, body, _ = alice.get(Path + "tasks")
	for _, id := range []string{"task-alice", "task-bob", "task-nobody"} {
		if !strings.Contains(body, id) {
			t.Errorf("alice's task list lacks %s", id)
		}
	}
	_, body, _ = alice.get(Path + "approvals")
	if !strings.Contains(body, "/approve/ap-alice") || strings.Contains(body, "/approve/ap-bob") || !strings.Contains(body, "only bob can decide") {
		t.Errorf("alice's approvals:\n%s", body)
	}
	// A revoked user's session ends.
	be.mu.Lock()
	be.revoked = map[string]bool{"bob": true}
	be.mu.Unlock()
	bob.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if status, _, _ := bob.get(Path + "tasks"); status != http.StatusSeeOther {
		t.Errorf("bob after his revocation: %d", status)
	}
}

// TestEscaping: names, inputs, events and audit fields with HTML,
// attribute breakers and invisible characters are shown as text.
func TestEscaping(t *testing.T) {
	const (
		hostile = `<script>alert("x")</script>`
		attr    = `"><img src=x onerror=alert(1)>`
		user    = `<img src=x onerror=alert(1)>`
		bidi    = "pay \u202emoc.live\u202c now"
	)
	be := testBackend()
	be.agents = append(be.agents, Agent{Name: hostile, SPIFFEID: "spiffe://example.test/agent/" + attr, State: AgentRunning, Description: bidi,
		BinarySHA256: attr, LastError: hostile})
	be.tasks = append(be.tasks, Task{ID: "task-evil", Txn: attr, Agent: hostile, User: user, Input: hostile + "\n" + bidi,
		State: TaskFailed, Result: attr, Events: []TaskEvent{{Seq: 1, Type: "thought", Text: hostile, Tool: attr, Arguments: bidi}}})
	be.approvals = append(be.approvals, Approval{ID: attr, URL: "javascript:alert(1)", User: "alice", BindingMessage: hostile, Agent: attr, Tool: bidi})
	be.records = []audit.Entry{{Index: 0, Record: audit.Record{Seq: 0, Agent: hostile, Subject: user, Action: attr, Resource: bidi,
		Decision: audit.DecisionDeny, Reason: hostile, Txn: attr}}}
	be.trace = &audit.TraceNode{Txn: attr, Agent: hostile, Task: "task-evil", Records: be.records}
	e := newEnv(t, be)
	alice := e.signIn("alice")
	pages := []string{"agents", "tasks", "tasks/task-evil", "approvals", "audit", "audit/txn/" + url.PathEscape(attr)}
	for _, p := range pages {
		status, body, _ := alice.get(Path + p)
		if status != http.StatusOK {
			t.Errorf("%s: %d\n%s", p, status, body)
			continue
		}
		for _, raw := range []string{"<script>alert", "<img src=x", "onerror=alert(1)>", "\u202e", "javascript:alert"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s holds %q unescaped", p, raw)
			}
		}
	}
	_, body, _ := alice.get(Path + "agents")
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") || !strings.Contains(body, `pay \u202emoc.live\u202c now`) {
		t.Errorf("the agents page does not show the hostile name as text:\n%s", body)
	}
	_, body, _ = alice.get(Path + "audit/txn/" + url.PathEscape(attr))
	if !strings.Contains(body, "<svg") || !strings.Contains(body, "&lt;script&gt;alert(") {
		t.Errorf("the graph does not show the hostile agent as text:\n%s", body)
	}
	// A user whose name is markup signs in and sees it as text.
	e.as.signInAs(user)
	b := e.browser()
	_, body, _ = b.get(Path + "tasks")
	if strings.Contains(body, user) || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("the hostile user's page:\n%s", body)
	}
}

// TestTaskEvents: the stream of a running task sends the events after the
// one the page showed, each as it happens, then the task's end.
func TestTaskEvents(t *testing.T) {
	be := testBackend()
	e := newEnv(t, be)
	alice := e.signIn("alice")
	_, page, _ := alice.get(Path + "tasks/task-alice")
	if !strings.Contains(page, `data-stream="/console/tasks/task-alice/events?after=1"`) || !strings.Contains(page, `id="event-1"`) {
		t.Fatalf("the running task's page:\n%s", page)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+Path+"tasks/task-alice/events?after=1", nil)
	resp, err := alice.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		be.update("task-alice", func(t *Task) {
			t.Events = append(t.Events, TaskEvent{Seq: 2, Type: "final", Text: "The clock/now tool returned: <b>noon</b>\u202e"})
		})
		time.Sleep(100 * time.Millisecond)
		be.update("task-alice", func(t *Task) { t.State, t.Result, t.Ended = TaskCompleted, "noon", time.Now() })
	}()
	var got []string
	var ended time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "event: ") || strings.HasPrefix(l, "data: ") || strings.HasPrefix(l, "id: ") {
			got = append(got, l)
		}
	}
	be.mu.Lock()
	ended = be.tasks[0].Ended
	be.mu.Unlock()
	want := []string{
		"id: 2", "event: task-event", `data: {"seq":2,"time":"0001-01-01T00:00:00Z","type":"final","text":"The clock/now tool returned: \u003cb\u003enoon\u003c/b\u003e\\u202e"}`,
		"event: state", `data: {"state":"completed","result":"noon","ended":"` + when(ended) + `"}`,
		"event: end", "data: {}",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stream:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// An ended task's page follows nothing.
	if _, page, _ := alice.get(Path + "tasks/task-alice"); strings.Contains(page, "data-stream") || !strings.Contains(page, "noon") {
		t.Errorf("the ended task's page:\n%s", page)
	}
}
