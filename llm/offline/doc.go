// Package llmoffline is the offline default [llm.Model]: a deterministic
// stand-in for demos and tests that needs no network and no model weights.
// It does not understand language; it matches words.
//
// Its whole behaviour, given the conversation and the tools offered:
//
//   - When the last message is from the user and the words of a tool's name
//     or description overlap the words of that message, it calls the best
//     matching tool (name words count three times a description word; ties go
//     to the tool offered first). The arguments are filled from the message
//     according to the tool's JSON Schema: an explicit "name: value" or
//     "name=value" wins; otherwise an enum property takes the value the
//     message mentions, a URL-like property the first URL, a string property
//     the next quoted string, a numeric property the next number, and a
//     string property with nothing better the message's relevant words
//     (those that are neither filler nor the tool's name, property names or
//     enum values). Required properties are always present; optional ones
//     only when the message gives them a value, except that a schema
//     requiring no string property gives its first string property the
//     relevant words.
//   - When the last messages are tool results, it answers with a final text
//     that summarises them.
//   - Otherwise it answers directly with a plain text that says it is the
//     offline model.
//
// The same request always produces the same response, tool-call ids
// included.
package llmoffline
