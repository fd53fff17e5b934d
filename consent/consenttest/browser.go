// Package consenttest drives the approval pages of package consent the way
// a person's browser would, for tests of whatever asks for approval (the
// mediator, an MCP elicitation): it opens a page, signs in at the
// authorization server when sent there, and approves or denies.
package consenttest

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
)

// Browser keeps cookies and follows redirects, as a browser does. It signs
// in as its user whenever a page shows the sign-in form.
type Browser struct {
	client   *http.Client
	user     string
	password string
}

// NewBrowser returns a browser that signs in as user with password.
func NewBrowser(user, password string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{user: user, password: password, client: &http.Client{Jar: jar,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("consenttest: too many redirects")
			}
			return nil
		}}}
}

// Page is a page the browser ended on.
type Page struct {
	Status int
	URL    *url.URL
	Body   string
	// Action and Fields are the page's first form: its absolute action
	// and its hidden inputs. Action is nil when the page has no form.
	Action *url.URL
	Fields url.Values
	// Decision reports whether the form is an approval form (it has
	// buttons named decision).
	Decision bool
}

// Open fetches pageURL and, when it lands on the sign-in form, signs in,
// which brings it back; it returns the page it ends on.
func (b *Browser) Open(ctx context.Context, pageURL string) (*Page, error) {
	p, err := b.Do(ctx, http.MethodGet, pageURL, nil)
	if err != nil {
		return nil, err
	}
	if p.Action == nil || !p.Fields.Has("return_to") {
		return p, nil
	}
	f := p.Fields
	f.Set("username", b.user)
	f.Set("password", b.password)
	return b.Do(ctx, http.MethodPost, p.Action.String(), f)
}

// Approve opens pageURL, signing in if needed, and approves the request.
// It returns the page that answers the decision.
func (b *Browser) Approve(ctx context.Context, pageURL string) (*Page, error) {
	return b.decide(ctx, pageURL, "approve")
}

// Deny opens pageURL, signing in if needed, and denies the request.
func (b *Browser) Deny(ctx context.Context, pageURL string) (*Page, error) {
	return b.decide(ctx, pageURL, "deny")
}

func (b *Browser) decide(ctx context.Context, pageURL, decision string) (*Page, error) {
	p, err := b.Open(ctx, pageURL)
	if err != nil {
		return nil, err
	}
	if p.Status != http.StatusOK || !p.Decision {
		return p, fmt.Errorf("consenttest: %s is not an approval form (status %d): %.300s", p.URL, p.Status, p.Body)
	}
	return b.Submit(ctx, p, decision)
}

// Submit posts p's form with decision ("approve" or "deny").
func (b *Browser) Submit(ctx context.Context, p *Page, decision string) (*Page, error) {
	f := url.Values{}
	for k, v := range p.Fields {
		f[k] = append([]string(nil), v...)
	}
	f.Set("decision", decision)
	return b.Do(ctx, http.MethodPost, p.Action.String(), f)
}

// Cookies returns the browser's cookies for u (to make requests in its
// session by hand).
func (b *Browser) Cookies(u *url.URL) []*http.Cookie { return b.client.Jar.Cookies(u) }

// Do sends one request with the browser's cookies (a form post when form
// is not nil), follows redirects and parses the page it ends on.
func (b *Browser) Do(ctx context.Context, method, target string, form url.Values) (*Page, error) {
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
	p := &Page{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(raw), Fields: url.Values{}}
	if err := p.parseForm(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseForm fills Action, Fields and Decision from the first form.
func (p *Page) parseForm() error {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return err
	}
	attr := func(n *html.Node, key string) string {
		for _, a := range n.Attr {
			if a.Key == key {
				return a.Val
			}
		}
		return ""
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "form" {
			continue
		}
		if p.Action, err = p.URL.Parse(attr(n, "action")); err != nil {
			return fmt.Errorf("consenttest: form action: %w", err)
		}
		for c := range n.Descendants() {
			switch {
			case c.Type != html.ElementNode:
			case c.Data == "input" && strings.EqualFold(attr(c, "type"), "hidden"):
				p.Fields.Add(attr(c, "name"), attr(c, "value"))
			case c.Data == "button" && attr(c, "name") == "decision":
				p.Decision = true
			}
		}
		return nil
	}
	return nil
}
