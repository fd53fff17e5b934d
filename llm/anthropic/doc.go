// Package llmanthropic is an [llm.Model] for the Anthropic Messages API:
// POST {base}/v1/messages with the headers x-api-key, anthropic-version
// (2023-06-01) and content-type.
//
// It maps [llm.Request] to the Messages request: system messages become the
// top-level "system" prompt, text becomes "text" content blocks, assistant
// tool calls "tool_use" blocks (id, name, input object), and tool results
// "tool_result" blocks (tool_use_id) inside a user turn; tools carry their
// JSON Schema as "input_schema". The response's content blocks, stop_reason
// and usage map back to [llm.Response].
//
// Streamed answers (stream: true) are read as the documented server-sent
// events: message_start, content_block_start, content_block_delta
// (text_delta, input_json_delta), content_block_stop, message_delta,
// message_stop, ping and error. Error bodies
// {"type":"error","error":{"type","message"}} become [*llm.APIError]
// (429 rate_limit_error, 529 overloaded_error, 401 authentication_error …).
//
// Content blocks other than text and tool_use (thinking, server tools) are
// skipped. The API key is sent only in the x-api-key header and is redacted
// from every error.
package llmanthropic
