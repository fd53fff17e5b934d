// Package userauth owns the people side of the embedded authorization
// server: the configured users and their password hashes, the browser
// session cookie, the CSRF token of the login and consent forms, and the
// HTML of the login, consent and error pages. The authorization endpoint
// in package authserver calls it; userauth knows nothing of OAuth requests.
//
// # Passwords
//
// [HashPassword] makes an argon2id hash in PHC string form with the OWASP
// parameters (m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte hash).
// [VerifyPassword] accepts argon2id hashes with bounded parameters and
// bcrypt hashes ($2a$, $2b$, $2y$); [CheckHash] validates a hash without a
// password. A malformed hash wraps [ErrBadHash]; a wrong password is
// (false, nil). Parameters are checked before any work, so a hash such as
// m=4294967295 is refused instead of allocating memory.
//
// # Hashing limit
//
// Each argon2id check holds its memory (19 MiB with the parameters above)
// while it runs, so a [Limiter] bounds how many run at once: by default
// twice GOMAXPROCS ([DefaultMaxHashes]). A check beyond the bound waits
// for a slot, at most [DefaultHashWait] and never beyond its context, then
// fails with [ErrBusy] without checking the password. [Limiter.Verify] is
// [VerifyPassword] under the limit; [DefaultLimiter] is one shared by the
// whole process.
//
// # Users
//
// A [Directory] holds the configured [User] values. [Directory.Authenticate]
// spends the same argon2id work for an unknown name as for a known one and
// returns [ErrBadCredentials] for both, so neither its answer nor its
// timing tells which names exist. It hashes under the directory's
// [Limiter] ([WithLimiter]; [DefaultLimiter] otherwise) and returns
// [ErrBusy] when no slot frees in time.
//
// # Sessions
//
// [Sessions] keeps the signed-in user in a cookie sealed with AES-256-GCM.
// The cookie is HttpOnly, SameSite=Lax and Path=/; with
// [SessionConfig.Secure] it is also Secure and carries the "__Host-" name
// prefix, which keeps other hosts from planting it. [Sessions.Get] returns
// [ErrNoSession] for a cookie that is absent, altered, expired or sealed
// with another key. The sealing key and the two CSRF keys are derived
// from [SessionConfig.Key] with HKDF-SHA256 under distinct labels.
//
// Forms shown in a session (the consent form) carry a token bound to that
// session: [Sessions.SessionCSRFToken] is the HMAC-SHA256 of the session's
// ID, which never leaves the sealed cookie, and [Sessions.CheckSessionCSRF]
// refuses a token of any other session ([ErrCSRF]), so neither a token
// taken from another session nor a planted cookie helps a forged post.
//
// The login form is shown before there is a session: [Sessions.CSRFToken]
// and [Sessions.CheckCSRF] protect it with a per-browser random cookie and
// a token that is its HMAC-SHA256; a form posted from another site carries
// no valid token ([ErrCSRF]). Without Secure that cookie has no "__Host-"
// prefix, so a sibling host able to set cookies for the domain could plant
// one (to sign the browser in to an account of its choosing); run the
// issuer on https to close that gap.
//
// # Pages
//
// [RenderLogin], [RenderConsent] and [RenderError] write self-contained
// pages from embedded html/template files: inline CSS, no scripts, no
// external assets, every value escaped. Each response carries no-store
// caching, X-Frame-Options DENY, Referrer-Policy no-referrer and a
// Content-Security-Policy of default-src 'none' with inline styles,
// form-action 'self' and frame-ancestors 'none'.
package userauth
