package wimse

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// maxWPTSize caps the compact WPT accepted.
const maxWPTSize = 16 << 10

// WPTOptions are the optional inputs of [MintWPT].
type WPTOptions struct {
	// AccessToken is the OAuth access token sent with the request (the
	// token of an Authorization: Bearer or DPoP header); the WPT binds it
	// through ath.
	AccessToken string
	// TxnToken is the Txn-Token sent with the request; the WPT binds it
	// through tth.
	TxnToken string
	// OtherTokens maps the name of each further header carrying a context
	// token to its value; the WPT binds them through oth (names are
	// lowercased, values trimmed). Authorization, Txn-Token and the WIMSE
	// headers cannot be named.
	OtherTokens map[string]string
	// Lifetime is exp minus now; zero means DefaultProofLifetime. At most
	// MaxProofLifetime.
	Lifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// wptClaims is the claims set of a WPT (SPECS.md §8.3). There is no iss
// and no iat.
type wptClaims struct {
	Audience    string            `json:"aud"`           // REQUIRED: the target URI
	Expiry      int64             `json:"exp"`           // REQUIRED
	ID          string            `json:"jti"`           // REQUIRED, ≥ 128 random bits
	WITHash     string            `json:"wth"`           // REQUIRED: hash of the WIT
	AccessHash  string            `json:"ath,omitempty"` // REQUIRED with an access token
	TxnHash     string            `json:"tth,omitempty"` // REQUIRED with a Txn-Token
	OtherHashes map[string]string `json:"oth,omitempty"` // REQUIRED with other tokens
}

// MintWPT returns a Workload Proof Token (draft-ietf-wimse-wpt-02 as
// digested in SPECS.md §8.3) for one request to aud, signed by key, the
// private key of wit's cnf.jwk.
//
// The header is alg (which must equal cnf.jwk.alg) and typ wpt+jwt; the
// claims are aud, exp (now plus the lifetime), a random jti of 130 bits,
// wth (the hash of wit) and, for each token in opts, ath, tth or oth.
// aud is normally [TargetURI] of the request URL. A key that is not the
// WIT's confirmation key, a lifetime over MaxProofLifetime or an empty aud
// wraps [ErrConfig]. wit is read, not verified: it is the caller's own.
func MintWPT(ctx context.Context, key crypto.Signer, wit, aud string, opts WPTOptions) (string, error) {
	p, err := inspectOwnWIT(wit, key)
	if err != nil {
		return "", fmt.Errorf("wimse: mint wpt: %w", err)
	}
	return mintWPT(ctx, key, p, aud, opts)
}

func mintWPT(ctx context.Context, key crypto.Signer, p *presented, aud string, opts WPTOptions) (string, error) {
	if alg, err := jose.AlgorithmForKey(key.Public()); err != nil || alg != p.alg {
		return "", fmt.Errorf("%w: mint wpt: key signs %s, the WIT's cnf.jwk.alg is %s", ErrConfig, alg, p.alg)
	}
	if aud == "" {
		return "", fmt.Errorf("%w: mint wpt: no audience", ErrConfig)
	}
	lifetime := opts.Lifetime
	if lifetime == 0 {
		lifetime = DefaultProofLifetime
	}
	if lifetime < time.Second || lifetime > MaxProofLifetime {
		return "", fmt.Errorf("%w: mint wpt: lifetime %s outside [1s, %s]", ErrConfig, lifetime, MaxProofLifetime)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	c := wptClaims{
		Audience: aud,
		Expiry:   now().Add(lifetime).Unix(),
		ID:       rand.Text(),
		WITHash:  p.hash,
	}
	if opts.AccessToken != "" {
		c.AccessHash = TokenHash(opts.AccessToken)
	}
	if opts.TxnToken != "" {
		c.TxnHash = TokenHash(opts.TxnToken)
	}
	for name, value := range opts.OtherTokens {
		n := strings.ToLower(strings.TrimSpace(name))
		if n == "" || !isToken(n) || isReservedHeader(n) {
			return "", fmt.Errorf("%w: mint wpt: other token header %q", ErrConfig, name)
		}
		if c.OtherHashes == nil {
			c.OtherHashes = make(map[string]string, len(opts.OtherTokens))
		}
		if _, dup := c.OtherHashes[n]; dup {
			return "", fmt.Errorf("%w: mint wpt: other token header %q given twice", ErrConfig, n)
		}
		c.OtherHashes[n] = TokenHash(strings.TrimSpace(value))
	}
	tok, err := jose.Sign(ctx, key, "", jose.TypWPT, &c)
	if err != nil {
		return "", fmt.Errorf("wimse: mint wpt: %w", err)
	}
	return tok, nil
}

// WPTExpectations describe the request a WPT arrived with.
type WPTExpectations struct {
	// Audience is the target this server expects (see
	// [Verifier.Audience]). Required.
	Audience string
	// AccessToken is the access token presented with the request, or "".
	AccessToken string
	// TxnToken is the Txn-Token presented with the request, or "".
	TxnToken string
	// OtherTokens maps the lowercase name of each other-token header
	// present on the request (those this server understands) to its
	// value. oth must bind exactly these.
	OtherTokens map[string]string
}

// WPT is a verified Workload Proof Token.
type WPT struct {
	// ID is the jti claim.
	ID string
	// Audience is the aud claim.
	Audience string
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
	// AccessTokenHash, TxnTokenHash and OtherTokenHashes are the ath, tth
	// and oth claims; empty when absent.
	AccessTokenHash  string
	TxnTokenHash     string
	OtherTokenHashes map[string]string
}

// VerifyWPT checks a Workload Proof Token presented with wit, which
// [Verifier.VerifyWIT] has verified, against the request it came with
// (SPECS.md §8.3).
//
// Through credentials/jose it checks the compact form, typ wpt+jwt
// ([ErrWrongType]), that alg is exactly wit.Alg and the signature verifies
// with wit.Key ([ErrSignature]; no other key is ever tried), exp present
// and not passed ([ErrExpired]). It then refuses a lifetime beyond
// Config.MaxProofLifetime ([ErrExpired]); a missing or oversized jti; a wth
// other than the WIT's hash, an ath, tth or oth that does not match the
// tokens in want, that is missing for a token presented, or that binds a
// token not presented ([ErrTokenBinding]); an aud other than
// want.Audience, compared as [TargetURI] normalises it ([ErrWrongAudience]);
// and last, a jti already used ([ErrReplayed]). Errors wrap
// [ErrInvalidProof], except a failure of the replay cache itself and a WIT
// that has expired since it was verified ([ErrInvalidWIT], [ErrExpired]).
func (v *Verifier) VerifyWPT(ctx context.Context, wpt string, wit *WIT, want WPTExpectations) (*WPT, error) {
	if wit == nil || wit.Key == nil || wit.Alg == "" || wit.Hash == "" {
		return nil, fmt.Errorf("%w: verify wpt: no verified WIT", ErrConfig)
	}
	if want.Audience == "" {
		return nil, fmt.Errorf("%w: verify wpt: no expected audience", ErrConfig)
	}
	now := v.now()
	if !now.Before(wit.ExpiresAt.Add(v.leeway)) {
		return nil, witError(ErrExpired, "wit expired at %s", wit.ExpiresAt.UTC().Format(time.RFC3339))
	}
	key := wit.Key
	t, err := jose.Verify(ctx, wpt, jose.VerifyOptions{
		Types:        []jose.Typ{jose.TypWPT},
		Algorithms:   []jose.Alg{wit.Alg},
		Keys:         func(context.Context, string) (crypto.PublicKey, error) { return key, nil },
		Now:          v.now,
		Leeway:       v.leeway,
		MaxTokenSize: maxWPTSize,
	})
	if err != nil {
		return nil, joseError(ErrInvalidProof, "wpt", err)
	}
	if t.ExpiresAt.After(now.Add(v.maxLifetime + v.leeway)) {
		return nil, proofError(ErrExpired, "wpt lifetime beyond %s", v.maxLifetime)
	}
	var members map[string]json.RawMessage
	if err := t.Decode(&members); err != nil {
		return nil, proofError(nil, "wpt claims: %w", err)
	}
	w := &WPT{ID: t.ID, ExpiresAt: t.ExpiresAt}
	if w.ID == "" || len(w.ID) > maxProofIDLen {
		return nil, proofError(nil, "wpt jti missing or longer than %d bytes", maxProofIDLen)
	}
	if len(t.Audience) != 1 {
		return nil, proofError(ErrWrongAudience, "wpt aud must hold exactly one value, has %d", len(t.Audience))
	}
	w.Audience = t.Audience[0]
	wth, err := stringClaim(members, "wth")
	if err != nil {
		return nil, err
	}
	if wth == "" {
		return nil, proofError(ErrTokenBinding, "wpt has no wth")
	}
	if !hashEqual(wth, wit.Hash) {
		return nil, proofError(ErrTokenBinding, "wth does not match the presented WIT")
	}
	if w.AccessTokenHash, err = checkBinding(members, "ath", "an access token", want.AccessToken); err != nil {
		return nil, err
	}
	if w.TxnTokenHash, err = checkBinding(members, "tth", "a Txn-Token", want.TxnToken); err != nil {
		return nil, err
	}
	if w.OtherTokenHashes, err = checkOtherBindings(members, want.OtherTokens); err != nil {
		return nil, err
	}
	if !audienceMatches(w.Audience, want.Audience) {
		return nil, proofError(ErrWrongAudience, "wpt aud %q, want %q", truncate(w.Audience), truncate(want.Audience))
	}
	if err := v.checkReplay(ctx, "wpt", wit, w.ID, w.ExpiresAt); err != nil {
		return nil, err
	}
	return w, nil
}

// checkReplay records a proof's id in the replay cache until its expiry
// plus the leeway (the longest time it could still be accepted).
func (v *Verifier) checkReplay(ctx context.Context, kind string, wit *WIT, id string, exp time.Time) error {
	err := v.replay.CheckAndStore(ctx, replayKey(kind, wit.Subject.String(), id), exp.Add(v.leeway))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrReplayed):
		return proofError(ErrReplayed, "%s id seen before", kind)
	}
	return fmt.Errorf("wimse: replay cache: %w", err)
}

// stringClaim returns a string claim; "" when absent.
func stringClaim(members map[string]json.RawMessage, name string) (string, error) {
	raw, ok := members[name]
	if !ok {
		return "", nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", proofError(nil, "wpt %s is not a string", name)
	}
	return s, nil
}

// checkBinding checks the hash claim of one token kind: required and equal
// to the token's hash when the token is presented, absent otherwise.
func checkBinding(members map[string]json.RawMessage, claim, what, token string) (string, error) {
	got, err := stringClaim(members, claim)
	if err != nil {
		return "", err
	}
	_, present := members[claim]
	switch {
	case token == "" && present:
		return "", proofError(ErrTokenBinding, "wpt %s binds %s the request does not carry", claim, what)
	case token == "":
		return "", nil
	case !present:
		return "", proofError(ErrTokenBinding, "request carries %s but the wpt has no %s", what, claim)
	case !hashEqual(got, TokenHash(token)):
		return "", proofError(ErrTokenBinding, "wpt %s does not match the token presented", claim)
	}
	return got, nil
}

// checkOtherBindings checks oth against the other tokens presented: the
// same set of header names, each with the hash of its trimmed value. An
// entry for a header the verifier does not understand, or that is not
// presented, is refused (SPECS.md §8.3).
func checkOtherBindings(members map[string]json.RawMessage, tokens map[string]string) (map[string]string, error) {
	raw, present := members["oth"]
	var oth map[string]string
	if present {
		if err := json.Unmarshal(raw, &oth); err != nil || oth == nil {
			return nil, proofError(nil, "wpt oth is not an object of strings")
		}
	}
	for name, hash := range oth {
		value, ok := tokens[name]
		if !ok {
			return nil, proofError(ErrTokenBinding, "wpt oth entry %q is not understood or not presented", truncate(name))
		}
		if !hashEqual(hash, TokenHash(strings.TrimSpace(value))) {
			return nil, proofError(ErrTokenBinding, "wpt oth %q does not match the token presented", name)
		}
	}
	for name := range tokens {
		if _, ok := oth[name]; !ok {
			return nil, proofError(ErrTokenBinding, "request carries a %s token but the wpt oth does not bind it", name)
		}
	}
	return oth, nil
}

func hashEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
