// Package llmopenai is an [llm.Model] for the OpenAI-compatible
// chat-completions API: POST {base}/v1/chat/completions with
// "Authorization: Bearer <key>". The same wire format is served by OpenAI,
// vLLM, the llama.cpp server and Ollama.
//
// It maps [llm.Request] to the chat-completions request (messages, function
// tools, max_tokens, temperature), the response's choices, tool_calls,
// finish_reason and usage back to [llm.Response], and reads streamed answers
// (stream: true) as server-sent events: "data:" chunks whose tool-call deltas
// are assembled by index, ended by "data: [DONE]". Error bodies
// {"error":{"message","type","code"}} become [*llm.APIError].
//
// The API key is sent only in the Authorization header and is redacted from
// every error and log line. An empty key sends no Authorization header, as
// local servers expect.
package llmopenai
