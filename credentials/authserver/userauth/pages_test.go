package userauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

const wantCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"

func checkPageHeaders(t *testing.T, rec *httptest.ResponseRecorder, status int, csp string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d", rec.Code, status)
	}
	want := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": csp,
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	body := rec.Body.String()
	for _, bad := range []string{"<script", "src=", "<link", "@import", "url("} {
		if strings.Contains(strings.ToLower(body), bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

func hiddenNames(body string) []string {
	var names []string
	for _, m := range hiddenInput.FindAllStringSubmatch(body, -1) {
		names = append(names, m[1])
	}
	return names
}

func TestRenderLogin(t *testing.T) {
	rec := httptest.NewRecorder()
	err := RenderLogin(rec, http.StatusUnauthorized, LoginPage{
		Action:     "/oauth/login",
		CSRF:       "csrf-token-value",
		Username:   `bob"><script>alert(1)</script>`,
		Error:      "The user name or password is incorrect.",
		ClientName: "<script>alert('client')</script>",
		Hidden:     map[string]string{"request": "req-id", "b": `"quoted"`, "a": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkPageHeaders(t, rec, http.StatusUnauthorized, wantCSP)
	body := rec.Body.String()
	for _, want := range []string{
		`<form method="post" action="/oauth/login">`,
		`name="username" value="bob&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`,
		`name="password"`,
		`type="password"`,
		`&lt;script&gt;alert(&#39;client&#39;)&lt;/script&gt;`,
		`The user name or password is incorrect.`,
		`<input type="hidden" name="csrf" value="csrf-token-value">`,
		`<input type="hidden" name="b" value="&#34;quoted&#34;">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s\n%s", want, body)
		}
	}
	if got, want := strings.Join(hiddenNames(body), ","), "csrf,a,b,request"; got != want {
		t.Errorf("hidden inputs %s, want %s", got, want)
	}
}

func TestRenderConsent(t *testing.T) {
	p := ConsentPage{
		Action:               "/oauth/consent",
		CSRF:                 "tok",
		User:                 "alice",
		ClientID:             "https://client.example/meta.json",
		ClientName:           "<script>evil()</script>",
		ClientURI:            "https://client.example/",
		Scopes:               []string{"openid", "notes:read", "<b>x</b>"},
		Resources:            []string{"https://notes.example/mcp", "https://mail.example/"},
		AuthorizationDetails: []string{`payment: amount={"value":"10"}`, "account_access: actions=[\"read\"]"},
		Hidden:               map[string]string{"request": "rid"},
	}
	rec := httptest.NewRecorder()
	if err := RenderConsent(rec, http.StatusOK, p); err != nil {
		t.Fatal(err)
	}
	checkPageHeaders(t, rec, http.StatusOK, wantCSP)
	body := rec.Body.String()
	for _, want := range []string{
		`&lt;script&gt;evil()&lt;/script&gt;`,
		`https://client.example/meta.json`,
		`href="https://client.example/"`,
		`alice`,
		`openid`, `notes:read`, `&lt;b&gt;x&lt;/b&gt;`,
		`https://notes.example/mcp`, `https://mail.example/`,
		`payment: amount={&#34;value&#34;:&#34;10&#34;}`,
		`account_access: actions=[&#34;read&#34;]`,
		`<button type="submit" name="decision" value="allow">`,
		`<button type="submit" name="decision" value="deny"`,
		`<form method="post" action="/oauth/consent">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>x") {
		t.Error("page contains unescaped markup")
	}
	if got, want := strings.Join(hiddenNames(body), ","), "csrf,request"; got != want {
		t.Errorf("hidden inputs %s, want %s", got, want)
	}
}

func TestRenderConsentNoName(t *testing.T) {
	rec := httptest.NewRecorder()
	err := RenderConsent(rec, http.StatusOK, ConsentPage{ClientID: "cli-123", ClientURI: "javascript:alert(1)"})
	if err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "<strong>cli-123</strong>") {
		t.Error("client ID not used as the label when the name is empty")
	}
	if strings.Contains(body, "javascript:") || strings.Contains(body, "<a ") {
		t.Error("a javascript: client URI was rendered")
	}
	if !strings.Contains(body, "no named permissions") {
		t.Error("empty scope list not stated")
	}
}

func TestRenderConsentFormAction(t *testing.T) {
	tests := []struct {
		redirect string
		want     string
	}{
		{"", wantCSP},
		{"https://Client.Example:8443/cb?x=1#f", strings.Replace(wantCSP, "'self'", "'self' https://client.example:8443", 1)},
		{"http://127.0.0.1:49152/callback", strings.Replace(wantCSP, "'self'", "'self' http://127.0.0.1:49152", 1)},
		{"http://[::1]:8080/cb", strings.Replace(wantCSP, "'self'", "'self' http://[::1]:8080", 1)},
		{"com.example.app:/oauth2redirect", strings.Replace(wantCSP, "'self'", "'self' com.example.app:", 1)},
		{"javascript:alert(1)", wantCSP},
		{"data:text/html,x", wantCSP},
		{"https://", wantCSP},
		{"https://a.example;script-src *", wantCSP},
		{"not a url", wantCSP},
		{"/relative", wantCSP},
		{"1bad:/x", wantCSP},
	}
	for _, tt := range tests {
		t.Run(tt.redirect, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := RenderConsent(rec, http.StatusOK, ConsentPage{ClientID: "c", RedirectURI: tt.redirect}); err != nil {
				t.Fatal(err)
			}
			if got := rec.Header().Get("Content-Security-Policy"); got != tt.want {
				t.Errorf("CSP %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRenderError(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := RenderError(rec, http.StatusBadRequest, "Unknown <client>", `redirect_uri "<x>" is not registered`); err != nil {
		t.Fatal(err)
	}
	checkPageHeaders(t, rec, http.StatusBadRequest, wantCSP)
	body := rec.Body.String()
	for _, want := range []string{"<h1>Unknown &lt;client&gt;</h1>", "redirect_uri &#34;&lt;x&gt;&#34; is not registered", "<title>Unknown &lt;client&gt; · agenthost</title>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s\n%s", want, body)
		}
	}
	if strings.Contains(body, "<form") {
		t.Error("error page has a form")
	}
}

func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name   string
		render func(http.ResponseWriter) error
	}{
		{"login status 0", func(w http.ResponseWriter) error { return RenderLogin(w, 0, LoginPage{}) }},
		{"login status 1000", func(w http.ResponseWriter) error { return RenderLogin(w, 1000, LoginPage{}) }},
		{"error status 600", func(w http.ResponseWriter) error { return RenderError(w, 600, "t", "m") }},
		{"error status -1", func(w http.ResponseWriter) error { return RenderError(w, -1, "t", "m") }},
		{"consent status 100", func(w http.ResponseWriter) error { return RenderConsent(w, 100, ConsentPage{}) }},
		{"login hidden csrf", func(w http.ResponseWriter) error {
			return RenderLogin(w, 200, LoginPage{Hidden: map[string]string{"csrf": "x"}})
		}},
		{"login hidden password", func(w http.ResponseWriter) error {
			return RenderLogin(w, 200, LoginPage{Hidden: map[string]string{"password": "x"}})
		}},
		{"login hidden empty name", func(w http.ResponseWriter) error {
			return RenderLogin(w, 200, LoginPage{Hidden: map[string]string{"": "x"}})
		}},
		{"consent hidden decision", func(w http.ResponseWriter) error {
			return RenderConsent(w, 200, ConsentPage{Hidden: map[string]string{"decision": "allow"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := tt.render(rec)
			if err == nil || !strings.HasPrefix(err.Error(), "userauth: ") {
				t.Fatalf("err = %v, want a userauth error", err)
			}
			if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
				t.Errorf("a refused page wrote %d bytes and headers %v", rec.Body.Len(), rec.Header())
			}
		})
	}
}

type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestRenderWriteError(t *testing.T) {
	err := RenderError(failingWriter{httptest.NewRecorder()}, http.StatusNotFound, "t", "m")
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("err = %v, want the write error", err)
	}
}

func TestConsentShowsWhereTheBrowserReturns(t *testing.T) {
	for uri, want := range map[string]string{
		"https://app.example:8443/cb": "app.example:8443",
		"http://127.0.0.1:9876/cb":    "127.0.0.1:9876",
		"com.example.app:/cb":         "com.example.app:",
	} {
		w := httptest.NewRecorder()
		if err := RenderConsent(w, 200, ConsentPage{Action: "/c", CSRF: "t", ClientID: "c", RedirectURI: uri}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(w.Body.String(), "go back to <strong>"+want+"</strong>") {
			t.Errorf("%s: page does not show %q", uri, want)
		}
	}
}
