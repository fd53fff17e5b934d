package mcpclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// maxDrain caps what is read from a refused response before it is
// closed.
const maxDrain = 64 << 10

// challengeInfo is what the client uses from a 401 or 403 response's
// WWW-Authenticate challenges (Bearer and DPoP schemes only).
type challengeInfo struct {
	// ResourceMetadata is the resource_metadata parameter (RFC 9728 §5.1).
	ResourceMetadata string
	// Scope is the scope parameter, parsed.
	Scope []string
	// Code and Description are the error parameters.
	Code        string
	Description string
	// DPoP reports a DPoP challenge (RFC 9449 §7.1): the server takes
	// DPoP-bound tokens; DPoPAlgs are its algs parameter, parsed.
	DPoP     bool
	DPoPAlgs []string
}

// parseChallengeInfo reads the WWW-Authenticate header values. The first
// non-empty value of each parameter among the Bearer and DPoP challenges
// wins. A malformed header or scope is an error.
func parseChallengeInfo(headers []string) (challengeInfo, error) {
	var info challengeInfo
	chs, err := oauth.ParseChallenges(headers)
	if err != nil {
		return info, err
	}
	scope := ""
	for _, ch := range chs {
		if !strings.EqualFold(ch.Scheme, "Bearer") && !strings.EqualFold(ch.Scheme, "DPoP") {
			continue
		}
		if strings.EqualFold(ch.Scheme, "DPoP") && !info.DPoP {
			info.DPoP = true
			info.DPoPAlgs = strings.Fields(ch.Param("algs"))
		}
		if info.ResourceMetadata == "" {
			info.ResourceMetadata = ch.Param("resource_metadata")
		}
		if scope == "" {
			scope = ch.Param("scope")
		}
		if info.Code == "" {
			info.Code = ch.Param("error")
			info.Description = ch.Param("error_description")
		}
	}
	if info.Scope, err = oauth.ParseScope(scope); err != nil {
		return challengeInfo{}, fmt.Errorf("scope: %w", err)
	}
	return info, nil
}

// authTransport is the RoundTripper of one subject's MCP session: it
// adds the access token to requests for the endpoint and runs the 401 /
// 403 flows.
type authTransport struct {
	c    *Client
	base http.RoundTripper

	mu sync.Mutex
	// subject is whom the session's calls are made for (its Source is
	// replaced by each call's; see Client.session).
	subject Subject
	// extra are the scopes a step-up added for this subject.
	extra []string
}

// setSubject replaces the session's subject with sub, of the same key.
func (t *authTransport) setSubject(sub Subject) {
	t.mu.Lock()
	t.subject = sub
	t.mu.Unlock()
}

// sameEndpoint reports whether u addresses the configured endpoint
// (scheme, host and path; the query may differ).
func (c *Client) sameEndpoint(u *url.URL) bool {
	e := c.endpoint
	return strings.EqualFold(u.Scheme, e.Scheme) && strings.EqualFold(u.Host, e.Host) &&
		u.EscapedPath() == e.EscapedPath()
}

// RoundTrip implements http.RoundTripper.
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("mcpclient: request body: %w", err)
		}
		body = b
	}
	if !t.c.sameEndpoint(req.URL) {
		return nil, fmt.Errorf("%w: %s", ErrEndpoint, req.URL.Redacted())
	}
	tok, treq, err := t.token(ctx, nil)
	if err != nil {
		return nil, err
	}
	discovered, refreshed, steppedUp, nonceRetried := false, false, false, false
	for {
		resp, err := t.send(req, body, tok)
		if err != nil {
			return nil, err
		}
		// RFC 9449 §8: the server may send a new nonce with any
		// response; the next proof to its origin carries it.
		if n := resp.Header.Get("DPoP-Nonce"); n != "" {
			t.c.nonces.Remember(req.URL.String(), n)
		}
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			return resp, nil
		}
		info, perr := parseChallengeInfo(resp.Header.Values("WWW-Authenticate"))
		if resp.StatusCode == http.StatusForbidden && (perr != nil || info.Code != oauth.CodeInsufficientScope) {
			// A 403 that is not a step-up challenge is the server's answer.
			return resp, nil
		}
		drain(resp)
		if perr != nil {
			return nil, fmt.Errorf("%w: %d with a malformed WWW-Authenticate: %w", ErrUnauthorized, resp.StatusCode, perr)
		}

		switch {
		case resp.StatusCode == http.StatusForbidden:
			// MCP step-up (SPECS.md §3.2 item 10): once, with the union of
			// the scopes asked for and the challenged ones.
			if tok == nil || steppedUp || len(info.Scope) == 0 {
				return nil, fmt.Errorf("%w: the server requires scope %q%s", ErrInsufficientScope,
					oauth.FormatScope(info.Scope), describe(info))
			}
			steppedUp = true
			wanted := union(treq.Scopes, info.Scope)
			t.c.log.DebugContext(ctx, "mcpclient: step-up", "resource", t.c.cfg.URL, "scope", oauth.FormatScope(wanted))
			tok, treq, err = t.token(ctx, wanted)
			if err != nil {
				return nil, fmt.Errorf("%w: step-up to scope %q: %w", ErrInsufficientScope, oauth.FormatScope(wanted), err)
			}
			t.mu.Lock()
			t.extra = union(t.extra, info.Scope)
			t.mu.Unlock()

		case tok == nil:
			// No token sent: discover, then acquire (SPECS.md §3.2 items 1-3).
			if discovered {
				return nil, fmt.Errorf("%w: 401 after discovery%s", ErrUnauthorized, describe(info))
			}
			discovered = true
			if err := t.c.discoverOnce(ctx, info); err != nil {
				return nil, err
			}
			if tok, treq, err = t.token(ctx, nil); err != nil {
				return nil, err
			}
			if tok == nil {
				return nil, fmt.Errorf("%w: no authorization server after discovery", ErrDiscovery)
			}

		case info.Code == oauth.CodeUseDPoPNonce && isDPoP(tok) && !nonceRetried && resp.Header.Get("DPoP-Nonce") != "":
			// RFC 9449 §9: retry once with the server's nonce.
			nonceRetried = true

		default:
			// The token was refused: forget it and acquire one once more.
			if refreshed {
				return nil, fmt.Errorf("%w: a fresh token was refused%s", ErrUnauthorized, describe(info))
			}
			refreshed = true
			t.c.log.DebugContext(ctx, "mcpclient: token refused, acquiring another", "resource", t.c.cfg.URL, "error", info.Code)
			t.c.cfg.Tokens.Forget(treq)
			if tok, treq, err = t.token(ctx, treq.Scopes); err != nil {
				return nil, err
			}
		}
	}
}

// token returns the subject's token for scopes (nil: the discovered
// scopes plus the subject's step-ups), or nil when nothing is discovered
// yet.
func (t *authTransport) token(ctx context.Context, scopes []string) (*oauth.Token, oauth.TokenRequest, error) {
	t.c.mu.Lock()
	server, base, rd := t.c.server, t.c.scopes, t.c.resourceDPoP
	t.c.mu.Unlock()
	if server == nil {
		return nil, oauth.TokenRequest{}, nil
	}
	if scopes == nil {
		t.mu.Lock()
		scopes = union(base, t.extra)
		t.mu.Unlock()
	}
	t.mu.Lock()
	sub := t.subject
	t.mu.Unlock()
	treq := oauth.TokenRequest{Server: server, Resource: t.c.cfg.URL, Scopes: scopes, SubjectToken: sub.Token,
		SubjectTokenSource: sub.Source, SubjectKey: sub.Key, Subject: sub.Name,
		Bearer: !rd.accepts, DPoPAlgs: rd.algs}
	if sub.Grant != nil {
		treq.SubjectToken, treq.SubjectTokenSource, treq.GrantAssertion = "", nil, sub.Grant
	}
	tok, err := t.c.cfg.Tokens.Token(ctx, treq)
	if err != nil {
		// Refused or failed: the call fails. A delegated call is never
		// made on the client's own authority instead.
		return nil, treq, &TokenError{Resource: t.c.cfg.URL, Issuer: server.Issuer, Exchange: sub.delegated(), Err: err}
	}
	if isDPoP(tok) && tok.DPoPKey == nil {
		return nil, treq, fmt.Errorf("%w: from %s: a DPoP-bound token without its key", ErrToken, server.Issuer)
	}
	return tok, treq, nil
}

// send sends one attempt of req with tok (nil: no credentials).
func (t *authTransport) send(req *http.Request, body []byte, tok *oauth.Token) (*http.Response, error) {
	ctx := req.Context()
	r := req.Clone(ctx)
	r.Header.Del("Authorization")
	r.Header.Del("DPoP")
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	if tok != nil {
		scheme := oauth.TokenTypeBearer
		if isDPoP(tok) {
			// RFC 9449 §7: a fresh proof for every request (its own jti),
			// bound to this method and URL (htu without query and
			// fragment) and to the token (ath), with the origin's last
			// nonce.
			target := r.URL.String()
			proof, err := dpop.NewProof(ctx, tok.DPoPKey, dpop.ProofParams{Method: r.Method, URL: target,
				AccessToken: tok.AccessToken, Nonce: t.c.nonces.Nonce(target), Now: t.c.cfg.Now()})
			if err != nil {
				return nil, fmt.Errorf("mcpclient: DPoP proof: %w", err)
			}
			r.Header.Set("DPoP", proof)
			scheme = oauth.TokenTypeDPoP
		}
		r.Header.Set("Authorization", scheme+" "+tok.AccessToken)
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// discoverOnce runs discovery unless another request already has:
// protected resource metadata (from the challenge's resource_metadata,
// naming exactly the endpoint), then the metadata of its first
// authorization server. Scopes come from the challenge, else from the
// resource's scopes_supported (SPECS.md §3.2 item 7).
func (c *Client) discoverOnce(ctx context.Context, info challengeInfo) error {
	select {
	case c.discover <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrDiscovery, ctx.Err())
	}
	defer func() { <-c.discover }()
	c.mu.Lock()
	done := c.server != nil
	c.mu.Unlock()
	if done {
		return nil
	}
	prm, err := oauth.DiscoverResource(ctx, c.fetcher, c.cfg.URL, info.ResourceMetadata)
	if err != nil {
		return fmt.Errorf("%w: protected resource metadata: %w", ErrDiscovery, err)
	}
	issuer := prm.AuthorizationServers[0]
	asm, err := oauth.DiscoverServer(ctx, c.fetcher, issuer)
	if err != nil {
		return fmt.Errorf("%w: authorization server metadata: %w", ErrDiscovery, err)
	}
	scopes := info.Scope
	if len(scopes) == 0 {
		scopes = prm.ScopesSupported
	}
	// The resource takes DPoP-bound tokens when it says so: a DPoP
	// challenge (RFC 9449 §7.1) or DPoP in its metadata (RFC 9728 §2).
	// Otherwise the token is asked for as a bearer token, even from an
	// authorization server that advertises DPoP: a resource that does not
	// know DPoP refuses the DPoP scheme.
	rd := resourceDPoP{accepts: info.DPoP || len(prm.DPoPSigningAlgValuesSupported) > 0 || prm.DPoPBoundAccessTokensRequired,
		algs: prm.DPoPSigningAlgValuesSupported}
	if len(rd.algs) == 0 {
		rd.algs = info.DPoPAlgs
	}
	if c.cfg.Scopes != nil {
		// The caller knows what it may have: ask for that much of what
		// the resource wants, not more (a token endpoint refuses scopes
		// the client may not request).
		scopes = c.cfg.Scopes
	}
	c.log.DebugContext(ctx, "mcpclient: discovered", "resource", c.cfg.URL, "issuer", asm.Issuer,
		"scope", oauth.FormatScope(scopes), "resource_dpop", rd.accepts, "as_dpop_algs", asm.DPoPSigningAlgValuesSupported)
	c.mu.Lock()
	c.server, c.scopes, c.resourceDPoP = asm, slices.Clone(scopes), rd
	c.mu.Unlock()
	return nil
}

// resourceDPoP is what the resource said about DPoP.
type resourceDPoP struct {
	// accepts: it takes DPoP-bound tokens.
	accepts bool
	// algs are the proof algorithms it named, if any.
	algs []string
}

func isDPoP(tok *oauth.Token) bool {
	return tok != nil && strings.EqualFold(tok.TokenType, oauth.TokenTypeDPoP)
}

// union is a followed by the members of b it lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// describe renders the challenge's error for an error message, from the
// peer's text, shortened and without control characters.
func describe(info challengeInfo) string {
	if info.Code == "" {
		return ""
	}
	s := info.Code
	if info.Description != "" {
		s += ": " + info.Description
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return " (" + s + ")"
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
}
