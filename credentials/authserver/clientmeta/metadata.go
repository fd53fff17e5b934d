package clientmeta

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxSize is the size cap [Parse] applies when given none.
const DefaultMaxSize = 64 << 10

// maxDepth bounds the nesting of a metadata document (jwks is the deepest
// member, at three levels).
const maxDepth = 16

// Metadata is OAuth client metadata (RFC 7591 §2) with the members of a
// registration response (RFC 7591 §3.2.1), the application_type of OpenID
// Connect Dynamic Client Registration §2 and dpop_bound_access_tokens
// (RFC 9449 §5.2). Every member is OPTIONAL on the wire.
//
// Not supported: software_statement (RFC 7591 §2.3) and language-tagged
// human-readable members (RFC 7591 §2.2) are ignored like any unknown
// member.
type Metadata struct {
	// RedirectURIs is redirect_uris (RFC 7591 §2).
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// TokenEndpointAuthMethod is token_endpoint_auth_method (RFC 7591 §2).
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// GrantTypes is grant_types (RFC 7591 §2).
	GrantTypes []string `json:"grant_types,omitempty"`
	// ResponseTypes is response_types (RFC 7591 §2).
	ResponseTypes []string `json:"response_types,omitempty"`
	// ClientName is client_name (RFC 7591 §2).
	ClientName string `json:"client_name,omitempty"`
	// ClientURI is client_uri (RFC 7591 §2).
	ClientURI string `json:"client_uri,omitempty"`
	// LogoURI is logo_uri (RFC 7591 §2).
	LogoURI string `json:"logo_uri,omitempty"`
	// Scope is scope, a space-separated list of scope tokens (RFC 7591 §2).
	Scope string `json:"scope,omitempty"`
	// Contacts is contacts (RFC 7591 §2).
	Contacts []string `json:"contacts,omitempty"`
	// TOSURI is tos_uri (RFC 7591 §2).
	TOSURI string `json:"tos_uri,omitempty"`
	// PolicyURI is policy_uri (RFC 7591 §2).
	PolicyURI string `json:"policy_uri,omitempty"`
	// JWKSURI is jwks_uri (RFC 7591 §2); never together with JWKS.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// JWKS is jwks, a JWK Set document (RFC 7591 §2).
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// SoftwareID is software_id (RFC 7591 §2).
	SoftwareID string `json:"software_id,omitempty"`
	// SoftwareVersion is software_version (RFC 7591 §2).
	SoftwareVersion string `json:"software_version,omitempty"`
	// ApplicationType is application_type, web or native (OpenID Connect
	// Dynamic Client Registration §2).
	ApplicationType string `json:"application_type,omitempty"`
	// DPoPBoundAccessTokens is dpop_bound_access_tokens (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`

	// ClientID is client_id: assigned by the server in a registration
	// response (RFC 7591 §3.2.1), the document's own URL in a CIMD.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is client_secret (RFC 7591 §3.2.1). Never issued here.
	ClientSecret string `json:"client_secret,omitempty"`
	// ClientIDIssuedAt is client_id_issued_at, seconds since the epoch
	// (RFC 7591 §3.2.1).
	ClientIDIssuedAt int64 `json:"client_id_issued_at,omitempty"`
	// ClientSecretExpiresAt is client_secret_expires_at (RFC 7591 §3.2.1).
	ClientSecretExpiresAt int64 `json:"client_secret_expires_at,omitempty"`
}

// Clone returns a deep copy of m.
func (m *Metadata) Clone() *Metadata {
	if m == nil {
		return nil
	}
	c := *m
	c.RedirectURIs = slices.Clone(m.RedirectURIs)
	c.GrantTypes = slices.Clone(m.GrantTypes)
	c.ResponseTypes = slices.Clone(m.ResponseTypes)
	c.Contacts = slices.Clone(m.Contacts)
	c.JWKS = bytes.Clone(m.JWKS)
	return &c
}

// Parse decodes client metadata from data, which must be exactly one JSON
// object in UTF-8 of at most maxSize bytes (maxSize <= 0 means
// DefaultMaxSize), without duplicate member names at any depth. Members are
// matched by exact name; a known member must have the JSON type RFC 7591
// gives it (null is not accepted), and unknown members are ignored. Errors
// are [*Error] values with code invalid_client_metadata.
//
// Parse checks types only; a [Policy] checks values.
func Parse(data []byte, maxSize int) (*Metadata, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(data) > maxSize {
		return nil, metadataError("the metadata exceeds %d bytes", maxSize)
	}
	if !utf8.Valid(data) {
		return nil, metadataError("the metadata is not valid UTF-8")
	}
	if err := checkStructure(data); err != nil {
		return nil, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, metadataError("the metadata is not a JSON object")
	}
	m := new(Metadata)
	d := decoder{members: members}
	d.strings("redirect_uris", &m.RedirectURIs)
	d.string("token_endpoint_auth_method", &m.TokenEndpointAuthMethod)
	d.strings("grant_types", &m.GrantTypes)
	d.strings("response_types", &m.ResponseTypes)
	d.string("client_name", &m.ClientName)
	d.string("client_uri", &m.ClientURI)
	d.string("logo_uri", &m.LogoURI)
	d.string("scope", &m.Scope)
	d.strings("contacts", &m.Contacts)
	d.string("tos_uri", &m.TOSURI)
	d.string("policy_uri", &m.PolicyURI)
	d.string("jwks_uri", &m.JWKSURI)
	d.object("jwks", &m.JWKS)
	d.string("software_id", &m.SoftwareID)
	d.string("software_version", &m.SoftwareVersion)
	d.string("application_type", &m.ApplicationType)
	d.bool("dpop_bound_access_tokens", &m.DPoPBoundAccessTokens)
	d.string("client_id", &m.ClientID)
	d.string("client_secret", &m.ClientSecret)
	d.time("client_id_issued_at", &m.ClientIDIssuedAt)
	d.time("client_secret_expires_at", &m.ClientSecretExpiresAt)
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

// checkStructure requires data to be one JSON object with no duplicate
// member names, no nesting deeper than maxDepth and nothing after it.
func checkStructure(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return metadataError("the metadata is not a JSON object")
	}
	if err := walkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return metadataError("the metadata has data after the JSON object")
	}
	return nil
}

func walkObject(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return metadataError("the metadata nests deeper than %d levels", maxDepth)
	}
	seen := make(map[string]struct{})
	for {
		tok, err := dec.Token()
		if err != nil {
			return metadataError("the metadata is not well-formed JSON")
		}
		if tok == json.Delim('}') {
			return nil
		}
		name, ok := tok.(string)
		if !ok {
			return metadataError("the metadata is not well-formed JSON")
		}
		if _, dup := seen[name]; dup {
			return metadataError("member %s appears more than once", show(name))
		}
		seen[name] = struct{}{}
		if err := walkValue(dec, depth); err != nil {
			return err
		}
	}
}

func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return metadataError("the metadata is not well-formed JSON")
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec, depth+1)
	case json.Delim('['):
		if depth+1 > maxDepth {
			return metadataError("the metadata nests deeper than %d levels", maxDepth)
		}
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
			return metadataError("the metadata is not well-formed JSON")
		}
	}
	return nil
}

// decoder assigns known members by exact name, keeping the first error.
type decoder struct {
	members map[string]json.RawMessage
	err     error
}

func (d *decoder) raw(name string) (json.RawMessage, bool) {
	if d.err != nil {
		return nil, false
	}
	raw, ok := d.members[name]
	return raw, ok
}

func (d *decoder) fail(name, want string) {
	d.err = metadataError("%s must be %s", name, want)
}

func (d *decoder) string(name string, dst *string) {
	raw, ok := d.raw(name)
	if !ok {
		return
	}
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, dst) != nil {
		d.fail(name, "a string")
	}
}

func (d *decoder) strings(name string, dst *[]string) {
	raw, ok := d.raw(name)
	if !ok {
		return
	}
	var items []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		d.fail(name, "an array of strings")
		return
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		var s string
		if len(item) == 0 || item[0] != '"' || json.Unmarshal(item, &s) != nil {
			d.fail(name, "an array of strings")
			return
		}
		out = append(out, s)
	}
	*dst = out
}

func (d *decoder) object(name string, dst *json.RawMessage) {
	raw, ok := d.raw(name)
	if !ok {
		return
	}
	if len(raw) == 0 || raw[0] != '{' {
		d.fail(name, "a JSON object")
		return
	}
	*dst = bytes.Clone(raw)
}

func (d *decoder) bool(name string, dst *bool) {
	raw, ok := d.raw(name)
	if !ok {
		return
	}
	switch string(raw) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		d.fail(name, "a boolean")
	}
}

// time decodes a NumericDate member: a non-negative integer.
func (d *decoder) time(name string, dst *int64) {
	raw, ok := d.raw(name)
	if !ok {
		return
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || v < 0 || (len(raw) > 1 && raw[0] == '0') {
		d.fail(name, "a non-negative integer")
		return
	}
	*dst = v
}
