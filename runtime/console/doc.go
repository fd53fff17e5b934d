// Package console is the host's web console: server-rendered pages, served
// at [Path] on the origin of the host's authorization server, that show
// the agents, their tasks, the approval requests waiting for users, the
// audit log and the trust the host holds, and let operators quarantine and
// release agents. Everything it shows and does goes through a [Backend],
// which the host implements; the console holds no state of the host.
//
// # Signing in
//
// The console is an OAuth client of the host's own authorization server
// (Config.ClientID, a public client): a browser without a console session
// is sent to the authorization endpoint with the authorization code grant
// and PKCE (S256), a fresh state kept here and bound to that browser by
// the CSRF cookie of credentials/authserver/userauth, and comes back to
// [RedirectURI]. The console checks the state (once), the browser and the
// issuer (RFC 9207), exchanges the code, reads the user from the userinfo
// endpoint, revokes the access token (it keeps none) and starts a session.
//
// Sessions are kept in memory: the browser's cookie ([CookieName], sealed
// by userauth.Sessions; HttpOnly, SameSite=Lax, Path=/, Secure and
// "__Host-" with https) only names one. Each request checks that the
// session is still kept and that its user may still sign in
// ([UserSource]: a revocation of the user's credentials ends it). Signing
// out ends the session here. A restart ends every session, and a session
// is known only to the host that made it: several hosts behind one load
// balancer need it to keep each browser on one host.
//
// # Who sees what
//
// The users named in Config.Admins (console.admins) see every page: the
// agents (identity, attestation evidence, SVID expiry, state, restarts)
// with a quarantine or release form, every task and approval request, the
// audit log and the trust page. Any other signed-in user sees the tasks
// that act for them and their own approval requests, and gets 403 for the
// rest. A task the viewer may not see is answered as unknown.
//
// # Pages
//
//   - Agents: [AgentSource]; quarantine and release take a reason, which
//     the audit record keeps with the admin's name.
//   - Tasks: the running and recent tasks ([TaskSource]); a running task's
//     page follows its events as server-sent events, read by the one
//     script the console has (static/live.js), which sets text only.
//   - Approvals: each request links to the authorization server's approval
//     page, where only the request's user can decide (package consent).
//   - Audit: a search by agent, user, action, transaction and decision,
//     newest first; the latest signed checkpoint and whether the whole log
//     verifies; one transaction's chain drawn as SVG (user → agents →
//     tools, each edge marked allow, deny or approval) with its records.
//   - Trust: the trust domain's authorities with their slots and validity,
//     the authorization server's signing keys and when they rotate, the
//     federated trust domains.
//
// # Security
//
// Pages are html/template with embedded assets and no inline script or
// style. Every response carries a Content-Security-Policy of default-src
// 'self' (no inline code, form-action 'self', frame-ancestors 'none'),
// X-Content-Type-Options nosniff, X-Frame-Options DENY, Referrer-Policy
// no-referrer and no-store caching (HSTS with https). Every form is a POST
// carrying the session's CSRF token ([userauth.Sessions.SessionCSRFToken]);
// one without it, or with another session's, changes nothing (403).
// Text the console did not write (names, task input and events, audit
// fields) is escaped by the templates and shown with invisible and
// reordering characters written out ([consent.Visible]).
package console
