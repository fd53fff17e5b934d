package ca

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// newSnapshot builds the bundle of s (SPECS.md §10.5): every unexpired
// authority of each kind (current, prepared next and retired), the
// sequence number of s and the configured refresh hint.
func (c *CA) newSnapshot(s *state) (*snapshot, error) {
	b := spiffebundle.New(s.trustDomain)
	b.SetSequenceNumber(s.sequence)
	b.SetRefreshHint(c.refreshHint)
	for k := range s.kinds {
		for _, a := range s.kinds[k].published() {
			switch kind(k) {
			case kindX509:
				b.AddX509Authority(a.cert)
			case kindJWT:
				if err := b.AddJWTAuthority(a.kid, crypto.PublicKey(a.public)); err != nil {
					return nil, fmt.Errorf("ca: bundle: %w", err)
				}
			case kindWIT:
				if err := b.AddWITAuthority(a.kid, crypto.PublicKey(a.public)); err != nil {
					return nil, fmt.Errorf("ca: bundle: %w", err)
				}
			}
		}
	}
	data, err := b.Marshal()
	if err != nil {
		return nil, fmt.Errorf("ca: bundle: %w", err)
	}
	return &snapshot{state: s, bundle: b, bundleJSON: data}, nil
}

// published returns the authorities of sl that belong in the bundle:
// current, next and retired ones.
func (sl *slots) published() []*authority {
	out := make([]*authority, 0, 2+len(sl.retired))
	for _, a := range []*authority{sl.current, sl.next} {
		if a != nil {
			out = append(out, a)
		}
	}
	return append(out, sl.retired...)
}

// Bundle returns the trust bundle of the trust domain: the X.509, JWT-SVID
// and WIT-SVID authorities, including those prepared for the next rotation
// and retired ones that have not expired, with the sequence number
// (incremented on every change) and refresh hint. The result is a clone the
// caller may keep and modify.
func (c *CA) Bundle() *spiffebundle.Bundle {
	return c.current().bundle.Clone()
}

// BundleJSON returns the bundle in the SPIFFE bundle format (SPECS.md
// §10.5), as served by BundleHandler.
func (c *CA) BundleJSON() []byte {
	return append([]byte(nil), c.current().bundleJSON...)
}

// BundleHandler serves the bundle in the SPIFFE bundle format for the
// federation bundle endpoint (SPECS.md §10.7); see [NewBundleHandler].
func (c *CA) BundleHandler() http.Handler {
	return NewBundleHandler(func() ([]byte, time.Duration) { return c.current().bundleJSON, c.refreshHint })
}

// NewBundleHandler serves the SPIFFE bundle that get returns (its JSON
// and refresh hint) for a federation bundle endpoint (SPECS.md §10.7),
// whichever authority holds it. It answers GET and HEAD with content type
// application/json and a Cache-Control max-age of the refresh hint; any
// other method gets 405. TLS (the https_web or https_spiffe profile) is
// the job of the server it is mounted on.
func NewBundleHandler(get func() (body []byte, refreshHint time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, hint := get()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Cache-Control", "max-age="+strconv.Itoa(int(hint.Seconds())))
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}

// Authorities are the authorities of a trust domain's SPIFFE bundle, as a
// verifier of that domain's SVIDs and signatures needs them.
type Authorities struct {
	// X509 are the X.509 authorities (x509-svid keys).
	X509 []*x509.Certificate
	// JWT are the JWT authorities (jwt-svid keys) by kid.
	JWT map[string]crypto.PublicKey
	// RefreshHint is the bundle's spiffe_refresh_hint, 0 when it has none.
	RefreshHint time.Duration
}

// ParseBundle reads the SPIFFE bundle (SPECS.md §10.5) of trustDomain,
// such as another domain's bundle endpoint serves, and returns its
// authorities. Keys of other uses (wit-svid) are read and left out.
func ParseBundle(trustDomain string, data []byte) (*Authorities, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("ca: parse bundle: %w", err)
	}
	b, err := spiffebundle.Parse(td, data)
	if err != nil {
		return nil, fmt.Errorf("ca: parse the bundle of %s: %w", trustDomain, err)
	}
	hint, _ := b.RefreshHint()
	return &Authorities{X509: b.X509Authorities(), JWT: b.JWTAuthorities(), RefreshHint: hint}, nil
}
