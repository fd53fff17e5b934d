package txntoken

import "errors"

// Sentinel errors. Every error the package returns wraps one of them (a
// verification failure also wraps the credentials/jose sentinel behind it),
// so callers test with errors.Is. Messages never hold the token.
var (
	// ErrInvalid reports a token that is not a well-formed Txn-Token: not a
	// compact JWS, a required claim missing or empty, a claim of the wrong
	// JSON type, exp not after iat. Mint, Sign, CallContext and ArgsDigest
	// return it for claims or arguments they cannot use.
	ErrInvalid = errors.New("txntoken: invalid transaction token")

	// ErrWrongType reports a typ header other than txntoken+jwt, or none:
	// an access token, JWT-SVID, ID token or WIT is never a Txn-Token
	// (SPECS.md X.1, RFC 8725 §3.11).
	ErrWrongType = errors.New("txntoken: not a transaction token (typ)")

	// ErrSignature reports a signature that does not verify, a kid no
	// trusted key matches, or an algorithm that is not allowed (none, HS*).
	ErrSignature = errors.New("txntoken: bad signature")

	// ErrAudience reports an aud claim other than the verifier's trust
	// domain (SPECS.md §6.5).
	ErrAudience = errors.New("txntoken: issued for another trust domain")

	// ErrIssuer reports an iss claim other than VerifyOptions.Issuer.
	ErrIssuer = errors.New("txntoken: wrong issuer")

	// ErrExpired reports a token whose exp has passed (allowing the
	// configured leeway), and, wrapped with ErrReplacement, a replacement
	// request presenting an expired token.
	ErrExpired = errors.New("txntoken: expired")

	// ErrNotYetValid reports an iat (or nbf) later than now plus leeway.
	ErrNotYetValid = errors.New("txntoken: not yet valid")

	// ErrCallMismatch reports a tool call that the token's tctx does not
	// describe: another tool, other arguments, or another value of a
	// declared field.
	ErrCallMismatch = errors.New("txntoken: call does not match the transaction context")

	// ErrReplacement reports a replacement Txn-Token that would change txn,
	// sub or aud, widen scope, change or drop a tctx member, or replace an
	// expired token (SPECS.md §6.6).
	ErrReplacement = errors.New("txntoken: replacement not allowed")

	// ErrNoToken reports a request without a Txn-Token header.
	ErrNoToken = errors.New("txntoken: no Txn-Token header")

	// ErrConfig reports an Issuer Config, signing key or VerifyOptions
	// that cannot be used.
	ErrConfig = errors.New("txntoken: invalid configuration")
)

// truncate shortens s for an error message.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
