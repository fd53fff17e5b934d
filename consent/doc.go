// Package consent is the human in the loop: it shows a person the
// requests that need their approval and records their decision with the
// authorization server. A request is a CIBA backchannel authentication
// request (OpenID CIBA Core 1.0, SPECS.md §7) that an agent, or the host
// acting for it, sent to the authorization server
// (credentials/authserver) with a binding_message and RFC 9396
// authorization_details describing exactly the call to approve.
//
// # Where the requests live
//
// The requests are the authorization server's: it keeps each one in its
// Store under its approval ID ([authserver.ApprovalID] of the
// auth_req_id), so a restart loses none, and only its decision counts: a
// yes recorded here is what lets the server issue the token the call
// needs (DESIGN.md invariant 5).
//
// # The asking side
//
// [Requests] is how a process asks (the host, for its agents and its MCP
// clients): [Requests.Ask] starts a backchannel request for a call, or
// returns the one already waiting for the same call (same user,
// requester, client, tool and arguments digest), kept in the Store, so a
// retry, or the call made again after a restart, waits for the request
// the user may already have answered instead of asking twice;
// [Requests.Collect] polls it once, and once it is decided the call asks
// anew; [Requests.Claim] marks an approval used before its call runs, so
// no approval runs a call twice.
//
// # The approval page
//
// [Pages] serves one page per request at [DefaultPath] + approval ID, on
// the authorization server's origin so it shares the server's sign-in
// session ([Pages.URL] builds the address from an auth_req_id; an MCP
// URL-mode elicitation or the console points the user there). The page
//
//   - sends a browser that is not signed in to the server's sign-in page
//     and back ([authserver.Server.SignInURL]);
//   - refuses a user other than the one the request names, without
//     saying who that is;
//   - shows the binding message, the agent (client) asking, what the
//     token will grant, and each authorization detail field by field: for
//     type agenthost_tool_call the tool, the server, the arguments as
//     indented JSON in their original order and number spelling, with
//     control and format characters (bidirectional overrides among them)
//     shown as \u escapes, and the arguments' SHA-256, which the page
//     checks against the arguments;
//   - takes one decision, approve or deny, by a form whose CSRF token is
//     bound to the sign-in session and to the request
//     ([authserver.Server.ApprovalCSRFToken]); a request is decided once,
//     and an expired, decided or unknown one says so.
//
// Pages are html/template with inline CSS (the look of the authorization
// server's own pages), no scripts and no external assets, sent with
// no-store caching, X-Frame-Options DENY, Referrer-Policy no-referrer
// and a Content-Security-Policy of default-src 'none'.
//
// Package consenttest drives the page the way a person's browser would.
package consent
