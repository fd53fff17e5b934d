package signals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Subject identifier formats (RFC 9493 §3 and SSF 1.0 §3).
const (
	FormatAccount         = "account"
	FormatEmail           = "email"
	FormatIssSub          = "iss_sub"
	FormatOpaque          = "opaque"
	FormatPhoneNumber     = "phone_number"
	FormatDID             = "did"
	FormatURI             = "uri"
	FormatAliases         = "aliases"
	FormatJWTID           = "jwt_id"
	FormatSAMLAssertionID = "saml_assertion_id"
	FormatIPAddresses     = "ip-addresses"
	FormatComplex         = "complex"
)

// complexMembers are the members of an SSF complex subject, in the order
// they are compared.
var complexMembers = []string{"user", "device", "session", "application", "tenant", "org_unit", "group"}

// Subject is a subject identifier: one of the RFC 9493 formats, the SSF
// formats jwt_id, saml_assertion_id and ip-addresses, or an SSF complex
// subject whose members are simple subjects describing one principal.
// Only the members of its Format are meaningful.
type Subject struct {
	Format string `json:"format"`

	Email       string   `json:"email,omitempty"`        // email
	Iss         string   `json:"iss,omitempty"`          // iss_sub, jwt_id
	Sub         string   `json:"sub,omitempty"`          // iss_sub
	ID          string   `json:"id,omitempty"`           // opaque
	PhoneNumber string   `json:"phone_number,omitempty"` // phone_number (E.164)
	URI         string   `json:"uri,omitempty"`          // account (acct: URI), uri
	URL         string   `json:"url,omitempty"`          // did
	JTI         string   `json:"jti,omitempty"`          // jwt_id
	Issuer      string   `json:"issuer,omitempty"`       // saml_assertion_id
	AssertionID string   `json:"assertion_id,omitempty"` // saml_assertion_id
	IPAddresses []string `json:"ip-addresses,omitempty"` // ip-addresses

	// Identifiers are the alternative identifiers of an aliases subject.
	Identifiers []Subject `json:"identifiers,omitempty"`

	// Members of a complex subject.
	User        *Subject `json:"user,omitempty"`
	Device      *Subject `json:"device,omitempty"`
	Session     *Subject `json:"session,omitempty"`
	Application *Subject `json:"application,omitempty"`
	Tenant      *Subject `json:"tenant,omitempty"`
	OrgUnit     *Subject `json:"org_unit,omitempty"`
	Group       *Subject `json:"group,omitempty"`
}

// OpaqueSubject returns an opaque subject with the given id.
func OpaqueSubject(id string) Subject { return Subject{Format: FormatOpaque, ID: id} }

// EmailSubject returns an email subject.
func EmailSubject(email string) Subject { return Subject{Format: FormatEmail, Email: email} }

// IssSubSubject returns an iss_sub subject.
func IssSubSubject(iss, sub string) Subject { return Subject{Format: FormatIssSub, Iss: iss, Sub: sub} }

// member returns the complex member named name.
func (s *Subject) member(name string) *Subject {
	switch name {
	case "user":
		return s.User
	case "device":
		return s.Device
	case "session":
		return s.Session
	case "application":
		return s.Application
	case "tenant":
		return s.Tenant
	case "org_unit":
		return s.OrgUnit
	case "group":
		return s.Group
	}
	return nil
}

// Validate checks that s is a well-formed identifier of a known format.
// Errors wrap [ErrUnknownSubjectFormat] or [ErrInvalidSubject].
func (s Subject) Validate() error {
	return s.validate(true, true)
}

func (s *Subject) validate(allowComplex, allowAliases bool) error {
	bad := func(what string) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidSubject, s.Format, what)
	}
	switch s.Format {
	case FormatAccount:
		if !strings.HasPrefix(s.URI, "acct:") || len(s.URI) <= len("acct:") {
			return bad("uri must be an acct: URI")
		}
	case FormatEmail:
		at := strings.LastIndexByte(s.Email, '@')
		if at <= 0 || at == len(s.Email)-1 {
			return bad("email must be an address")
		}
	case FormatIssSub:
		if s.Iss == "" || s.Sub == "" {
			return bad("iss and sub are required")
		}
	case FormatOpaque:
		if s.ID == "" {
			return bad("id is required")
		}
	case FormatPhoneNumber:
		if !isE164(s.PhoneNumber) {
			return bad("phone_number must be E.164")
		}
	case FormatDID:
		if !strings.HasPrefix(s.URL, "did:") || len(s.URL) <= len("did:") {
			return bad("url must be a did: URL")
		}
	case FormatURI:
		u, err := url.Parse(s.URI)
		if s.URI == "" || err != nil || u.Scheme == "" {
			return bad("uri must be an absolute URI")
		}
	case FormatJWTID:
		if s.Iss == "" || s.JTI == "" {
			return bad("iss and jti are required")
		}
	case FormatSAMLAssertionID:
		if s.Issuer == "" || s.AssertionID == "" {
			return bad("issuer and assertion_id are required")
		}
	case FormatIPAddresses:
		if len(s.IPAddresses) == 0 {
			return bad("ip-addresses is required")
		}
		for _, a := range s.IPAddresses {
			if _, err := netip.ParseAddr(a); err != nil {
				return bad("ip-addresses holds a value that is not an IP address")
			}
		}
	case FormatAliases:
		if !allowAliases {
			return bad("aliases may not be nested")
		}
		if len(s.Identifiers) == 0 {
			return bad("identifiers is required")
		}
		for i := range s.Identifiers {
			if err := s.Identifiers[i].validate(false, false); err != nil {
				return err
			}
		}
	case FormatComplex:
		if !allowComplex {
			return bad("complex subjects may not be nested")
		}
		n := 0
		for _, name := range complexMembers {
			m := s.member(name)
			if m == nil {
				continue
			}
			n++
			if err := m.validate(false, true); err != nil {
				return err
			}
		}
		if n == 0 {
			return bad("no member")
		}
	case "":
		return fmt.Errorf("%w: no format", ErrInvalidSubject)
	default:
		return fmt.Errorf("%w: %q", ErrUnknownSubjectFormat, truncate(s.Format, 64))
	}
	return nil
}

// isE164 reports whether p is "+" followed by 2 to 15 digits, the first
// not zero.
func isE164(p string) bool {
	if len(p) < 3 || len(p) > 16 || p[0] != '+' || p[1] == '0' {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// parseSubject decodes and validates a subject identifier. A complex
// subject carrying a member named in critical that this package does not
// understand is refused (SSF 1.0 critical_subject_members).
func parseSubject(raw json.RawMessage, critical []string) (Subject, error) {
	var s Subject
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return s, fmt.Errorf("%w: not a JSON object", ErrInvalidSubject)
	}
	members, err := objectMembers(raw)
	if err != nil {
		return s, fmt.Errorf("%w: %v", ErrInvalidSubject, err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("%w: %v", ErrInvalidSubject, err)
	}
	if s.Format == FormatComplex && len(critical) > 0 {
		for name := range members {
			if name == "format" || slices.Contains(complexMembers, name) {
				continue
			}
			if slices.Contains(critical, name) {
				return s, fmt.Errorf("%w: critical member %q not understood", ErrInvalidSubject, truncate(name, 64))
			}
		}
	}
	if err := s.Validate(); err != nil {
		return s, err
	}
	return s, nil
}

// Matches reports whether s and o identify the same subject: equal simple
// identifiers (email compared case-insensitively); for aliases, any of the
// identifiers; a complex subject matches a simple one equal to one of its
// members; two complex subjects match when they share at least one member
// and every member present on both sides is equal (SSF 1.0 §3.2; sharing
// none is not a match, so an event is never sent on an absent member alone).
func (s Subject) Matches(o Subject) bool {
	if s.Format == FormatAliases {
		for _, id := range s.Identifiers {
			if id.Matches(o) {
				return true
			}
		}
		return false
	}
	if o.Format == FormatAliases {
		return o.Matches(s)
	}
	switch {
	case s.Format == FormatComplex && o.Format == FormatComplex:
		common := 0
		for _, name := range complexMembers {
			a, b := s.member(name), o.member(name)
			if a == nil || b == nil {
				continue
			}
			if !a.Matches(*b) {
				return false
			}
			common++
		}
		return common > 0
	case s.Format == FormatComplex:
		for _, name := range complexMembers {
			if m := s.member(name); m != nil && m.Matches(o) {
				return true
			}
		}
		return false
	case o.Format == FormatComplex:
		return o.Matches(s)
	}
	if s.Format != o.Format {
		return false
	}
	switch s.Format {
	case FormatEmail:
		return strings.EqualFold(s.Email, o.Email)
	case FormatIssSub:
		return s.Iss == o.Iss && s.Sub == o.Sub
	case FormatOpaque:
		return s.ID == o.ID
	case FormatPhoneNumber:
		return s.PhoneNumber == o.PhoneNumber
	case FormatAccount, FormatURI:
		return s.URI == o.URI
	case FormatDID:
		return s.URL == o.URL
	case FormatJWTID:
		return s.Iss == o.Iss && s.JTI == o.JTI
	case FormatSAMLAssertionID:
		return s.Issuer == o.Issuer && s.AssertionID == o.AssertionID
	case FormatIPAddresses:
		for _, a := range s.IPAddresses {
			if slices.Contains(o.IPAddresses, a) {
				return true
			}
		}
	}
	return false
}

// String returns a compact description of s for logs.
func (s Subject) String() string {
	b, err := json.Marshal(s)
	if err != nil {
		return s.Format
	}
	return string(b)
}

// objectMembers decodes raw as one JSON object into its members, refusing
// duplicate member names and trailing data.
func objectMembers(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	out := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("bad member name")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", truncate(name, 64))
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("trailing data")
	}
	return out, nil
}

// truncate cuts s to at most n bytes for error messages and logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
