// Package sse reads Server-Sent Events streams (the text/event-stream format
// of the WHATWG HTML Living Standard, §9.2 "Server-sent events") as the model
// providers send them. It owns the line and field parsing only; what the
// events mean is up to each provider client.
package sse
