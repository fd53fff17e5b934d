package llmopenai

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

// DefaultBaseURL is the API origin used when Config.BaseURL is empty.
const DefaultBaseURL = "https://api.openai.com"

// DefaultTimeout bounds a whole call, streamed body included, when
// Config.HTTPClient is nil.
const DefaultTimeout = 5 * time.Minute

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 1 << 20

// provider is the APIError.Provider of this client.
const provider = "openai"

// Config configures a [Client].
type Config struct {
	// BaseURL is the API origin, without the /v1 suffix
	// ("http://localhost:11434" for Ollama). Empty means DefaultBaseURL.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>"; empty sends no
	// Authorization header.
	APIKey string
	// HTTPClient sends the requests; nil means a client with
	// DefaultTimeout.
	HTTPClient *http.Client
	// Logger receives debug records of each call; nil is silent.
	Logger *slog.Logger
	// DefaultModel is used when a request names no model.
	DefaultModel string
	// Now is the clock for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Client calls an OpenAI-compatible chat-completions endpoint.
type Client struct {
	endpoint     string
	apiKey       string
	hc           *http.Client
	log          *slog.Logger
	defaultModel string
	now          func() time.Time
}

var _ llm.Model = (*Client)(nil)

// New returns a Client for cfg. It fails when BaseURL is not an absolute
// http or https URL.
func New(cfg Config) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("llmopenai: base url %q is not an absolute http(s) url", base)
	}
	c := &Client{
		endpoint:     strings.TrimRight(u.String(), "/") + "/v1/chat/completions",
		apiKey:       cfg.APIKey,
		hc:           cfg.HTTPClient,
		log:          cfg.Logger,
		defaultModel: cfg.DefaultModel,
		now:          cfg.Now,
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
	var cr chatResponse
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil {
		return nil, c.wrapErr(ctx, fmt.Errorf("%w: decode response: %w", llm.ErrMalformedStream, err))
	}
	if cr.Error != nil {
		return nil, c.apiError(0, cr.Error, nil)
	}
	if len(cr.Choices) == 0 || cr.Choices[0].Message == nil {
		return nil, fmt.Errorf("llmopenai: %w: response has no choices", llm.ErrMalformedStream)
	}
	ch := cr.Choices[0]
	msg := llm.Message{Role: llm.RoleAssistant}
	if ch.Message.Content != nil {
		msg.Content = *ch.Message.Content
	}
	if msg.Content == "" && ch.Message.Refusal != nil {
		msg.Content = *ch.Message.Refusal
	}
	for i, tc := range ch.Message.ToolCalls {
		call, err := toolCall(tc.ID, tc.Function.Name, tc.Function.Arguments)
		if err != nil {
			return nil, fmt.Errorf("llmopenai: tool call %d: %w", i, err)
		}
		msg.ToolCalls = append(msg.ToolCalls, call)
	}
	out := &llm.Response{Model: cr.Model, Message: msg, StopReason: finalStop(ch.FinishReason, msg)}
	if cr.Usage != nil {
		out.Usage = llm.Usage{InputTokens: cr.Usage.PromptTokens, OutputTokens: cr.Usage.CompletionTokens}
	}
	return out, nil
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

// buildRequest validates req and encodes the chat-completions body.
func (c *Client) buildRequest(req *llm.Request, stream bool) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("llmopenai: %w", err)
	}
	model := req.Model
	if model == "" {
		model = c.defaultModel
	}
	if model == "" {
		return nil, fmt.Errorf("llmopenai: %w: no model named and no default model", llm.ErrInvalidRequest)
	}
	cr := chatRequest{
		Model:       model,
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
		Stream:      stream,
	}
	if stream {
		cr.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	for _, m := range req.Messages {
		cm := chatMessage{Role: string(m.Role), ToolCallID: m.ToolCallID}
		if m.Content != "" || len(m.ToolCalls) == 0 {
			content := m.Content
			cm.Content = &content
		}
		for _, tc := range m.ToolCalls {
			args := string(tc.Arguments)
			if args == "" {
				args = "{}"
			}
			cm.ToolCalls = append(cm.ToolCalls, chatToolCall{
				ID:       tc.ID,
				Type:     "function",
				Function: chatFunction{Name: tc.Name, Arguments: args},
			})
		}
		cr.Messages = append(cr.Messages, cm)
	}
	for _, t := range req.Tools {
		params := t.Parameters
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		cr.Tools = append(cr.Tools, chatTool{
			Type:     "function",
			Function: chatToolSpec{Name: t.Name, Description: t.Description, Parameters: params},
		})
	}
	b, err := json.Marshal(cr)
	if err != nil {
		return nil, fmt.Errorf("llmopenai: encode request: %w", err)
	}
	return b, nil
}

// post sends body and returns a 2xx response, or the provider's error.
func (c *Client) post(ctx context.Context, body []byte) (*http.Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("llmopenai: build request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json, text/event-stream")
	if c.apiKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	start := c.now()
	resp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, c.wrapErr(ctx, fmt.Errorf("llmopenai: send request: %w", err))
	}
	c.log.DebugContext(ctx, "chat completion response", slog.Int("status", resp.StatusCode), slog.Duration("elapsed", c.now().Sub(start)))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, c.wrapErr(ctx, fmt.Errorf("llmopenai: read error body (status %d): %w", resp.StatusCode, err))
	}
	return nil, c.errorFromBody(resp.StatusCode, resp.Header, raw)
}

// errorFromBody decodes an error response into an *llm.APIError. Bodies that
// are not the documented envelope keep a short excerpt as the message.
func (c *Client) errorFromBody(status int, h http.Header, raw []byte) error {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	var body errorBody
	if json.Unmarshal(raw, &env) == nil && len(env.Error) > 0 {
		if json.Unmarshal(env.Error, &body) != nil {
			// Some compatible servers send {"error": "text"}.
			var s string
			if json.Unmarshal(env.Error, &s) == nil {
				body.Message = s
			}
		}
	}
	if body.Message == "" && body.Type == "" {
		body.Message = excerpt(string(raw))
		if body.Message == "" {
			body.Message = http.StatusText(status)
		}
	}
	return c.apiError(status, &body, h)
}

func (c *Client) apiError(status int, b *errorBody, h http.Header) *llm.APIError {
	typ := b.Type
	if typ == "" {
		var code string
		if json.Unmarshal(b.Code, &code) == nil {
			typ = code
		}
	}
	return wire.APIError(provider, status, typ, b.Message, h, c.now(), c.apiKey)
}

// wrapErr redacts the key from err's text and keeps a context error visible
// to errors.Is.
func (c *Client) wrapErr(ctx context.Context, err error) error {
	return wire.WrapErr(ctx, err, c.apiKey)
}

func excerpt(s string) string { return wire.Excerpt(s) }

// toolCall builds an llm.ToolCall from the wire form, whose arguments are a
// JSON-encoded string.
func toolCall(id, name, args string) (llm.ToolCall, error) {
	return wire.ToolCall("tool call", id, name, args)
}

// stopReason normalises finish_reason.
func stopReason(fr *string) llm.StopReason {
	if fr == nil {
		return llm.StopEndTurn
	}
	switch *fr {
	case "stop", "":
		return llm.StopEndTurn
	case "tool_calls", "function_call":
		return llm.StopToolUse
	case "length":
		return llm.StopMaxTokens
	case "content_filter":
		return llm.StopRefusal
	}
	return llm.StopOther
}
