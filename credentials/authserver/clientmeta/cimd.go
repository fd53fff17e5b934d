package clientmeta

import (
	"net/url"
	"strings"
)

// maxClientIDLength caps a client ID metadata document URL.
const maxClientIDLength = 1024

// IsClientIDURL reports whether s is a valid client ID metadata document
// URL (draft-ietf-oauth-client-id-metadata-document §3): https, with a
// host and a path, and without userinfo, fragment, or "." or ".." path
// segments (also when percent-encoded). A query and a port are allowed.
// s must be ASCII without whitespace, backslashes or control characters
// and at most 1024 bytes.
func IsClientIDURL(s string) bool {
	if len(s) > maxClientIDLength || !strings.HasPrefix(s, "https://") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '\\' || c == '#' {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Opaque != "" || u.User != nil || u.Hostname() == "" {
		return false
	}
	path := u.EscapedPath()
	if path == "" || path[0] != '/' {
		return false
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if dotSegment(seg) {
			return false
		}
	}
	return true
}

// dotSegment reports whether an escaped path segment is "." or "..",
// counting %2E as a dot.
func dotSegment(seg string) bool {
	s := strings.ReplaceAll(strings.ToLower(seg), "%2e", ".")
	return s == "." || s == ".."
}
