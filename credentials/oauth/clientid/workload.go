package clientid

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// Limits on configured values.
const (
	// maxURLLength caps a document, JWK Set or redirect URL (the CIMD
	// client_id limit the embedded authorization server applies).
	maxURLLength = 1024
	// maxTextLength caps client_name.
	maxTextLength = 256
	// maxClientIDLength caps a client_id, configured or registered.
	maxClientIDLength = 1024
	// maxRedirectURIs caps Workload.RedirectURIs.
	maxRedirectURIs = 10
)

// workloadName is a workload name: usable as one path segment and as a
// file name as it is.
var workloadName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Workload is a hosted workload (an agent) as an OAuth client.
type Workload struct {
	// Name names the workload, as its key pair and registrations are
	// stored: 1 to 128 of A-Z a-z 0-9 . _ -, starting with a letter or
	// digit. Required.
	Name string
	// SPIFFEID is the workload's SPIFFE ID: the spiffe_id member of its
	// document (SPECS.md §10.8) and its client_id on the JWT-SVID path.
	// Required; the spiffe scheme only.
	SPIFFEID credentials.Identity
	// ClientName is client_name in its document and registrations. Empty
	// means Name.
	ClientName string
	// MetadataURL is the URL of the workload's client ID metadata
	// document, its client_id at servers that take CIMD clients (SPECS.md
	// §11.5): https, with a path, without query, fragment, userinfo or
	// "." and ".." segments. [Manager.Handler] serves the document at its
	// path. Empty means the workload has no CIMD identity.
	MetadataURL string
	// JWKSURI is the URL of the workload's public JWK Set, given as
	// jwks_uri in its document and registrations: https, without query,
	// fragment or userinfo. [Manager.Handler] serves the set at its path.
	// Empty means the set is carried inline (jwks) instead.
	JWKSURI string
	// RedirectURIs are written as redirect_uris in the document when set
	// (https only). The workload is not an interactive client and asks
	// for no grant that uses them; they are for authorization servers
	// that demand redirect_uris in every document (the MCP profile,
	// SPECS.md §3.3). Empty means none.
	RedirectURIs []string
}

func (w Workload) clientName() string {
	if w.ClientName == "" {
		return w.Name
	}
	return w.ClientName
}

// validate checks w and returns the escaped paths of its document and
// JWK Set URLs (empty when not set).
func (w Workload) validate() (docPath, jwksPath string, err error) {
	if !workloadName.MatchString(w.Name) {
		return "", "", fmt.Errorf("%w: workload name %q: want 1 to 128 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
			ErrConfig, truncate(w.Name, 64))
	}
	if w.SPIFFEID.IsZero() || w.SPIFFEID.Scheme() != credentials.SchemeSPIFFE {
		return "", "", fmt.Errorf("%w: workload %q: no SPIFFE ID", ErrConfig, w.Name)
	}
	if err := checkText(w.ClientName); err != nil {
		return "", "", fmt.Errorf("%w: workload %q: client name: %w", ErrConfig, w.Name, err)
	}
	if w.MetadataURL != "" {
		u, err := checkDocumentURL(w.MetadataURL)
		if err != nil {
			return "", "", fmt.Errorf("%w: workload %q: metadata document URL: %w", ErrConfig, w.Name, err)
		}
		docPath = u.EscapedPath()
	}
	if w.JWKSURI != "" {
		u, err := checkHTTPSURL(w.JWKSURI)
		if err != nil {
			return "", "", fmt.Errorf("%w: workload %q: JWK Set URL: %w", ErrConfig, w.Name, err)
		}
		jwksPath = u.EscapedPath()
		if jwksPath == docPath {
			return "", "", fmt.Errorf("%w: workload %q: the JWK Set and the metadata document have the same path", ErrConfig, w.Name)
		}
	}
	if len(w.RedirectURIs) > maxRedirectURIs {
		return "", "", fmt.Errorf("%w: workload %q: more than %d redirect URIs", ErrConfig, w.Name, maxRedirectURIs)
	}
	for i, r := range w.RedirectURIs {
		if _, err := checkHTTPSURL(r); err != nil {
			return "", "", fmt.Errorf("%w: workload %q: redirect URI: %w", ErrConfig, w.Name, err)
		}
		if slices.Contains(w.RedirectURIs[:i], r) {
			return "", "", fmt.Errorf("%w: workload %q: redirect URI %q is listed twice", ErrConfig, w.Name, r)
		}
	}
	return docPath, jwksPath, nil
}

// CheckMetadataURL reports whether s may be a client ID metadata document
// URL the host publishes (draft-ietf-oauth-client-id-metadata-document §3,
// SPECS.md §11.5): https, with a host and a path, without userinfo,
// fragment, query or "." and ".." segments (also percent-encoded), a port
// from 1 to 65535 if any, in printable ASCII and at most 1024 bytes. The
// draft allows a query but advises against one; the host uses none, so
// the document's path alone routes it. The error wraps [ErrConfig].
func CheckMetadataURL(s string) error {
	if _, err := checkDocumentURL(s); err != nil {
		return fmt.Errorf("%w: metadata document URL: %w", ErrConfig, err)
	}
	return nil
}

func checkDocumentURL(s string) (*url.URL, error) {
	u, err := checkHTTPSURL(s)
	if err != nil {
		return nil, err
	}
	path := u.EscapedPath()
	if path == "" {
		return nil, fmt.Errorf("%q has no path", s)
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if d := strings.ReplaceAll(strings.ToLower(seg), "%2e", "."); d == "." || d == ".." {
			return nil, fmt.Errorf("%q has a dot segment", s)
		}
	}
	return u, nil
}

// checkHTTPSURL requires an absolute https URL with a host and a valid
// port, without userinfo, query or fragment, in printable ASCII.
func checkHTTPSURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if len(s) > maxURLLength {
		return nil, fmt.Errorf("longer than %d bytes", maxURLLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return nil, fmt.Errorf("%q has whitespace, control or non-ASCII characters", truncate(s, 64))
		}
	}
	if strings.Contains(s, "#") {
		return nil, fmt.Errorf("%q has a fragment", s)
	}
	if strings.Contains(s, "?") {
		return nil, fmt.Errorf("%q has a query", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "https" || !strings.HasPrefix(s, "https://") {
		return nil, fmt.Errorf("%q is not an https URL", s)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q has userinfo", s)
	}
	if !oauth.ValidPort(u) {
		return nil, fmt.Errorf("%q has a port that is not a number from 1 to 65535", s)
	}
	return u, nil
}

// checkText bounds a human-readable value and refuses control and format
// characters (which could disguise it on a consent page).
func checkText(s string) error {
	if len(s) > maxTextLength {
		return fmt.Errorf("longer than %d bytes", maxTextLength)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			return errors.New("has control or formatting characters")
		}
	}
	return nil
}

// checkClientID requires a client_id of 1 to 1024 characters in the
// VSCHAR set of RFC 6749 Appendix A.1 (%x20-7E).
func checkClientID(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > maxClientIDLength {
		return fmt.Errorf("longer than %d bytes", maxClientIDLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return errors.New("has characters outside %x20-7E")
		}
	}
	return nil
}

// truncate shortens a value for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
