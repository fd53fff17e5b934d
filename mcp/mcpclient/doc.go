// Package mcpclient is the host's client for remote MCP servers. Agents
// never hold tokens: the host lists and calls a remote server's tools for
// them, acquiring OAuth access tokens on the way.
//
// A [Client] talks to one MCP endpoint (Streamable HTTP) and follows the
// MCP 2025-11-25 client authorization rules: a request without a token
// that gets 401 leads to protected resource metadata discovery (RFC 9728,
// from the challenge's resource_metadata), a check that the metadata
// names the endpoint, authorization server metadata discovery (RFC 8414 /
// OpenID Connect) of its first authorization server, and a token for the
// endpoint as RFC 8707 resource with the challenge's scope (else the
// metadata's scopes_supported). Calls made for a user ([Subject]) get
// their token by token exchange (RFC 8693) at that authorization server:
// subject_token = the user's token ([Subject.Token], or the one
// [Subject.Source] gives: the host's token for the delegation chain), of
// type access_token; actor_token = the client's own assertion (the
// agent's JWT-SVID, addressed to that server alone), of type jwt, which
// also authenticates the client; resource = the endpoint. The server sees
// the user as sub and the agent as act, nested through the agents the
// subject token already names. A refused exchange fails the call with
// [ErrToken], naming the endpoint, the authorization server and the OAuth
// error; the client never falls back to its own authority
// (client_credentials) for a delegated subject. Exchanged tokens are
// cached per (authorization server, endpoint, scopes, subject) until
// shortly before they expire, the subject being [Subject.Key] for a
// source, so the source is asked only when a token must be acquired.
//
// A 401 for a token is answered by forgetting it and acquiring one once
// more; a 403 insufficient_scope by one step-up to the union of the
// scopes asked for and the challenged ones. Tokens are sent in the
// Authorization header, only to the configured endpoint, and are never
// logged or returned; a DPoP-bound token gets a fresh proof per request
// when [Config.DPoPKey] is set.
//
// One MCP session per subject is initialized lazily and reused.
package mcpclient
