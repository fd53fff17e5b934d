package host

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/astest"
	"github.com/agenthost/agenthost/runtime/console"
)

// TestConsoleTwoHosts: the console of two hosts on one database is one
// console, as behind a load balancer without sticky sessions. A sign-in
// started at host 1 completes at host 2's callback (and its state,
// replayed at host 1, is refused); the session works at both; signing out
// at host 1 ends it at host 2, for a copy of the cookie too.
func TestConsoleTwoHosts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h1, h2 := twoHosts(t, ctx)

	// One browser: its cookies go to both hosts (cookies ignore ports).
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	at := func(h *Host, target string) string {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		u.Scheme, u.Host = "http", h.Addr()
		return u.String()
	}
	get := func(h *Host, target string) (int, string, string) {
		t.Helper()
		resp, err := c.Get(at(h, target))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(body)
	}

	// Host 1 sends the browser to sign in, and to the authorization
	// server.
	status, loc, _ := get(h1, console.Path+"tasks")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, console.Path+"login") {
		t.Fatalf("tasks, signed out, at host 1: %d to %q", status, loc)
	}
	status, authURL, _ := get(h1, loc)
	if status != http.StatusSeeOther || !strings.Contains(authURL, "/oauth2/authorize") {
		t.Fatalf("login at host 1: %d to %q", status, authURL)
	}
	back, err := astest.NewBrowser(console.RedirectURI(h1.Issuer()), "alice", "alice-pw", "allow").Authorize(ctx, authURL)
	if err != nil {
		t.Fatal(err)
	}
	// The authorization server's answer comes back to host 2.
	if status, loc, body := get(h2, back.String()); status != http.StatusSeeOther || loc != console.Path+"tasks" {
		t.Fatalf("callback at host 2: %d to %q\n%s", status, loc, body)
	}
	if status, _, body := get(h1, back.String()); status != http.StatusBadRequest || !strings.Contains(body, "not one the console is waiting for") {
		t.Errorf("the state replayed at host 1: %d\n%s", status, body)
	}
	var page string
	for i, h := range []*Host{h1, h2} {
		status, loc, body := get(h, console.Path+"tasks")
		if status != http.StatusOK || !strings.Contains(body, "<h1>Tasks</h1>") {
			t.Fatalf("tasks at host %d: %d to %q", i+1, status, loc)
		}
		page = body
	}
	issuer, _ := url.Parse(h1.Issuer())
	cookies := jar.Cookies(issuer)

	// Sign out at host 1.
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the tasks page")
	}
	resp, err := c.PostForm(at(h1, console.Path+"logout"), url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout at host 1: %d", resp.StatusCode)
	}
	// The cookie as it was before, at host 2.
	jar.SetCookies(issuer, cookies)
	if status, loc, _ := get(h2, console.Path+"tasks"); status != http.StatusSeeOther || !strings.HasPrefix(loc, console.Path+"login") {
		t.Errorf("the signed-out session's cookie at host 2: %d to %q", status, loc)
	}
}
