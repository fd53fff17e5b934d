package userauth

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed templates/style.css
var stylesheet string

// Stylesheet returns the stylesheet of the server's pages, for other pages
// served on its origin (the approval pages of package consent) to look
// the same: a template of theirs writes it in its <style> element and
// adds its own rules after it.
func Stylesheet() template.CSS { return template.CSS(stylesheet) }

var (
	loginTemplate   = parsePage("templates/login.html")
	consentTemplate = parsePage("templates/consent.html")
	errorTemplate   = parsePage("templates/error.html")
)

// parsePage parses the layout with one page's content. The templates are
// embedded, so a parse error is a defect caught by every test run.
func parsePage(file string) *template.Template {
	return template.Must(template.New("layout").Funcs(template.FuncMap{"stylesheet": Stylesheet}).
		ParseFS(templateFiles, "templates/layout.html", file))
}

// Headers every page carries.
const (
	contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
	cspFormAction         = "form-action 'self'"
)

// LoginPage is the content of the login page.
type LoginPage struct {
	// Action is the URL the form posts to.
	Action string
	// CSRF is the token from [Sessions.CSRFToken], posted as "csrf".
	CSRF string
	// Username fills in the user name field, after a failed attempt.
	Username string
	// Error is shown above the form, after a failed attempt.
	Error string
	// ClientName names the application that asked the user to sign in.
	ClientName string
	// Hidden holds extra hidden inputs, rendered in sorted key order. The
	// names csrf, username and password are reserved.
	Hidden map[string]string
}

// ConsentPage is the content of the consent page.
type ConsentPage struct {
	// Action is the URL the form posts to.
	Action string
	// CSRF is the token from [Sessions.SessionCSRFToken] for the session
	// the page is shown in, posted as "csrf".
	CSRF string
	// User is the name of the signed-in user.
	User string
	// ClientID and ClientName identify the client; the name may be empty.
	ClientID   string
	ClientName string
	// ClientURI is the client's home page, shown as a link when it is an
	// http or https URL.
	ClientURI string
	// Scopes, Resources and AuthorizationDetails are what the client asks
	// for; each is listed in full, one entry per line.
	Scopes               []string
	Resources            []string
	AuthorizationDetails []string
	// RedirectURI is where the decision is sent. Some browsers apply the
	// page's form-action policy to the redirect that follows the form
	// post, so the origin of this URI (or its scheme, for a private-use
	// scheme) is added to form-action. Empty leaves form-action 'self'.
	RedirectURI string
	// Hidden holds extra hidden inputs, rendered in sorted key order. The
	// names csrf and decision are reserved.
	Hidden map[string]string
}

type hiddenField struct{ Name, Value string }

// pageData is what the templates see.
type pageData struct {
	Title       string
	Page        any
	Hidden      []hiddenField
	ClientLabel string
	ClientLink  string
	// ReturnTo is where the browser goes after the decision: the redirect
	// URI's host, or its scheme for an app, shown so a user can spot a
	// client that names a look-alike destination (SPECS.md §3.3).
	ReturnTo string
	Message  string
}

// RenderLogin writes the login page with status. Its form posts
// username, password and csrf, plus p.Hidden, to p.Action.
func RenderLogin(w http.ResponseWriter, status int, p LoginPage) error {
	hidden, err := hiddenFields(p.Hidden, "csrf", "username", "password")
	if err != nil {
		return err
	}
	return render(w, status, loginTemplate, contentSecurityPolicy, pageData{Title: "Sign in", Page: p, Hidden: hidden})
}

// RenderConsent writes the consent page with status. It names the client
// and lists every scope, resource and authorization detail; its form posts
// csrf and p.Hidden to p.Action, with decision=allow or decision=deny from
// the button pressed.
func RenderConsent(w http.ResponseWriter, status int, p ConsentPage) error {
	hidden, err := hiddenFields(p.Hidden, "csrf", "decision")
	if err != nil {
		return err
	}
	label := p.ClientName
	if label == "" {
		label = p.ClientID
	}
	csp := contentSecurityPolicy
	if src := formActionSource(p.RedirectURI); src != "" {
		csp = strings.Replace(csp, cspFormAction, cspFormAction+" "+src, 1)
	}
	return render(w, status, consentTemplate, csp, pageData{
		Title:       "Allow access",
		Page:        p,
		Hidden:      hidden,
		ClientLabel: label,
		ClientLink:  webLink(p.ClientURI),
		ReturnTo:    returnTo(p.RedirectURI),
	})
}

// RenderError writes an error page with status, for failures that must
// not redirect back to the client (an unknown client, a bad redirect_uri).
func RenderError(w http.ResponseWriter, status int, title, message string) error {
	return render(w, status, errorTemplate, contentSecurityPolicy, pageData{Title: title, Message: message})
}

// render executes t into a buffer, so a failure writes nothing, then sends
// the page with its headers.
func render(w http.ResponseWriter, status int, t *template.Template, csp string, data pageData) error {
	if status < 200 || status > 599 {
		return fmt.Errorf("userauth: render page: status %d is not 200 to 599", status)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("userauth: render page: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("userauth: write page: %w", err)
	}
	return nil
}

// hiddenFields sorts m by name and refuses empty or reserved names.
func hiddenFields(m map[string]string, reserved ...string) ([]hiddenField, error) {
	out := make([]hiddenField, 0, len(m))
	for name, value := range m {
		if name == "" || slices.Contains(reserved, name) {
			return nil, fmt.Errorf("userauth: render page: hidden field name %q is empty or reserved", name)
		}
		out = append(out, hiddenField{Name: name, Value: value})
	}
	slices.SortFunc(out, func(a, b hiddenField) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// webLink returns uri if it is an absolute http or https URL.
func webLink(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return uri
}

// formActionSource returns the CSP source expression that admits
// redirects to uri: its origin for http and https, its scheme for a
// private-use scheme (RFC 8252 §7.1). It returns "" for anything it cannot
// express safely.
func formActionSource(uri string) string {
	if uri == "" {
		return ""
	}
	u, err := url.Parse(uri)
	if err != nil || !validScheme(u.Scheme) {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "http", "https":
		if u.Host == "" || !validHost(u.Host) {
			return ""
		}
		return scheme + "://" + strings.ToLower(u.Host)
	case "javascript", "data", "blob", "filesystem", "about", "file":
		return ""
	}
	return scheme + ":"
}

func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// validHost admits host names, IPv4 and bracketed IPv6 literals and a
// port: nothing that could end a CSP source expression.
func validHost(s string) bool {
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// returnTo is the part of a redirect URI a user can judge: the host of a
// web URI, or the scheme of an app's private-use URI.
func returnTo(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return ""
	}
	if u.Host != "" {
		return u.Host
	}
	return u.Scheme + ":"
}
