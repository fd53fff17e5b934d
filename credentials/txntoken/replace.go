package txntoken

import (
	"fmt"
	"time"
)

// CheckReplacement reports whether a Txn-Token service may issue
// replacement in place of old, a verified Txn-Token presented as the
// subject token at time at (SPECS.md §6.6). The service may narrow scope
// and add asserted values, and sets new iat, exp, req_wl and rctx; it must
// not:
//
//   - replace a token that has expired at at (exp not after at; no leeway);
//   - change txn, sub or aud;
//   - widen scope: every scope token of replacement must be in old;
//   - change or drop a tctx member of old (adding members is allowed).
//
// A refusal wraps [ErrReplacement] (and [ErrExpired] for an expired old);
// claims that are not a complete Txn-Token wrap [ErrInvalid]. Keeping the
// chain of requesting workloads, and capping how often a token is
// replaced, are left to the service.
func CheckReplacement(old, replacement *Claims, at time.Time) error {
	if old == nil || replacement == nil {
		return fmt.Errorf("%w: no claims", ErrInvalid)
	}
	if err := old.validate(); err != nil {
		return fmt.Errorf("%w (the token being replaced)", err)
	}
	if err := replacement.validate(); err != nil {
		return err
	}
	if exp := time.Unix(old.ExpiresAt, 0); !at.Before(exp) {
		return fmt.Errorf("%w: %w: the token being replaced expired at %s", ErrReplacement, ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	for _, f := range []struct{ name, old, new string }{
		{"txn", old.Txn, replacement.Txn},
		{"sub", old.Subject, replacement.Subject},
		{"aud", old.Audience, replacement.Audience},
	} {
		if f.old != f.new {
			return fmt.Errorf("%w: %s changed", ErrReplacement, f.name)
		}
	}
	for _, s := range replacement.Scopes() {
		if !old.HasScope(s) {
			return fmt.Errorf("%w: scope %q is not in the token being replaced", ErrReplacement, truncate(s))
		}
	}
	newMembers := replacement.TransactionContext.members()
	for _, name := range old.TransactionContext.Names() {
		was, _ := old.TransactionContext.Member(name)
		now, ok := newMembers[name]
		if !ok {
			return fmt.Errorf("%w: tctx member %q dropped", ErrReplacement, truncate(name))
		}
		if string(now) != string(was) {
			return fmt.Errorf("%w: tctx member %q changed", ErrReplacement, truncate(name))
		}
	}
	return nil
}
