// Package llm is the host's model layer: the [Model] interface every language
// model implements, and the provider-neutral types that cross it.
//
// Agent plugins never talk to a model provider themselves and never see an API
// key. The host holds the keys and calls a [Model] on their behalf; the
// provider clients live in subpackages:
//
//   - llm/openai (package llmopenai): the OpenAI-compatible chat-completions
//     API (OpenAI, vLLM, llama.cpp server, Ollama).
//   - llm/anthropic (package llmanthropic): the Anthropic Messages API.
//   - llm/offline (package llmoffline): a deterministic stand-in model that
//     needs no network or weights, for demos and tests.
//
// # Conversation
//
// A [Request] carries the conversation as [Message] values with roles
// [RoleSystem], [RoleUser], [RoleAssistant] and [RoleTool]. An assistant
// message may hold [ToolCall] values (id, name, JSON arguments); a tool message
// answers one call by its id. Tools are offered as [Tool] definitions whose
// parameters are a JSON Schema.
//
// # Streaming
//
// [Model.Stream] yields [Event] values: text deltas, tool-call start, argument
// deltas and end, and finally [EventDone] with the assembled [Response].
// [Model.Complete] returns that final response directly; [Collect] turns a
// stream into one.
//
// # Errors
//
// A provider's error body becomes an [*APIError]. It matches the sentinels
// [ErrRateLimited], [ErrAuth], [ErrBadRequest] and [ErrOverloaded] with
// [errors.Is]. A stream that ends early or cannot be parsed fails with
// [ErrMalformedStream]. No error message ever contains an API key.
package llm
