package astest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"

	"github.com/agenthost/agenthost/credentials/authserver"
)

// Browser plays the user agent: it keeps cookies, follows
// redirects within the authorization server and stops at the redirect to
// the client's redirect URI.
type Browser struct {
	client      *http.Client
	redirectURI string
	user        string
	password    string
	decision    string
}

// NewBrowser returns a browser that signs in as user with password and
// answers the consent page with decision ("allow" or "deny").
func NewBrowser(redirectURI, user, password, decision string) *Browser {
	jar, _ := cookiejar.New(nil)
	b := &Browser{redirectURI: redirectURI, user: user, password: password, decision: decision}
	b.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if sameEndpoint(req.URL, b.redirectURI) {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	return b
}

// sameEndpoint reports whether u, without its query, is target.
func sameEndpoint(u *url.URL, target string) bool {
	t, err := url.Parse(target)
	return err == nil && u.Scheme == t.Scheme && u.Host == t.Host && u.Path == t.Path
}

// Page is a response the browser got.
type Page struct {
	Status   int
	Location *url.URL
	Body     string
	URL      *url.URL
}

// Get fetches target with the browser's cookies.
func (b *Browser) Get(ctx context.Context, target string) (*Page, error) {
	return b.do(ctx, http.MethodGet, target, nil)
}

func (b *Browser) do(ctx context.Context, method, target string, form url.Values) (*Page, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	p := &Page{Status: resp.StatusCode, Body: string(raw), URL: resp.Request.URL}
	if loc := resp.Header.Get("Location"); loc != "" {
		if p.Location, err = resp.Request.URL.Parse(loc); err != nil {
			return nil, fmt.Errorf("bad Location %q: %w", loc, err)
		}
	}
	return p, nil
}

// Authorize opens authURL, signs in, answers the consent page with the
// browser's decision and returns the redirect to the client, whose query
// holds the authorization response.
func (b *Browser) Authorize(ctx context.Context, authURL string) (*url.URL, error) {
	p, err := b.do(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	for range 4 {
		if p.Location != nil && sameEndpoint(p.Location, b.redirectURI) {
			return p.Location, nil
		}
		if p.Status != http.StatusOK {
			return nil, fmt.Errorf("%s: status %d: %.300s", p.URL, p.Status, p.Body)
		}
		action, fields, err := parseForm(p)
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasSuffix(action.Path, authserver.PathLogin):
			fields.Set("username", b.user)
			fields.Set("password", b.password)
		case strings.HasSuffix(action.Path, authserver.PathConsent):
			fields.Set("decision", b.decision)
		default:
			return nil, fmt.Errorf("unexpected form posting to %s", action)
		}
		if p, err = b.do(ctx, http.MethodPost, action.String(), fields); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("no redirect to the client after sign-in and consent")
}

// parseForm returns the absolute action and the hidden inputs of the
// page's first form.
func parseForm(p *Page) (*url.URL, url.Values, error) {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return nil, nil, err
	}
	var form *html.Node
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "form" {
			form = n
			break
		}
	}
	if form == nil {
		return nil, nil, fmt.Errorf("%s: page has no form: %.300s", p.URL, p.Body)
	}
	attr := func(n *html.Node, key string) string {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val
			}
		}
		return ""
	}
	if m := attr(form, "method"); !strings.EqualFold(m, http.MethodPost) {
		return nil, nil, fmt.Errorf("form method is %q, want post", m)
	}
	action, err := p.URL.Parse(attr(form, "action"))
	if err != nil {
		return nil, nil, fmt.Errorf("form action: %w", err)
	}
	fields := url.Values{}
	for n := range form.Descendants() {
		if n.Type == html.ElementNode && n.Data == "input" && strings.EqualFold(attr(n, "type"), "hidden") {
			fields.Add(attr(n, "name"), attr(n, "value"))
		}
	}
	return action, fields, nil
}
