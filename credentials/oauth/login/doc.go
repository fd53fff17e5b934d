// Package login signs a person in from a command line: the OAuth 2.0
// authorization code flow for native apps (RFC 8252) with PKCE (RFC 7636,
// S256 only), built on golang.org/x/oauth2, and the files that keep the
// sign-in between commands.
//
// # Signing in
//
// [Client.Login] finds the authorization server's endpoints (RFC 8414 or
// OpenID Connect Discovery, unless [Config.Metadata] gives them), listens on
// a loopback redirect URI on a port the system picks
// (http://127.0.0.1:<port>/callback, RFC 8252 §7.3), opens the authorization
// URL in the user's browser ([Config.OpenBrowser]) and prints it as well,
// and waits up to [Config.Timeout] for the redirect. The redirect's state
// must be the one sent, and its iss, when present or promised by the
// server's metadata, the issuer (RFC 9207); an error redirect ends the sign-in
// with an [*AuthorizationError]. The code is then exchanged for tokens with
// the PKCE verifier. [Config.Resource], when set, is sent as the RFC 8707
// resource parameter with the authorization and the token request, so the
// access token's audience is exactly that resource.
//
//	c, err := login.New(login.Config{Issuer: issuer, ClientID: "agenthost-cli",
//		Scopes: []string{"openid", "offline_access", "tasks:run"}, Resource: issuer + "/tasks", Out: os.Stderr})
//	sess, err := c.Login(ctx)
//	err = store.Save(sess)
//
// # Keeping the sign-in
//
// A [Session] holds what a later command needs: the issuer, the client, the
// endpoints, the access, refresh and ID tokens and the access token's expiry.
// A [Store] keeps one session per issuer in a directory only its owner can
// use (0700; files 0600), by default under [os.UserConfigDir]/agenthost,
// each in a file named by the SHA-256 of the issuer; it refuses a file
// others can read.
//
// # Using it
//
// [Client.TokenSource] returns the session's access token while it is
// valid, refreshes it with the refresh token when it is not (the server may
// rotate the refresh token: the new one is saved before the access token is
// returned), and reports [ErrExpired] when the refresh token is refused: the
// user must sign in again. [Client.Revoke] revokes the refresh token at the
// server's revocation endpoint (RFC 7009) when signing out.
//
// [Session.ClaimsInsecure] reads who is signed in from the ID token (or the
// access token) without verifying anything: for display only, never for a
// decision.
package login
