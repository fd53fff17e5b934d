package resource

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
)

// checkCertBinding enforces RFC 8705 §3: a certificate-bound token only
// over a TLS connection presenting that certificate.
func checkCertBinding(r *http.Request, x5t string) error {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return errors.New("the access token is bound to a client certificate the request does not present")
	}
	sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(x5t)) != 1 {
		return errors.New("the access token is bound to another client certificate")
	}
	return nil
}
