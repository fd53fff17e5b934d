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
// logged or returned.
//
// # DPoP
//
// Tokens are DPoP-bound (RFC 9449) when the authorization server
// advertises dpop_signing_alg_values_supported, the [Config.Tokens] client
// has DPoP keys (oauth.ClientConfig.DPoPKeys), and the server says it
// takes DPoP-bound tokens: a DPoP challenge in its first 401 (RFC 9449
// §7.1) or DPoP in its protected resource metadata. A server that says
// neither gets bearer tokens, since a resource that does not know DPoP
// refuses the DPoP scheme (MCP servers are only required to take Bearer).
// The proof algorithms the server names narrow the key's (ES256 is
// preferred). Every HTTP request mcp-go sends through the client's
// transport with a DPoP token (POST, GET, DELETE alike) carries
// Authorization: DPoP and a proof of its own: a fresh jti, htm and htu
// (the endpoint without query and fragment) of that request, ath of the
// token, signed with the key the token is bound to (oauth.Token.DPoPKey),
// and the server's latest DPoP-Nonce. A 401 use_dpop_nonce with a
// DPoP-Nonce is answered once with that nonce; the nonce a server sends
// with any response is kept, per origin, for every session's next proof.
//
// One MCP session per subject is initialized lazily and reused.
package mcpclient
