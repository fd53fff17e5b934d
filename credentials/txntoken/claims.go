package txntoken

import (
	"fmt"
	"slices"
	"strings"
)

// Claims are the claims of a Transaction Token
// (draft-ietf-oauth-transaction-tokens, editor's copy after -08, as
// digested in SPECS.md §6.4). Only strings, integers and [Object] values
// make it up, so Claims compare with ==.
//
// Not supported: nbf is neither written nor required (Verify still
// refuses a token whose nbf is in the future); aud as an array and req_wl
// as an array (the call chain of drafts ≤ -06) are refused; the old claim
// names purp (scope) and azd (tctx) are ignored; a txn-seen cache for
// single use (SPECS.md §6.5) is the caller's business.
type Claims struct {
	// Issuer is "iss". OPTIONAL (SPECS.md §6.4): names the Txn-Token
	// service when verifiers find keys by issuer.
	Issuer string `json:"iss,omitempty"`
	// IssuedAt is "iat", seconds since the epoch. REQUIRED (SPECS.md
	// §6.4).
	IssuedAt int64 `json:"iat"`
	// Audience is "aud": the trust domain the token is good in, a single
	// string. REQUIRED (SPECS.md §6.4); a verifier outside it MUST reject
	// the token.
	Audience string `json:"aud"`
	// ExpiresAt is "exp", seconds since the epoch; minutes or less after
	// iat. REQUIRED (SPECS.md §6.4).
	ExpiresAt int64 `json:"exp"`
	// Txn is "txn": the transaction's unique identifier (RFC 8417 §2.2).
	// REQUIRED (SPECS.md §6.4).
	Txn string `json:"txn"`
	// Subject is "sub": the principal, unique within the trust domain (not
	// scoped by iss). REQUIRED (SPECS.md §6.4).
	Subject string `json:"sub"`
	// Scope is "scope": the purpose of the transaction, space-delimited
	// scope tokens (RFC 6749 §3.3). REQUIRED (SPECS.md §6.4). See
	// [Claims.Scopes].
	Scope string `json:"scope"`
	// RequestingWorkload is "req_wl": the workload that asked for the
	// token; in agenthost its SPIFFE ID. REQUIRED (SPECS.md §6.4; a
	// top-level string since -07).
	RequestingWorkload string `json:"req_wl"`
	// TransactionContext is "tctx": immutable authorization details of the
	// transaction. RECOMMENDED (SPECS.md §6.4). The host writes the tool
	// call here, see [CallContext].
	TransactionContext Object `json:"tctx,omitzero"`
	// RequestContext is "rctx": the environment of the request (caller IP,
	// authentication method, ...). RECOMMENDED (SPECS.md §6.4).
	RequestContext Object `json:"rctx,omitzero"`
}

// Scopes returns the scope tokens of c.Scope, in order, without
// duplicates.
func (c *Claims) Scopes() []string {
	var out []string
	for _, s := range strings.Split(c.Scope, " ") {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// HasScope reports whether scope is one of c's scope tokens.
func (c *Claims) HasScope(scope string) bool {
	return scope != "" && slices.Contains(c.Scopes(), scope)
}

// validate checks that every REQUIRED claim is present and well formed.
// Errors wrap ErrInvalid; they name the claim, never its whole value.
func (c *Claims) validate() error {
	switch {
	case c.IssuedAt <= 0:
		return fmt.Errorf("%w: iat is missing", ErrInvalid)
	case c.ExpiresAt <= 0:
		return fmt.Errorf("%w: exp is missing", ErrInvalid)
	case c.ExpiresAt <= c.IssuedAt:
		return fmt.Errorf("%w: exp is not after iat", ErrInvalid)
	case c.Audience == "":
		return fmt.Errorf("%w: aud is missing", ErrInvalid)
	case c.Txn == "":
		return fmt.Errorf("%w: txn is missing", ErrInvalid)
	case c.Subject == "":
		return fmt.Errorf("%w: sub is missing", ErrInvalid)
	case c.RequestingWorkload == "":
		return fmt.Errorf("%w: req_wl is missing", ErrInvalid)
	}
	return validScope(c.Scope)
}

// validScope checks a scope claim: one or more scope tokens (RFC 6749
// §3.3), separated by single spaces.
func validScope(s string) error {
	if s == "" {
		return fmt.Errorf("%w: scope is missing", ErrInvalid)
	}
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			return fmt.Errorf("%w: scope tokens must be separated by single spaces", ErrInvalid)
		}
		for i := 0; i < len(tok); i++ {
			if b := tok[i]; b < 0x21 || b == 0x22 || b == 0x5c || b > 0x7e {
				return fmt.Errorf("%w: scope token %q has characters RFC 6749 does not allow", ErrInvalid, truncate(tok))
			}
		}
	}
	return nil
}
