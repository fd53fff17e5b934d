package sdk

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/txntoken/canonjson"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// A tool plugin checks every call's Transaction Token
// (draft-ietf-oauth-transaction-tokens, editor's copy after -08; SPECS.md
// §6.4–6.5) with the standard library, the plugin contract and the host's
// canonical JSON (canonjson, itself standard library only). What is
// checked, in order:
//
//   - the compact JWS form (three base64url parts, no padding, at most
//     MaxTxnTokenSize bytes), a header without duplicate members or crit;
//   - typ txntoken+jwt (case-insensitively, with or without
//     "application/"): an access token (at+jwt), ID token, JWT-SVID or WIT
//     is refused;
//   - alg ES256, the one algorithm agenthost's authorization server signs
//     with, and a kid naming a key of the JWK Set the host sent at
//     ListTools (the key is never taken from the token);
//   - the ECDSA P-256 signature;
//   - aud equal to the trust domain the host named; exp not passed, iat
//     and nbf not in the future (TxnTokenLeeway of clock skew); exp after
//     iat; txn, sub, scope and req_wl present as non-empty strings;
//   - then the call: tctx.tool is "<plugin>/<tool>", tctx.args_sha256 is
//     the SHA-256 of the canonical JSON of the arguments in hand, and each
//     business field the tool declares (Tool.TxnFields) has the same value
//     in the arguments as in tctx (or is absent from both).

// MaxTxnTokenSize bounds the Transaction Token a plugin accepts.
const MaxTxnTokenSize = 16 << 10

// TxnTokenLeeway is the clock skew allowed on exp, iat and nbf.
const TxnTokenLeeway = 5 * time.Second

// Errors of the Transaction Token check. Every refusal wraps one of them
// (test with errors.Is); messages never hold the token.
var (
	// ErrNoTxnToken: the call carries no Transaction Token, or the host has
	// sent no keys to check one with.
	ErrNoTxnToken = errors.New("sdk: no transaction token")
	// ErrTxnTokenInvalid: the token is not a valid Transaction Token of
	// this trust domain: malformed, another typ (an access token, say),
	// another algorithm, an unknown key, a bad signature, another
	// audience, expired or not yet valid, or a required claim missing.
	ErrTxnTokenInvalid = errors.New("sdk: invalid transaction token")
	// ErrTxnCallMismatch: the token is valid but was issued for another
	// call: another tool, other arguments, or another value of a declared
	// field.
	ErrTxnCallMismatch = errors.New("sdk: the call does not match its transaction token")
)

// TxnClaims are the verified claims of a call's Transaction Token.
type TxnClaims struct {
	// Issuer is iss, when the token has one.
	Issuer string
	// Audience is aud: the trust domain.
	Audience string
	// Txn is the transaction's id, shared by every call made for one user
	// request.
	Txn string
	// Subject is sub: the user the transaction is for (or, for a task no
	// user started, the host's SPIFFE ID).
	Subject string
	// Scope is the transaction's purpose, space-delimited scope tokens.
	Scope string
	// RequestingWorkload is req_wl: the SPIFFE ID of the workload that
	// asked for the token (the calling agent; the host for an MCP client).
	RequestingWorkload string
	IssuedAt           time.Time
	ExpiresAt          time.Time
	// TransactionContext is tctx and RequestContext rctx, by member, each
	// value as it appears in the token.
	TransactionContext map[string]json.RawMessage
	RequestContext     map[string]json.RawMessage
}

// txnKeys is what the host sent at ListTools to check tokens with.
type txnKeys struct {
	keys        map[string]*ecdsa.PublicKey
	trustDomain string
	plugin      string
}

// txnVerifier checks the Transaction Tokens of one tool plugin's calls.
type txnVerifier struct {
	now    func() time.Time
	mu     sync.RWMutex
	cur    *txnKeys
	fields map[string][]string // by tool name
}

// setKeys installs what a ListTools request carries. An empty JWK Set
// leaves the current keys (a host without keys yet sends none).
func (v *txnVerifier) setKeys(req *pluginpb.ListProvidedToolsRequest) error {
	if req.GetTxnTokenJwks() == "" {
		return nil
	}
	keys, err := parseJWKS([]byte(req.GetTxnTokenJwks()))
	if err != nil {
		return err
	}
	if req.GetTrustDomain() == "" || req.GetPluginName() == "" {
		return errors.New("sdk: the host sent transaction token keys without a trust domain or a plugin name")
	}
	v.mu.Lock()
	v.cur = &txnKeys{keys: keys, trustDomain: req.GetTrustDomain(), plugin: req.GetPluginName()}
	v.mu.Unlock()
	return nil
}

func (v *txnVerifier) keys() *txnKeys {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.cur
}

// verifyCall checks token and that it was issued for this call of tool
// with args.
func (v *txnVerifier) verifyCall(token, tool string, args json.RawMessage) (*TxnClaims, error) {
	k := v.keys()
	if k == nil {
		return nil, fmt.Errorf("%w: the host sent no keys to check transaction tokens with", ErrNoTxnToken)
	}
	if token == "" {
		return nil, fmt.Errorf("%w: the call to %s carries none; a tool runs only for a call the host issued a token for", ErrNoTxnToken, truncate(tool))
	}
	now := time.Now
	if v.now != nil {
		now = v.now
	}
	c, err := verifyTxnToken(token, k, now())
	if err != nil {
		return nil, err
	}
	if err := checkCall(c, k.plugin+"/"+tool, args, v.fields[tool]); err != nil {
		return nil, err
	}
	return c, nil
}

// parseJWKS reads the P-256 keys of a JWK Set (RFC 7517 §5) by kid. Keys
// of another type, curve, algorithm or use are skipped; a set with no key
// this SDK can use is an error.
func parseJWKS(data []byte) (map[string]*ecdsa.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			Kid string `json:"kid"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("sdk: the transaction token keys are not a JWK Set: %v", err)
	}
	out := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") || (k.Use != "" && k.Use != "sig") || k.Kid == "" {
			continue
		}
		x, errX := base64.RawURLEncoding.Strict().DecodeString(k.X)
		y, errY := base64.RawURLEncoding.Strict().DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("sdk: transaction token key %q has malformed coordinates", truncate(k.Kid))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("sdk: transaction token key %q: %v", truncate(k.Kid), err)
		}
		out[k.Kid] = pub
	}
	if len(out) == 0 {
		return nil, errors.New("sdk: the transaction token keys hold no ES256 (P-256) signing key")
	}
	return out, nil
}

// verifyTxnToken checks the token itself (see the list at the top of the
// file) at time now.
func verifyTxnToken(token string, k *txnKeys, now time.Time) (*TxnClaims, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrTxnTokenInvalid, fmt.Sprintf(format, a...))
	}
	if len(token) > MaxTxnTokenSize {
		return nil, bad("larger than %d bytes", MaxTxnTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, bad("not a compact JWS")
	}
	dec := base64.RawURLEncoding.Strict()
	rawHeader, err1 := dec.DecodeString(parts[0])
	payload, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, bad("not base64url")
	}
	header, err := jsonObject(rawHeader)
	if err != nil {
		return nil, bad("header: %v", err)
	}
	if _, ok := header["crit"]; ok {
		return nil, bad("the header has crit extensions")
	}
	typ, _ := stringMember(header, "typ")
	if t := strings.ToLower(typ); t != pluginpb.TxnTokenType && t != "application/"+pluginpb.TxnTokenType {
		return nil, bad("typ %q is not %s: not a transaction token", truncate(typ), pluginpb.TxnTokenType)
	}
	if alg, _ := stringMember(header, "alg"); alg != "ES256" {
		return nil, bad("alg %q is not ES256", truncate(alg))
	}
	kid, _ := stringMember(header, "kid")
	pub, ok := k.keys[kid]
	if !ok {
		return nil, bad("kid %q is not a key the host sent", truncate(kid))
	}
	if len(sig) != 64 {
		return nil, bad("bad signature")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, bad("bad signature")
	}
	claims, err := jsonObject(payload)
	if err != nil {
		return nil, bad("claims: %v", err)
	}
	c := &TxnClaims{}
	for _, s := range []struct {
		name     string
		dst      *string
		required bool
	}{
		{"iss", &c.Issuer, false},
		{"aud", &c.Audience, true},
		{"txn", &c.Txn, true},
		{"sub", &c.Subject, true},
		{"scope", &c.Scope, true},
		{"req_wl", &c.RequestingWorkload, true},
	} {
		v, err := stringMember(claims, s.name)
		switch {
		case err != nil:
			return nil, bad("%s is not a string", s.name)
		case v == "" && s.required:
			return nil, bad("%s is missing", s.name)
		}
		*s.dst = v
	}
	iat, ok, err := dateMember(claims, "iat")
	if err != nil || !ok {
		return nil, bad("iat is missing or not a NumericDate")
	}
	exp, ok, err := dateMember(claims, "exp")
	if err != nil || !ok {
		return nil, bad("exp is missing or not a NumericDate")
	}
	nbf, hasNBF, err := dateMember(claims, "nbf")
	if err != nil {
		return nil, bad("nbf is not a NumericDate")
	}
	switch {
	case !exp.After(iat):
		return nil, bad("exp is not after iat")
	case !now.Before(exp.Add(TxnTokenLeeway)):
		return nil, bad("expired at %s", exp.UTC().Format(time.RFC3339))
	case iat.After(now.Add(TxnTokenLeeway)):
		return nil, bad("issued in the future")
	case hasNBF && nbf.After(now.Add(TxnTokenLeeway)):
		return nil, bad("not valid before %s", nbf.UTC().Format(time.RFC3339))
	case c.Audience != k.trustDomain:
		return nil, bad("aud %q is not this trust domain %q", truncate(c.Audience), k.trustDomain)
	}
	c.IssuedAt, c.ExpiresAt = iat, exp
	for _, o := range []struct {
		name string
		dst  *map[string]json.RawMessage
	}{{"tctx", &c.TransactionContext}, {"rctx", &c.RequestContext}} {
		raw, ok := claims[o.name]
		if !ok {
			continue
		}
		m, err := jsonObject(raw)
		if err != nil {
			return nil, bad("%s is not a JSON object", o.name)
		}
		*o.dst = m
	}
	return c, nil
}

// checkCall reports whether c was issued for a call of tool (the host's
// name for it) with args, and each declared field of args matches tctx.
func checkCall(c *TxnClaims, tool string, args json.RawMessage, fields []string) error {
	mismatch := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrTxnCallMismatch, fmt.Sprintf(format, a...))
	}
	if got, err := stringMember(c.TransactionContext, pluginpb.TctxTool); err != nil || got != tool {
		return mismatch("the token is for tool %q, the call is to %q", truncate(got), truncate(tool))
	}
	digest, err := ArgsDigest(args)
	if err != nil {
		return mismatch("the arguments are not canonical JSON: %v", err)
	}
	if got, err := stringMember(c.TransactionContext, pluginpb.TctxArgsSHA256); err != nil || got != digest {
		return mismatch("the arguments differ from the ones the token was issued for")
	}
	if len(fields) == 0 {
		return nil
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(args, &in); err != nil {
		in = nil
	}
	for _, f := range fields {
		have, inArgs := in[f]
		want, inTctx := c.TransactionContext[f]
		if !inArgs && !inTctx {
			continue
		}
		switch {
		case inArgs && !inTctx:
			return mismatch("field %q is in the arguments but not in the transaction context", truncate(f))
		case inTctx && !inArgs:
			return mismatch("field %q is in the transaction context but not in the arguments", truncate(f))
		}
		a, errA := canonjson.Canonical(have)
		b, errB := canonjson.Canonical(want)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			return mismatch("field %q differs from the transaction context", truncate(f))
		}
	}
	return nil
}

// ArgsDigest returns what a Transaction Token's tctx.args_sha256 holds for
// a call with args: the lowercase hex SHA-256 of their canonical JSON
// (members sorted by name, no whitespace, strings re-encoded, numbers by
// exact decimal value, so 3, 3.0 and 3e0 are one value), empty args
// counting as {}; the digest credentials/txntoken.ArgsDigest computes on
// the host. Input two JSON readers could disagree about (duplicate member
// names, invalid UTF-8, unpaired surrogate escapes, trailing data, nesting
// beyond 128) is an error.
func ArgsDigest(args json.RawMessage) (string, error) {
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	c, err := canonjson.Canonical(args)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// jsonObject decodes one JSON object by member, refusing duplicate member
// names and anything canonjson.Canonical refuses.
func jsonObject(data []byte) (map[string]json.RawMessage, error) {
	if _, err := canonjson.Canonical(data); err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// stringMember returns member name of m as a string: "" when absent, an
// error when it is not a JSON string.
func stringMember(m map[string]json.RawMessage, name string) (string, error) {
	raw, ok := m[name]
	if !ok {
		return "", nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// dateMember returns member name of m as a NumericDate (RFC 7519 §2).
func dateMember(m map[string]json.RawMessage, name string) (time.Time, bool, error) {
	raw, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	var f float64
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' || json.Unmarshal(raw, &f) != nil || f > math.MaxInt32*1000 {
		return time.Time{}, true, fmt.Errorf("%s is not a NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
