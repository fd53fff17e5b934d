package credentials

import (
	"fmt"
	"strings"
)

// Identity schemes accepted by [ParseIdentity].
const (
	SchemeSPIFFE = "spiffe"
	SchemeWIMSE  = "wimse"
)

// Limits from SPIFFE-ID §2.1–§2.3 and draft-ietf-wimse-identifier §3.
const (
	maxIdentityLen    = 2048
	maxTrustDomainLen = 255
)

// Identity is a validated workload identifier: a SPIFFE ID
// (spiffe://<trust-domain>/<path>) or a WIMSE identifier
// (wimse://<trust-domain>/<path>). The zero value is not a valid identity;
// [Identity.IsZero] reports it.
//
// Identity is comparable: two identities are equal exactly when their URIs
// are equal code point for code point (the trust domain is lowercased on
// parse, the path is case-sensitive).
type Identity struct {
	scheme      string
	trustDomain string
	path        string
}

// ParseIdentity parses and validates s. The scheme and trust domain are
// case-insensitive and are lowercased; the path is kept as given.
//
// https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md#2-spiffe-identity
func ParseIdentity(s string) (Identity, error) {
	if s == "" {
		return Identity{}, fmt.Errorf("%w: empty", ErrInvalidIdentity)
	}
	if len(s) > maxIdentityLen {
		return Identity{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidIdentity, maxIdentityLen)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Identity{}, fmt.Errorf("%w: %q has no scheme", ErrInvalidIdentity, s)
	}
	scheme = strings.ToLower(scheme)
	if scheme != SchemeSPIFFE && scheme != SchemeWIMSE {
		return Identity{}, fmt.Errorf("%w: scheme %q is not spiffe or wimse", ErrInvalidIdentity, scheme)
	}
	td, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		td, path = rest[:i], rest[i:]
	}
	td = strings.ToLower(td)
	if err := validateTrustDomain(td); err != nil {
		return Identity{}, err
	}
	if err := validatePath(path); err != nil {
		return Identity{}, err
	}
	return Identity{scheme: scheme, trustDomain: td, path: path}, nil
}

// MustParseIdentity is like [ParseIdentity] but panics on error. It is for
// identifiers known at compile time only.
func MustParseIdentity(s string) Identity {
	id, err := ParseIdentity(s)
	if err != nil {
		panic(err)
	}
	return id
}

// ValidateTrustDomain reports whether td is a valid trust domain name:
// non-empty, at most 255 bytes, only [a-z0-9._-] (SPIFFE-ID §2.1).
func ValidateTrustDomain(td string) error {
	return validateTrustDomain(td)
}

// AgentIdentity returns spiffe://<trustDomain>/agent/<name>, the identity of
// a hosted agent.
func AgentIdentity(trustDomain, name string) (Identity, error) {
	if name == "" || strings.Contains(name, "/") {
		return Identity{}, fmt.Errorf("%w: agent name %q must be one non-empty path segment", ErrInvalidIdentity, name)
	}
	return ParseIdentity(SchemeSPIFFE + "://" + trustDomain + "/agent/" + name)
}

// HostIdentity returns spiffe://<trustDomain>/host, the identity of the
// agenthost process itself.
func HostIdentity(trustDomain string) (Identity, error) {
	return ParseIdentity(SchemeSPIFFE + "://" + trustDomain + "/host")
}

// String returns the identifier as a URI.
func (id Identity) String() string {
	if id.IsZero() {
		return ""
	}
	return id.scheme + "://" + id.trustDomain + id.path
}

// Scheme returns "spiffe" or "wimse".
func (id Identity) Scheme() string { return id.scheme }

// TrustDomain returns the trust domain name, e.g. "agenthost.local".
func (id Identity) TrustDomain() string { return id.trustDomain }

// Path returns the path, with its leading slash, or "" for a trust domain's
// own identifier.
func (id Identity) Path() string { return id.path }

// IsZero reports whether id is the zero value.
func (id Identity) IsZero() bool { return id.scheme == "" }

// MemberOf reports whether id belongs to trustDomain.
func (id Identity) MemberOf(trustDomain string) bool {
	return !id.IsZero() && id.trustDomain == trustDomain
}

// MarshalText implements encoding.TextMarshaler.
func (id Identity) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, validating the input.
func (id *Identity) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*id = Identity{}
		return nil
	}
	parsed, err := ParseIdentity(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

func validateTrustDomain(td string) error {
	if td == "" {
		return fmt.Errorf("%w: empty trust domain", ErrInvalidIdentity)
	}
	if len(td) > maxTrustDomainLen {
		return fmt.Errorf("%w: trust domain longer than %d bytes", ErrInvalidIdentity, maxTrustDomainLen)
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		case c == ':':
			return fmt.Errorf("%w: trust domain %q must not carry a port", ErrInvalidIdentity, td)
		case c == '@':
			return fmt.Errorf("%w: trust domain %q must not carry userinfo", ErrInvalidIdentity, td)
		default:
			return fmt.Errorf("%w: trust domain %q has invalid character %q", ErrInvalidIdentity, td, c)
		}
	}
	return nil
}

func validatePath(p string) error {
	if p == "" {
		return nil
	}
	if p == "/" || strings.HasSuffix(p, "/") {
		return fmt.Errorf("%w: path %q has a trailing slash", ErrInvalidIdentity, p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: path %q has an empty segment", ErrInvalidIdentity, p)
		case ".", "..":
			return fmt.Errorf("%w: path %q has a relative segment", ErrInvalidIdentity, p)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			case c == '?' || c == '#':
				return fmt.Errorf("%w: identifier must not carry a query or fragment", ErrInvalidIdentity)
			default:
				return fmt.Errorf("%w: path segment %q has invalid character %q", ErrInvalidIdentity, seg, c)
			}
		}
	}
	return nil
}
