package oauth

import (
	"net/url"
	"strconv"
	"strings"
)

// ValidPort reports whether u's authority has no port, or a port that is
// a number from 1 to 65535 written without leading zeros. A colon with no
// port after it is not valid. The loopback redirect URIs of native apps
// may use any port at request time (RFC 8252 §7.3), but it must be a port.
func ValidPort(u *url.URL) bool {
	if !strings.HasSuffix(u.Host, ":") && u.Port() == "" {
		return true
	}
	port := u.Port()
	if port == "" || len(port) > 5 || port[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}
