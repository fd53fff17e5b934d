package authserver

import (
	"net/http"
	"net/url"
	"testing"
)

// csrfCookieName is the CSRF cookie's name on the test issuer (http, so
// without the "__Host-" prefix).
const csrfCookieName = "agenthost_session_csrf"

// cookieOf returns the value of b's cookie name for the issuer.
func (e *codeEnv) cookieOf(b *browser, name string) string {
	e.t.Helper()
	u, _ := url.Parse(e.issuer)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	e.t.Fatalf("browser has no cookie %q", name)
	return ""
}

// plant sets cookie name=value in b for the issuer, replacing b's own, as
// a sibling host able to set cookies for the domain could.
func (e *codeEnv) plant(b *browser, name, value string) {
	u, _ := url.Parse(e.issuer)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// TestConsentCSRFIsBoundToTheSession: the consent form's CSRF token is
// good only in the sign-in session it was shown to. A token taken from
// another session (of another user or of the same user), or a cookie and
// token pair minted where there was no session, is refused even with its
// CSRF cookie planted in the victim's browser; the refused post leaves
// the request for the real user to answer.
func TestConsentCSRFIsBoundToTheSession(t *testing.T) {
	// donor returns a CSRF token and the CSRF cookie of the browser it
	// came from.
	type donor func(e *codeEnv) (token, cookie string)
	fromConsent := func(user, password string) donor {
		return func(e *codeEnv) (string, string) {
			b := newBrowser(e.t)
			_, fields := e.signIn(b, e.authParams(newVerifier(e.t)), user, password).form(e.t)
			return fields.Get("csrf"), e.cookieOf(b, csrfCookieName)
		}
	}
	fromLoginPage := func(e *codeEnv) (string, string) {
		b := newBrowser(e.t)
		_, fields := b.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(e.t))), nil).form(e.t)
		return fields.Get("csrf"), e.cookieOf(b, csrfCookieName)
	}
	tests := []struct {
		name  string
		donor donor
		// plant puts the donor's CSRF cookie in the victim's browser.
		plant bool
		// noSession drops the victim's session cookie.
		noSession bool
		want      int
	}{
		{name: "own token", want: http.StatusSeeOther},
		{name: "another user's session, cookie planted", donor: fromConsent("bob", bobPassword), plant: true, want: http.StatusForbidden},
		{name: "another session of the same user, cookie planted", donor: fromConsent("alice", alicePassword), plant: true, want: http.StatusForbidden},
		{name: "another session's token alone", donor: fromConsent("alice", alicePassword), want: http.StatusForbidden},
		{name: "pair minted without a session, cookie planted", donor: fromLoginPage, plant: true, want: http.StatusForbidden},
		{name: "pair minted without a session, no session", donor: fromLoginPage, plant: true, noSession: true, want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCodeEnv(t)
			victim := newBrowser(t)
			consent := e.signIn(victim, e.authParams(newVerifier(t)), "alice", alicePassword)
			action, fields := consent.form(t)
			u, _ := url.Parse(e.issuer)
			own := victim.client.Jar.Cookies(u)
			if tt.donor != nil {
				token, cookie := tt.donor(e)
				fields.Set("csrf", token)
				if tt.plant {
					e.plant(victim, csrfCookieName, cookie)
				}
			}
			if tt.noSession {
				victim.client.Jar.SetCookies(u, []*http.Cookie{{Name: e.srv.sessions.CookieName(), Path: "/", MaxAge: -1}})
			}
			fields.Set("decision", "allow")
			r := victim.do(http.MethodPost, action, fields)
			if r.status != tt.want {
				t.Fatalf("consent post: status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if tt.want == http.StatusSeeOther {
				if r.redirect(t, e.callback).Get("code") == "" {
					t.Fatal("no code")
				}
				return
			}
			// The refused post consumed nothing: alice can still answer
			// from her own page, with her own cookies.
			for _, c := range own {
				c.Path = "/"
			}
			victim.client.Jar.SetCookies(u, own)
			if r := e.decide(victim, consent, "allow"); r.status != http.StatusSeeOther || r.redirect(t, e.callback).Get("code") == "" {
				t.Fatalf("alice's own answer after the refused post: %d %s", r.status, r.body)
			}
		})
	}
}
