package llmanthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/llm/internal/wire"
)

// Defaults used when the matching Config field is zero.
const (
	DefaultBaseURL   = "https://api.anthropic.com"
	DefaultVersion   = "2023-06-01"
	DefaultMaxTokens = 4096
	DefaultTimeout   = 5 * time.Minute
)

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 1 << 20

// provider is the APIError.Provider of this client.
const provider = "anthropic"

// Config configures a [Client].
type Config struct {
	// BaseURL is the API origin without the /v1 suffix. Empty means
	// DefaultBaseURL.
	BaseURL string
	// APIKey is sent in the x-api-key header.
	APIKey string
	// Version is the anthropic-version header; empty means DefaultVersion.
	Version string
	// HTTPClient sends the requests; nil means a client with
	// DefaultTimeout.
	HTTPClient *http.Client
	// Logger receives debug records of each call; nil is silent.
	Logger *slog.Logger
	// DefaultModel is used when a request names no model.
	DefaultModel string
	// DefaultMaxTokens is sent when a request sets no MaxTokens (the API
	// requires max_tokens); zero means DefaultMaxTokens.
	DefaultMaxTokens int
	// Now is the clock for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Client calls the Anthropic Messages API.
type Client struct {
	endpoint     string
	apiKey       string
	version      string
	hc           *http.Client
	log          *slog.Logger
	defaultModel string
	maxTokens    int
	now          func() time.Time
}

var _ llm.Model = (*Client)(nil)

// New returns a Client for cfg. It fails when BaseURL is not an absolute
// http or https URL or DefaultMaxTokens is negative.
func New(cfg Config) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("llmanthropic: base url %q is not an absolute http(s) url", base)
	}
	if cfg.DefaultMaxTokens < 0 {
		return nil, fmt.Errorf("llmanthropic: negative default max tokens %d", cfg.DefaultMaxTokens)
	}
	c := &Client{
		endpoint:     strings.TrimRight(u.String(), "/") + "/v1/messages",
		apiKey:       cfg.APIKey,
		version:      cfg.Version,
		hc:           cfg.HTTPClient,
		log:          cfg.Logger,
		defaultModel: cfg.DefaultModel,
		maxTokens:    cfg.DefaultMaxTokens,
		now:          cfg.Now,
	}
	if c.version == "" {
		c.version = DefaultVersion
	}
	if c.maxTokens == 0 {
		c.maxTokens = DefaultMaxTokens
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: DefaultTimeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Complete implements [llm.Model] with one non-streamed call.
func (c *Client) Complete(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	body, err := c.buildRequest(req, false)
	if err != nil {
		return nil, err
	}
	resp, err := c.post(ctx, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var mr messageResponse
	if err := json.NewDecoder(resp.Body).Decode(&mr); err != nil {
		return nil, c.wrapErr(ctx, fmt.Errorf("llmanthropic: %w: decode response: %w", llm.ErrMalformedStream, err))
	}
	if mr.Type != "message" {
		return nil, fmt.Errorf("llmanthropic: %w: response type %q, want message", llm.ErrMalformedStream, mr.Type)
	}
	msg := llm.Message{Role: llm.RoleAssistant}
	var text strings.Builder
	for i, b := range mr.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			call, err := toolCall(b.ID, b.Name, string(b.Input))
			if err != nil {
				return nil, fmt.Errorf("llmanthropic: content block %d: %w", i, err)
			}
			msg.ToolCalls = append(msg.ToolCalls, call)
		}
	}
	msg.Content = text.String()
	return &llm.Response{
		Model:      mr.Model,
		Message:    msg,
		StopReason: stopReason(mr.StopReason),
		Usage:      usage(mr.Usage),
	}, nil
}

// Stream implements [llm.Model] with a streamed call (stream: true).
func (c *Client) Stream(ctx context.Context, req *llm.Request) iter.Seq2[llm.Event, error] {
	body, err := c.buildRequest(req, true)
	if err != nil {
		return llm.ErrorStream(err)
	}
	return func(yield func(llm.Event, error) bool) {
		resp, err := c.post(ctx, body)
		if err != nil {
			yield(llm.Event{}, err)
			return
		}
		defer resp.Body.Close()
		s := &streamState{c: c, ctx: ctx, yield: yield}
		if err := s.run(resp.Body); err != nil {
			yield(llm.Event{}, err)
		}
	}
}

// buildRequest validates req and encodes the Messages body. System messages
// join into the top-level system prompt; tool results travel as tool_result
// blocks of a user turn; consecutive turns of one role are merged, as the
// API expects alternating roles.
func (c *Client) buildRequest(req *llm.Request, stream bool) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("llmanthropic: %w", err)
	}
	mr := messagesRequest{
		Model:       req.Model,
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
		Stream:      stream,
	}
	if mr.Model == "" {
		mr.Model = c.defaultModel
	}
	if mr.Model == "" {
		return nil, fmt.Errorf("llmanthropic: %w: no model named and no default model", llm.ErrInvalidRequest)
	}
	if mr.MaxTokens == 0 {
		mr.MaxTokens = c.maxTokens
	}
	var system []string
	for i, m := range req.Messages {
		var role string
		var blocks []wireBlock
		switch m.Role {
		case llm.RoleSystem:
			if m.Content != "" {
				system = append(system, m.Content)
			}
			continue
		case llm.RoleUser:
			role = "user"
			if m.Content != "" {
				blocks = append(blocks, wireBlock{Type: "text", Text: m.Content})
			}
		case llm.RoleAssistant:
			role = "assistant"
			if m.Content != "" {
				blocks = append(blocks, wireBlock{Type: "text", Text: m.Content})
			}
			for _, tc := range m.ToolCalls {
				input := tc.Arguments
				if len(input) == 0 {
					input = json.RawMessage("{}")
				}
				blocks = append(blocks, wireBlock{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: input})
			}
		case llm.RoleTool:
			role = "user"
			content := m.Content
			blocks = append(blocks, wireBlock{Type: "tool_result", ToolUseID: m.ToolCallID, Content: &content})
		}
		if len(blocks) == 0 {
			return nil, fmt.Errorf("llmanthropic: %w: message %d (%s) has no content", llm.ErrInvalidRequest, i, m.Role)
		}
		if n := len(mr.Messages); n > 0 && mr.Messages[n-1].Role == role {
			mr.Messages[n-1].Content = append(mr.Messages[n-1].Content, blocks...)
			continue
		}
		mr.Messages = append(mr.Messages, wireMessage{Role: role, Content: blocks})
	}
	if len(mr.Messages) == 0 {
		return nil, fmt.Errorf("llmanthropic: %w: no user or assistant messages", llm.ErrInvalidRequest)
	}
	mr.System = strings.Join(system, "\n\n")
	for _, t := range req.Tools {
		schema := t.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		mr.Tools = append(mr.Tools, wireTool{Name: t.Name, Description: t.Description, InputSchema: schema})
	}
	b, err := json.Marshal(mr)
	if err != nil {
		return nil, fmt.Errorf("llmanthropic: encode request: %w", err)
	}
	return b, nil
}

// post sends body and returns a 2xx response, or the provider's error.
func (c *Client) post(ctx context.Context, body []byte) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("llmanthropic: build request: %w", err)
	}
	hreq.Header.Set("content-type", "application/json")
	hreq.Header.Set("anthropic-version", c.version)
	hreq.Header.Set("x-api-key", c.apiKey)
	start := c.now()
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, c.wrapErr(ctx, fmt.Errorf("llmanthropic: send request: %w", err))
	}
	c.log.DebugContext(ctx, "messages response", slog.Int("status", resp.StatusCode), slog.Duration("elapsed", c.now().Sub(start)))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, c.wrapErr(ctx, fmt.Errorf("llmanthropic: read error body (status %d): %w", resp.StatusCode, err))
	}
	var env errorEnvelope
	eb := &errorBody{}
	if json.Unmarshal(raw, &env) == nil && env.Error != nil {
		eb = env.Error
	}
	if eb.Type == "" && eb.Message == "" {
		eb.Message = excerpt(string(raw))
		if eb.Message == "" {
			eb.Message = http.StatusText(resp.StatusCode)
		}
	}
	return nil, c.apiError(resp.StatusCode, eb, resp.Header)
}

func (c *Client) apiError(status int, b *errorBody, h http.Header) *llm.APIError {
	return wire.APIError(provider, status, b.Type, b.Message, h, c.now(), c.apiKey)
}

// wrapErr keeps a context error visible to errors.Is and redacts the key.
func (c *Client) wrapErr(ctx context.Context, err error) error {
	return wire.WrapErr(ctx, err, c.apiKey)
}

func excerpt(s string) string { return wire.Excerpt(s) }

// toolCall builds an llm.ToolCall from a tool_use block.
func toolCall(id, name, input string) (llm.ToolCall, error) {
	return wire.ToolCall("tool_use", id, name, input)
}

// stopReason normalises stop_reason.
func stopReason(sr *string) llm.StopReason {
	if sr == nil {
		return llm.StopEndTurn
	}
	switch *sr {
	case "end_turn":
		return llm.StopEndTurn
	case "tool_use":
		return llm.StopToolUse
	case "max_tokens", "model_context_window_exceeded":
		return llm.StopMaxTokens
	case "stop_sequence":
		return llm.StopSequence
	case "refusal":
		return llm.StopRefusal
	}
	return llm.StopOther
}

// usage counts all input tokens, cached ones included.
func usage(u wireUsage) llm.Usage {
	return llm.Usage{
		InputTokens:  u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens,
		OutputTokens: u.OutputTokens,
	}
}
