package dpop

import (
	"net/url"
	"strings"
	"sync"
)

// MaxCachedNonces bounds a NonceCache: when a nonce from yet another
// origin comes, the cache starts over (a client talks to a handful of
// servers; a lost nonce costs one use_dpop_nonce round trip).
const MaxCachedNonces = 256

// maxNonceLength is the longest DPoP-Nonce a NonceCache keeps; a longer
// one is not a nonce worth putting into every proof.
const maxNonceLength = 512

// NonceCache is the client side of server nonces (RFC 9449 §8, §9): the
// last DPoP-Nonce each server sent, by origin (scheme, host and port), to
// go into the next proof for that origin. A server may send a new nonce
// with any response; the latest one wins. The zero NonceCache is ready to
// use and safe for concurrent use.
type NonceCache struct {
	mu     sync.Mutex
	nonces map[string]string
}

// Nonce returns the nonce to put into a proof for a request to rawURL:
// the last one its origin sent, or "".
func (c *NonceCache) Nonce(rawURL string) string {
	o := origin(rawURL)
	if o == "" {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nonces[o]
}

// Remember keeps nonce (a DPoP-Nonce response header; "" changes
// nothing) for the origin of rawURL, the request it answered.
func (c *NonceCache) Remember(rawURL, nonce string) {
	if nonce == "" || len(nonce) > maxNonceLength || !nonceSyntax(nonce) {
		return
	}
	o := origin(rawURL)
	if o == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nonces == nil || (len(c.nonces) >= MaxCachedNonces && c.nonces[o] == "") {
		c.nonces = map[string]string{}
	}
	c.nonces[o] = nonce
}

// origin is the lowercase scheme://host[:port] of rawURL, or "" when it
// is not an absolute http(s) URL.
func origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}

// nonceSyntax reports whether s is a nonce as RFC 9449 §8.1 writes it:
// NQCHAR, printable ASCII other than the double quote and the backslash.
func nonceSyntax(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
