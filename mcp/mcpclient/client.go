package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgotransport "github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// DefaultTimeout bounds one MCP HTTP exchange when [Config.HTTPClient] is
// nil.
const DefaultTimeout = 60 * time.Second

// Sentinel errors; each names the step that failed. Errors from a
// [Client] wrap one of them (test with errors.Is) together with the
// cause.
var (
	// ErrDiscovery reports protected resource or authorization server
	// metadata that could not be fetched or must not be used. It comes
	// with oauth.ErrMetadata or a fetch error.
	ErrDiscovery = errors.New("mcpclient: discovery failed")
	// ErrToken reports an access token that could not be acquired.
	ErrToken = errors.New("mcpclient: token acquisition failed")
	// ErrUnauthorized reports a server that refused a freshly acquired
	// token, or answered 401 after discovery.
	ErrUnauthorized = errors.New("mcpclient: the server refused the access token")
	// ErrInsufficientScope reports a 403 insufficient_scope that one
	// step-up did not cure.
	ErrInsufficientScope = errors.New("mcpclient: insufficient scope")
	// ErrEndpoint reports a request the client will not send: to a URL
	// other than the configured endpoint.
	ErrEndpoint = errors.New("mcpclient: request outside the endpoint")
	// ErrProtocol reports a failed MCP exchange (initialize, tools/list,
	// tools/call) or a malformed argument.
	ErrProtocol = errors.New("mcpclient: MCP request failed")
	// ErrClosed reports use of a closed Client.
	ErrClosed = errors.New("mcpclient: client closed")
)

// TokenError is an access token the client could not acquire: for the
// endpoint Resource, at the authorization server Issuer, by token exchange
// (a delegated [Subject]) or client_credentials. Err is why: an
// *oauth.Error when the server refused. It wraps [ErrToken] and Err.
type TokenError struct {
	Resource string
	Issuer   string
	Exchange bool
	Err      error
}

func (e *TokenError) Error() string {
	grant := "client_credentials"
	if e.Exchange {
		grant = "token exchange (RFC 8693)"
	}
	return fmt.Sprintf("%v: %s for %s at the authorization server %s: %v", ErrToken, grant, e.Resource, e.Issuer, e.Err)
}

// Unwrap returns ErrToken and the cause.
func (e *TokenError) Unwrap() []error { return []error{ErrToken, e.Err} }

// Config configures a [Client].
type Config struct {
	// URL is the MCP endpoint (Streamable HTTP); it is also the RFC 8707
	// resource tokens are requested for, and the protected resource
	// metadata must name it exactly. Required.
	URL string
	// Tokens acquires access tokens. Required. With DPoP keys
	// (oauth.ClientConfig.DPoPKeys) its tokens may be DPoP-bound; each
	// such token carries its key (oauth.Token.DPoPKey), which signs the
	// proof of every request made with it.
	Tokens *oauth.Client
	// Fetcher fetches protected resource and authorization server
	// metadata; nil means fetch.New with its defaults (https only, public
	// addresses only).
	Fetcher *fetch.Fetcher
	// HTTPClient carries MCP traffic. It is copied, never modified; its
	// redirects are never followed. Nil means a client with
	// DefaultTimeout.
	HTTPClient *http.Client
	// Logger receives debug records of the authorization steps; nil
	// means silent. Tokens are never logged.
	Logger *slog.Logger
	// Now is the clock for DPoP proofs; nil means time.Now.
	Now func() time.Time
	// Scopes, when set, are the scopes requested for the first token
	// instead of the challenge's (a gateway asks for exactly the scopes
	// its callers consented to). Step-up still adds what a 403 names.
	Scopes []string
}

// Tool is a tool the server offers.
type Tool struct {
	Name        string
	Description string
	// InputSchema is the tool's JSON Schema for its arguments.
	InputSchema json.RawMessage
}

// Result is the outcome of a tool call.
type Result struct {
	// Text is the text content of the result, items joined by newlines;
	// other content types are left out.
	Text string
	// IsError reports a tool that ran and failed (MCP isError).
	IsError bool
}

// Client calls one remote MCP server for agents. It is safe for
// concurrent use.
type Client struct {
	cfg      Config
	endpoint *url.URL
	fetcher  *fetch.Fetcher
	base     *http.Client
	log      *slog.Logger

	// discover serializes metadata discovery (a one-slot semaphore).
	discover chan struct{}

	// nonces are the server's last DPoP-Nonce, by origin; every session
	// shares them.
	nonces dpop.NonceCache

	mu           sync.Mutex
	server       *oauth.ServerMetadata
	scopes       []string
	resourceDPoP resourceDPoP
	sessions     map[string]*session
	closed       bool
}

// Subject is whom a call is made for. The zero Subject is the client's
// own authority (client_credentials); any other is delegated: the client
// exchanges the subject's token for a token to the server (RFC 8693), and
// never falls back to its own authority when that is refused.
type Subject struct {
	// Token is the access token of the user the caller acts for, sent as
	// the subject_token.
	Token string
	// Source, set instead of Token, gives the subject_token when a token
	// has to be acquired (not when one is cached): a token minted for the
	// exchange, such as the host's token for a delegation chain. Key
	// stands for it in the client's caches and sessions: it must differ
	// whenever Source would give a token for another user or chain (a
	// hash, never a token). Key is required with Source.
	Source func(ctx context.Context) (string, error)
	Key    string
	// Grant, set instead of Token and Source, gets the token by the JWT
	// bearer grant (RFC 7523) with the assertion it returns for the
	// discovered authorization server: identity chaining, where the
	// assertion is an ID-JAG the caller's own authorization server issued
	// for the user (SPECS.md §12). Key is required with Grant.
	Grant oauth.GrantAssertionSource
	// Name is who the subject token names (its verified sub), so that
	// [Client.ForgetSubject] can drop that user's sessions and tokens.
	Name string
}

// delegated reports whether calls for s are made for a user (by token
// exchange, or by an identity-chaining grant).
func (s Subject) delegated() bool { return s.Token != "" || s.Source != nil || s.Grant != nil }

// sessionKey is what s's session and tokens are kept by.
func (s Subject) sessionKey() string {
	if s.Source != nil || s.Grant != nil {
		return "key:" + s.Key
	}
	return s.Token
}

// session is the MCP session of one subject.
type session struct {
	// name is the subject's Name.
	name string
	// lock is a one-slot semaphore guarding mc.
	lock chan struct{}
	mc   *mcpgoclient.Client
	auth *authTransport
}

// New checks cfg and returns a Client. No request is made until the
// first call.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, errors.New("mcpclient: URL is required")
	case err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(cfg.URL, "#"):
		return nil, fmt.Errorf("mcpclient: URL %q is not an absolute URL without userinfo or fragment", cfg.URL)
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("mcpclient: URL scheme %q is not http or https", u.Scheme)
	case cfg.Tokens == nil:
		return nil, errors.New("mcpclient: Tokens is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg, endpoint: u, fetcher: cfg.Fetcher, log: cfg.Logger,
		discover: make(chan struct{}, 1), sessions: map[string]*session{}}
	if c.fetcher == nil {
		c.fetcher = fetch.New(fetch.Config{Logger: cfg.Logger})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient != nil {
		hc := *cfg.HTTPClient
		c.base = &hc
	} else {
		c.base = &http.Client{Timeout: DefaultTimeout}
	}
	return c, nil
}

// ListTools lists the server's tools (tools/list, all pages) for subject.
func (c *Client) ListTools(ctx context.Context, subject Subject) ([]Tool, error) {
	s, mc, err := c.session(ctx, subject)
	if err != nil {
		return nil, err
	}
	tools, err := listTools(ctx, mc)
	if err != nil {
		c.dropIfTerminated(subject.sessionKey(), s, err)
	}
	return tools, err
}

// listTools runs tools/list on an initialized session.
func listTools(ctx context.Context, mc *mcpgoclient.Client) ([]Tool, error) {
	res, err := mc.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		return nil, fmt.Errorf("%w: tools/list: %w", ErrProtocol, err)
	}
	out := make([]Tool, 0, len(res.Tools))
	for _, t := range res.Tools {
		schema, err := inputSchema(t)
		if err != nil {
			return nil, fmt.Errorf("%w: tools/list: tool %q: %w", ErrProtocol, t.Name, err)
		}
		out = append(out, Tool{Name: t.Name, Description: t.Description, InputSchema: schema})
	}
	return out, nil
}

// CallTool calls the tool name with args, a JSON object (empty means no
// arguments), for subject as in [Client.ListTools]. A tool that ran and
// failed is a Result with IsError, not an error.
func (c *Client) CallTool(ctx context.Context, subject Subject, name string, args json.RawMessage) (Result, error) {
	req, err := callRequest(name, args)
	if err != nil {
		return Result{}, err
	}
	s, mc, err := c.session(ctx, subject)
	if err != nil {
		return Result{}, err
	}
	res, err := callTool(ctx, mc, req)
	if err != nil {
		c.dropIfTerminated(subject.sessionKey(), s, err)
	}
	return res, err
}

// callRequest builds a tools/call request; args must be a JSON object
// (empty means none).
func callRequest(name string, args json.RawMessage) (mcpgo.CallToolRequest, error) {
	req := mcpgo.CallToolRequest{}
	if name == "" {
		return req, fmt.Errorf("%w: tools/call: empty tool name", ErrProtocol)
	}
	req.Params.Name = name
	if len(args) > 0 {
		if err := checkObject(args); err != nil {
			return req, fmt.Errorf("%w: tools/call %q: arguments: %w", ErrProtocol, name, err)
		}
		req.Params.Arguments = args
	}
	return req, nil
}

// callTool runs tools/call on an initialized session and keeps the text
// content.
func callTool(ctx context.Context, mc *mcpgoclient.Client, req mcpgo.CallToolRequest) (Result, error) {
	res, err := mc.CallTool(ctx, req)
	if err != nil {
		return Result{}, fmt.Errorf("%w: tools/call %q: %w", ErrProtocol, req.Params.Name, err)
	}
	var texts []string
	for _, item := range res.Content {
		if tc, ok := mcpgo.AsTextContent(item); ok {
			texts = append(texts, tc.Text)
		}
	}
	return Result{Text: strings.Join(texts, "\n"), IsError: res.IsError}, nil
}

// mcpgoInitialize is the initialize request the host sends.
func mcpgoInitialize() mcpgo.InitializeRequest {
	init := mcpgo.InitializeRequest{}
	init.Params.ClientInfo = mcpgo.Implementation{Name: "agenthost", Version: "1"}
	return init
}

// Close ends every session. The Client cannot be used afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	sessions := c.sessions
	c.sessions = map[string]*session{}
	c.mu.Unlock()
	var errs []error
	for _, s := range sessions {
		s.lock <- struct{}{}
		if s.mc != nil {
			if err := s.mc.Close(); err != nil {
				errs = append(errs, err)
			}
			s.mc = nil
		}
		<-s.lock
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mcpclient: close: %w", err)
	}
	return nil
}

// session returns subject's initialized MCP session, starting one when
// there is none.
func (c *Client) session(ctx context.Context, sub Subject) (*session, *mcpgoclient.Client, error) {
	if sub.Source != nil && (sub.Key == "" || sub.Token != "") {
		return nil, nil, errors.New("mcpclient: a subject with a Source needs a Key and no Token")
	}
	if sub.Grant != nil && (sub.Key == "" || sub.Token != "" || sub.Source != nil) {
		return nil, nil, errors.New("mcpclient: a subject with a Grant needs a Key and neither Token nor Source")
	}
	subject := sub.sessionKey()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, ErrClosed
	}
	s, ok := c.sessions[subject]
	if !ok {
		s = &session{lock: make(chan struct{}, 1), name: sub.Name}
		c.sessions[subject] = s
	}
	c.mu.Unlock()

	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("mcpclient: session: %w", ctx.Err())
	}
	defer func() { <-s.lock }()
	if s.auth == nil {
		s.auth = &authTransport{c: c, subject: sub, base: c.base.Transport}
	} else {
		// The same key, a Source of this call's: the session's tokens are
		// acquired with the latest one (an earlier caller's may no longer
		// be able to give a token).
		s.auth.setSubject(sub)
	}
	if s.mc != nil {
		return s, s.mc, nil
	}
	hc := *c.base
	hc.Transport = s.auth
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	mc, err := c.initialize(ctx, &hc)
	if err != nil {
		// A failed start leaves no entry behind (a refused subject token
		// must not accumulate).
		c.mu.Lock()
		if c.sessions[subject] == s {
			delete(c.sessions, subject)
		}
		c.mu.Unlock()
		return nil, nil, err
	}
	s.mc = mc
	return s, mc, nil
}

// initialize starts an MCP session over hc.
func (c *Client) initialize(ctx context.Context, hc *http.Client) (*mcpgoclient.Client, error) {
	mc, err := mcpgoclient.NewStreamableHttpClient(c.cfg.URL,
		mcpgotransport.WithHTTPBasicClient(hc), mcpgotransport.WithHTTPLogger(c.log))
	if err != nil {
		return nil, fmt.Errorf("%w: initialize: %w", ErrProtocol, err)
	}
	if err := mc.Start(ctx); err != nil {
		_ = mc.Close()
		return nil, fmt.Errorf("%w: initialize: %w", ErrProtocol, err)
	}
	if _, err := mc.Initialize(ctx, mcpgoInitialize()); err != nil {
		_ = mc.Close()
		return nil, fmt.Errorf("%w: initialize: %w", ErrProtocol, err)
	}
	return mc, nil
}

// EndSessions ends the sessions of the subjects with a Source whose Key
// starts with keyPrefix (the task that needed them has ended), and returns
// how many it ended. Their tokens stay cached: a later call for the same
// key starts a new session with them.
func (c *Client) EndSessions(keyPrefix string) int {
	prefix := "key:" + keyPrefix
	c.mu.Lock()
	var ended []*session
	for k, s := range c.sessions {
		if strings.HasPrefix(k, prefix) {
			delete(c.sessions, k)
			ended = append(ended, s)
		}
	}
	c.mu.Unlock()
	for _, s := range ended {
		s.lock <- struct{}{}
		if s.mc != nil {
			_ = s.mc.Close()
			s.mc = nil
		}
		<-s.lock
	}
	return len(ended)
}

// ForgetSubject ends the sessions of the user name and drops the tokens
// acquired for them, so the next call for that user starts afresh (after
// the user's access was revoked). It returns how many sessions it ended.
func (c *Client) ForgetSubject(name string) int {
	if name == "" {
		return 0
	}
	c.mu.Lock()
	var ended []*session
	for k, s := range c.sessions {
		if s.name == name {
			delete(c.sessions, k)
			ended = append(ended, s)
		}
	}
	c.mu.Unlock()
	if c.cfg.Tokens != nil {
		c.cfg.Tokens.ForgetSubject(name)
	}
	for _, s := range ended {
		s.lock <- struct{}{}
		if s.mc != nil {
			_ = s.mc.Close()
			s.mc = nil
		}
		<-s.lock
	}
	return len(ended)
}

// dropIfTerminated forgets a session the server ended, so the next call
// starts a new one.
func (c *Client) dropIfTerminated(subject string, s *session, err error) {
	if !errors.Is(err, mcpgotransport.ErrSessionTerminated) {
		return
	}
	c.mu.Lock()
	if c.sessions[subject] == s {
		delete(c.sessions, subject)
	}
	c.mu.Unlock()
	s.lock <- struct{}{}
	if s.mc != nil {
		_ = s.mc.Close()
		s.mc = nil
	}
	<-s.lock
}

// inputSchema is the tool's inputSchema member as sent on the wire.
func inputSchema(t mcpgo.Tool) (json.RawMessage, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	var aux struct {
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return nil, err
	}
	return aux.InputSchema, nil
}

// checkObject requires raw to be one JSON object.
func checkObject(raw json.RawMessage) error {
	if !json.Valid(raw) {
		return errors.New("not valid JSON")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return errors.New("not a JSON object")
	}
	return nil
}
