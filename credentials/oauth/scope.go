package oauth

import (
	"slices"
	"strings"
)

// MaxScopes caps the scope tokens in one request.
const MaxScopes = 64

// ParseScope splits a scope parameter (RFC 6749 §3.3) into its tokens,
// in order, without duplicates. Each token is 1*( %x21 / %x23-5B /
// %x5D-7E ); tokens are separated by single spaces.
func ParseScope(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, " ")
	if len(parts) > MaxScopes {
		return nil, Errorf(CodeInvalidScope, "more than %d scopes", MaxScopes)
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p == "" {
			return nil, Errorf(CodeInvalidScope, "scope tokens must be separated by single spaces")
		}
		if !ValidScopeToken(p) {
			return nil, Errorf(CodeInvalidScope, "scope token %q has characters RFC 6749 does not allow", truncate(p, 40))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// ValidScopeToken reports whether s is a scope-token (RFC 6749 §3.3).
func ValidScopeToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// FormatScope joins scope tokens with spaces.
func FormatScope(scopes []string) string { return strings.Join(scopes, " ") }

// ScopeSubset reports whether every token of sub is in set.
func ScopeSubset(sub, set []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

// ScopeIntersect returns the tokens of a that are also in b, in a's order.
func ScopeIntersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
