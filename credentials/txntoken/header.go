package txntoken

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// HeaderName is the HTTP header that carries exactly one Txn-Token
// (SPECS.md X.3, §6.5); the Authorization header is never used for it.
const HeaderName = "Txn-Token"

// FromHeader returns the Txn-Token of a request's header h. No header (or
// an empty one) wraps [ErrNoToken]; more than one header line, or a value
// holding anything but one compact token, wraps [ErrInvalid].
func FromHeader(h http.Header) (string, error) {
	vs := h.Values(HeaderName)
	switch {
	case len(vs) == 0 || (len(vs) == 1 && vs[0] == ""):
		return "", ErrNoToken
	case len(vs) > 1:
		return "", fmt.Errorf("%w: %d %s headers, want one", ErrInvalid, len(vs), HeaderName)
	}
	if strings.ContainsAny(vs[0], " \t,") {
		return "", fmt.Errorf("%w: the %s header must hold one token", ErrInvalid, HeaderName)
	}
	return vs[0], nil
}

// SetHeader puts token in h as the request's only Txn-Token. A workload
// forwards the token it received unmodified (SPECS.md §6.5).
func SetHeader(h http.Header, token string) { h.Set(HeaderName, token) }

// TokenHash returns base64url(SHA-256(token)) without padding: what logs
// and audit records hold instead of the token (SPECS.md §6.5), and the
// value of a WIMSE proof's tth claim (SPECS.md §8.3).
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
