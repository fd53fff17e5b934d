package txntoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// VerifyOptions says which Txn-Tokens [Verify] accepts.
type VerifyOptions struct {
	// Keys looks up the Txn-Token service's public key by kid; the key is
	// never taken from the token. Required.
	Keys jose.KeyFunc
	// TrustDomain is the verifier's trust domain: aud must equal it
	// exactly. Required.
	TrustDomain string
	// Issuer, when not empty, must equal iss exactly (a token without iss
	// is then refused).
	Issuer string
	// Algorithms lists the accepted alg values; empty means
	// jose.DefaultAlgorithms. none and HS* are never accepted.
	Algorithms []jose.Alg
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp, iat and nbf; zero allows
	// none.
	Leeway time.Duration
}

// Verify checks a Txn-Token and returns its claims (SPECS.md §6.5, X.4).
//
// It checks, in order: the compact JWS form and size; alg (asymmetric
// only); typ, which must be txntoken+jwt (compared as RFC 7515 §4.1.9 says:
// case-insensitively, with or without "application/"), so an access token
// (at+jwt), a JWT-SVID or ID token (JWT or no typ) or a WIT is refused with
// [ErrWrongType]; the signature, with the key opts.Keys returns for the kid
// ([ErrSignature]); iss when opts.Issuer is set ([ErrIssuer]); exp not
// passed ([ErrExpired]); iat and nbf not in the future ([ErrNotYetValid]);
// then that every required claim is present with its JSON type, claim
// names matched exactly ([ErrInvalid]); and last that aud is a single
// string equal to opts.TrustDomain ([ErrAudience]). Unknown claims are
// ignored. Errors also wrap the credentials/jose sentinel behind them, and
// never contain the token.
func Verify(ctx context.Context, token string, opts VerifyOptions) (*Claims, error) {
	if opts.Keys == nil {
		return nil, fmt.Errorf("%w: no verification keys", ErrConfig)
	}
	if opts.TrustDomain == "" {
		return nil, fmt.Errorf("%w: no trust domain", ErrConfig)
	}
	t, err := jose.Verify(ctx, token, jose.VerifyOptions{
		Types:       []jose.Typ{jose.TypTxnToken},
		Algorithms:  opts.Algorithms,
		Keys:        opts.Keys,
		Issuer:      opts.Issuer,
		OptionalExp: true, // a missing exp is reported below as ErrInvalid
		Now:         opts.Now,
		Leeway:      opts.Leeway,
	})
	if err != nil {
		return nil, joseError(err)
	}
	var members map[string]json.RawMessage
	if err := t.Decode(&members); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c, err := decodeClaims(t, members)
	if err != nil {
		return nil, err
	}
	if c.Audience != opts.TrustDomain {
		return nil, fmt.Errorf("%w: aud %q, want %q", ErrAudience, truncate(c.Audience), opts.TrustDomain)
	}
	return c, nil
}

// decodeClaims reads the claims from the payload's members, matching names
// exactly (encoding/json would also match "SUB" to sub) and checking each
// claim's JSON type, then checks the required ones.
func decodeClaims(t *jose.Token, members map[string]json.RawMessage) (*Claims, error) {
	var c Claims
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"iss", &c.Issuer},
		{"aud", &c.Audience},
		{"txn", &c.Txn},
		{"sub", &c.Subject},
		{"scope", &c.Scope},
		{"req_wl", &c.RequestingWorkload},
	} {
		raw, ok := members[s.name]
		if !ok {
			continue
		}
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, s.dst) != nil {
			return nil, fmt.Errorf("%w: %s is not a string", ErrInvalid, s.name)
		}
	}
	// jose has checked that iat and exp, when present, are NumericDates.
	if _, ok := members["iat"]; ok {
		c.IssuedAt = t.IssuedAt.Unix()
	}
	if _, ok := members["exp"]; ok {
		c.ExpiresAt = t.ExpiresAt.Unix()
	}
	for _, o := range []struct {
		name string
		dst  *Object
	}{
		{"tctx", &c.TransactionContext},
		{"rctx", &c.RequestContext},
	} {
		raw, ok := members[o.name]
		if !ok {
			continue
		}
		obj, err := parseObject(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, o.name, err)
		}
		*o.dst = obj
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// joseError maps a credentials/jose verification error to the package's
// sentinel, keeping the jose error in the chain.
func joseError(err error) error {
	var s error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("txntoken: verify: %w", err)
	case errors.Is(err, jose.ErrWrongType):
		s = ErrWrongType
	case errors.Is(err, jose.ErrInvalidSignature), errors.Is(err, jose.ErrUnknownKey),
		errors.Is(err, jose.ErrAlgorithm), errors.Is(err, jose.ErrUnsupportedKey):
		s = ErrSignature
	case errors.Is(err, jose.ErrExpired):
		s = ErrExpired
	case errors.Is(err, jose.ErrNotYetValid), errors.Is(err, jose.ErrIssuedInFuture):
		s = ErrNotYetValid
	case errors.Is(err, jose.ErrIssuer):
		s = ErrIssuer
	case errors.Is(err, jose.ErrAudience):
		s = ErrAudience
	case errors.Is(err, jose.ErrInvalidOptions):
		s = ErrConfig
	default:
		s = ErrInvalid
	}
	return fmt.Errorf("%w: %w", s, err)
}
