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
// and PKCE (S256), a fresh state kept in the console's store and bound to
// that browser by the CSRF cookie of credentials/authserver/userauth, and
// comes back to [RedirectURI]. The console checks the state (once), the
// browser and the issuer (RFC 9207), exchanges the code, reads the user
// from the userinfo endpoint, revokes the access token (it keeps none)
// and starts a session.
//
// # Sessions and the store
//
// The console keeps its state in a [store.KV] (Config.Store; the host
// gives its own store), under namespaces of its own:
//
//   - console.keys: the key that seals the cookies, under "session": 32
//     random bytes, written once with an IfAbsent write, so that consoles
//     starting at once on one store end with the same key. It is read on
//     first use, so a console starts while its store is down.
//   - console.sessions: each session, as JSON {user, name, admin,
//     signed_in, expires}, under the SHA-256 of its user and the SHA-256
//     of its ID, with the session's remaining life as the record's TTL. A
//     user keeps at most 100 sessions; a new one ends their oldest.
//   - console.logins: each sign-in in progress (PKCE verifier, browser
//     binding, where to go next), under the SHA-256 of its state, for 10
//     minutes. It is taken once: read, then deleted at the version read,
//     so that of two consoles taking one state only one succeeds. At most
//     10000 are kept; beyond it a new one ends a random other.
//
// The browser's cookie ([CookieName], sealed by userauth.Sessions;
// HttpOnly, SameSite=Lax, Path=/, Secure and "__Host-" with https) only
// names a session. Each request checks that the session is still kept,
// for the cookie's user and not expired, and that its user may still sign
// in ([UserSource]: a revocation of the user's credentials ends it);
// whether the user is an admin is read from Config.Admins on each request.
// Signing out deletes the session from the store. So the consoles of
// hosts sharing one store (several hosts behind a load balancer, with or
// without sticky sessions) are one console: a browser signed in at one
// is signed in at all, a sign-in started at one completes at another, a
// sign-out at one ends the session at all, and a restart signs nobody
// out. Without Config.Store the console keeps all of it in memory of its
// own: a restart ends every session, and a session is known to this
// console only.
//
// A store that fails (unavailable) makes the console answer 503 with a
// page that says to try again, never a page that shows the error, and
// loses nothing it can keep: a session is not ended by a request whose
// read failed (the browser is neither signed in nor out until the store
// answers), a sign-in in progress whose read failed is not taken (its
// callback completes once the store is back), and a sign-out
// that could not be done says so and keeps the cookie. A sign-in whose
// state was taken but whose session could not be saved must start again.
// A browser without a session cookie is signed out whatever the store
// holds.
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
