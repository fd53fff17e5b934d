package llmanthropic

import "encoding/json"

// messagesRequest is the body of POST /v1/messages. Unsupported request
// features: stop_sequences, top_k, top_p, metadata, tool_choice, images,
// documents, thinking and prompt caching.
type messagesRequest struct {
	Model       string        `json:"model"`
	MaxTokens   int           `json:"max_tokens"`
	System      string        `json:"system,omitempty"`
	Messages    []wireMessage `json:"messages"`
	Tools       []wireTool    `json:"tools,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
	Stream      bool          `json:"stream,omitempty"`
}

type wireMessage struct {
	Role    string      `json:"role"`
	Content []wireBlock `json:"content"`
}

// wireBlock is one content block; which fields are set depends on Type
// ("text", "tool_use", "tool_result").
type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   *string         `json:"content,omitempty"`
}

type wireTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// messageResponse is the non-streamed answer ("type": "message") and the
// "message" of a streamed message_start event.
type messageResponse struct {
	ID         string      `json:"id"`
	Type       string      `json:"type"`
	Role       string      `json:"role"`
	Model      string      `json:"model"`
	Content    []wireBlock `json:"content"`
	StopReason *string     `json:"stop_reason"`
	Usage      wireUsage   `json:"usage"`
}

type wireUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// streamEvent is the data of one streamed event.
type streamEvent struct {
	Type         string           `json:"type"`
	Message      *messageResponse `json:"message"`
	Index        *int             `json:"index"`
	ContentBlock *wireBlock       `json:"content_block"`
	Delta        *streamDelta     `json:"delta"`
	Usage        *wireUsage       `json:"usage"`
	Error        *errorBody       `json:"error"`
}

// streamDelta is the delta of content_block_delta (text_delta,
// input_json_delta) and of message_delta (stop_reason).
type streamDelta struct {
	Type        string  `json:"type"`
	Text        string  `json:"text"`
	PartialJSON string  `json:"partial_json"`
	StopReason  *string `json:"stop_reason"`
}

// errorEnvelope is the error body: {"type":"error","error":{"type","message"}}.
type errorEnvelope struct {
	Type  string     `json:"type"`
	Error *errorBody `json:"error"`
}

type errorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}
