package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is
// zero.
const DefaultMaxBodyBytes int64 = 1 << 20

// CodeDenied is the JSON-RPC error code answering a tools/call that the
// [Authorizer] refused. It is from the server-defined range of JSON-RPC 2.0
// §5.1 and clear of the codes MCP and its SDKs already give meaning to
// (-32000 to -32005, -32020 to -32022, -32042).
const CodeDenied = -32010

// Sentinel errors.
var (
	// ErrInvalidConfig is returned by [New] for an unusable Config.
	ErrInvalidConfig = errors.New("mcpserver: invalid config")
	// ErrDenied may be returned (or wrapped) by an [Authorizer]; any non-nil
	// error denies the call.
	ErrDenied = errors.New("mcpserver: denied")
	// ErrToolFailed is the error the MCP client sees when a [Tool.Handler]
	// returns an error or an unusable [Result]; the cause is only logged.
	ErrToolFailed = errors.New("mcpserver: tool failed")
)

// Tool is one tool a [Server] offers.
type Tool struct {
	// Name is the MCP tool name: 1 to 128 characters from A-Z, a-z, 0-9,
	// '_', '-' and '.'.
	Name        string
	Description string
	// InputSchema is a JSON Schema object for the arguments. Empty means
	// {"type":"object"}.
	InputSchema json.RawMessage
	// Scope is the OAuth scope a caller must hold to see or call the tool.
	// Empty means any caller with a valid token.
	Scope string
	// ReadOnly is advertised as the readOnlyHint annotation.
	ReadOnly bool
	// Handler runs the tool. args is the JSON object of arguments ({} when the
	// client sent none). A returned error is logged and reported to the
	// client as [ErrToolFailed]; a failure the model should see goes in a
	// Result with IsError set.
	Handler func(ctx context.Context, caller *resource.Caller, args json.RawMessage) (Result, error)
}

// Result is what a tool returns; it becomes an MCP CallToolResult.
type Result struct {
	// Text is sent as one text content block. When it is empty and
	// Structured is set, the JSON form of Structured is sent instead, as
	// MCP asks for an unstructured equivalent of structured content.
	Text string
	// Structured, when non-nil, is sent as structuredContent; it must
	// marshal to a JSON object.
	Structured any
	// IsError marks a tool-level failure the model should see.
	IsError bool
}

// Authorizer is the policy hook consulted, after the scope check, for every
// tool a caller would see in tools/list and for every tools/call. server is
// Config.Name. A non-nil error denies; nil allows.
type Authorizer func(ctx context.Context, caller *resource.Caller, server, tool string) error

// Config configures a [Server].
type Config struct {
	// Name is the server's path segment (/mcp/<Name>) and its MCP
	// implementation name. Required: 1 to 64 characters from A-Z, a-z, 0-9,
	// '_', '-' and '.', and not "." or "..".
	Name    string
	Title   string
	Version string // "0.0.0" when empty
	Tools   []Tool
	// Verifier authenticates every request. Required.
	Verifier *resource.Verifier
	// Authorize is the policy hook; nil allows whatever the scopes allow.
	Authorize Authorizer
	// OnDenied, when set, is told of every tools/call the policy hook
	// refused (to audit it), whichever check refused it; err is the hook's
	// error. The tool's handler does not run.
	OnDenied func(ctx context.Context, caller *resource.Caller, tool string, err error)
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// LogRequests adds an access log to Logger: a line for every JSON-RPC
	// request and every tool call, at level INFO. Off by default; a host
	// that audits every call has no use for a second record of it.
	LogRequests bool
	// KeepSubjectToken makes the caller's access token available to the
	// tool handlers through [SubjectToken], for a gateway that exchanges
	// it (RFC 8693) for a token to an upstream server. Leave it off for
	// every server whose tools are not the host's own gateway: tool
	// handlers must not see callers' tokens.
	KeepSubjectToken bool
	// MaxBodyBytes caps a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Server is one hosted MCP server. It is safe for concurrent use.
type Server struct {
	name      string
	tools     map[string]*Tool
	verifier  *resource.Verifier
	authorize Authorizer
	onDenied  func(ctx context.Context, caller *resource.Caller, tool string, err error)
	logger    *slog.Logger
	maxBody   int64
	mcp       http.Handler
	handler   http.Handler
}

// New checks cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Verifier == nil {
		return nil, fmt.Errorf("%w: Verifier is required", ErrInvalidConfig)
	}
	if !validName(cfg.Name, 64) || cfg.Name == "." || cfg.Name == ".." {
		return nil, fmt.Errorf("%w: name %q is not a valid path segment", ErrInvalidConfig, cfg.Name)
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("%w: negative MaxBodyBytes", ErrInvalidConfig)
	}
	s := &Server{
		name:      cfg.Name,
		tools:     make(map[string]*Tool, len(cfg.Tools)),
		verifier:  cfg.Verifier,
		authorize: cfg.Authorize,
		onDenied:  cfg.OnDenied,
		logger:    cfg.Logger,
		maxBody:   cfg.MaxBodyBytes,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	version := cfg.Version
	if version == "" {
		version = "0.0.0"
	}

	opts := []server.ServerOption{
		server.WithToolCapabilities(false),
		server.WithToolFilter(s.filterTools),
	}
	if cfg.Logger != nil && cfg.LogRequests {
		opts = append(opts, server.WithLogger(cfg.Logger))
	}
	if cfg.Title != "" {
		opts = append(opts, server.WithTitle(cfg.Title))
	}
	ms := server.NewMCPServer(cfg.Name, version, opts...)
	for i := range cfg.Tools {
		t := cfg.Tools[i]
		st, err := s.serverTool(&t)
		if err != nil {
			return nil, err
		}
		s.tools[t.Name] = &t
		ms.AddTool(st.Tool, st.Handler)
	}
	s.mcp = server.NewStreamableHTTPServer(ms,
		server.WithStateLess(true),
		server.WithStreamableHTTPLogger(s.logger),
	)
	s.handler = cfg.Verifier.Middleware(http.HandlerFunc(s.serve))
	if cfg.KeepSubjectToken {
		s.handler = keepSubjectToken(s.handler)
	}
	return s, nil
}

// serverTool checks t and builds its MCP form.
func (s *Server) serverTool(t *Tool) (server.ServerTool, error) {
	if !validName(t.Name, 128) {
		return server.ServerTool{}, fmt.Errorf("%w: tool name %q", ErrInvalidConfig, t.Name)
	}
	if _, dup := s.tools[t.Name]; dup {
		return server.ServerTool{}, fmt.Errorf("%w: duplicate tool %q", ErrInvalidConfig, t.Name)
	}
	if t.Handler == nil {
		return server.ServerTool{}, fmt.Errorf("%w: tool %q has no handler", ErrInvalidConfig, t.Name)
	}
	schema := t.InputSchema
	if len(schema) == 0 {
		schema = json.RawMessage(`{"type":"object"}`)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(schema, &obj); err != nil || obj == nil {
		return server.ServerTool{}, fmt.Errorf("%w: tool %q input schema is not a JSON object", ErrInvalidConfig, t.Name)
	}
	// Keep a private copy so later edits by the caller cannot change it.
	schema = append(json.RawMessage(nil), schema...)
	mt := mcpgo.NewToolWithRawSchema(t.Name, t.Description, schema)
	mt.Annotations.ReadOnlyHint = &t.ReadOnly
	return server.ServerTool{Tool: mt, Handler: s.toolHandler(t)}, nil
}

// Handler returns the MCP endpoint (Streamable HTTP). Mount it at
// /mcp/<name>; it serves whatever path it is mounted at.
func (s *Server) Handler() http.Handler { return s.handler }

// Name returns Config.Name.
func (s *Server) Name() string { return s.name }

// validName reports whether n has 1 to max characters from A-Z, a-z, 0-9,
// '_', '-' and '.'.
func validName(n string, max int) bool {
	if n == "" || len(n) > max {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

type subjectTokenKey struct{}

// keepSubjectToken puts the request's access token in the context before
// the verifier removes it from the headers; the verifier still decides
// whether the request goes on.
func keepSubjectToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if strings.EqualFold(scheme, "Bearer") && tok != "" {
			r = r.WithContext(context.WithValue(r.Context(), subjectTokenKey{}, strings.TrimSpace(tok)))
		}
		next.ServeHTTP(w, r)
	})
}

// SubjectToken returns the caller's access token in a handler of a server
// configured with KeepSubjectToken.
func SubjectToken(ctx context.Context) (string, bool) {
	tok, ok := ctx.Value(subjectTokenKey{}).(string)
	return tok, ok && tok != ""
}
