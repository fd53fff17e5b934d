// Package jose mints and verifies the JSON Web Tokens agenthost handles, with
// an explicit `typ` on every token so that no kind of token is accepted in
// place of another (SPECS.md X.1, RFC 8725 §3.11). It is the only package of
// the module that imports lestrrat-go/jwx.
//
// # Signing
//
// [Sign] picks the JWS algorithm from the key ([AlgorithmForKey]: ES256 for
// P-256) and writes a protected header holding alg, kid and typ only;
// [SignWithHeader] adds an embedded public JWK (DPoP, RFC 9449 §4.2) or other
// parameters when a profile asks for them.
//
// # Verification
//
// [Verify] applies the baseline checks of SPECS.md X.4 in a fixed order:
// compact form and size, header (duplicate or unknown parameters, crit),
// algorithm (asymmetric only; none and HS* are never accepted), typ, key
// lookup by kid through [VerifyOptions.Keys] (a key carried in the token is
// used only when [VerifyOptions.AllowEmbeddedJWK] says so), signature, then
// the registered claims iss, aud, exp, nbf and iat. Each failure wraps one of
// the exported sentinel errors, so callers test with errors.Is.
//
// # Keys
//
// [PublicJWK], [Thumbprint] (RFC 7638), [MarshalKeySet] and [ParseKeySet]
// convert between crypto public keys and JWK / JWK Set documents.
package jose
