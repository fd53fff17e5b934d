package svidtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Log attribute keys.
const (
	attrSPIFFEID  = "spiffe_id"
	attrPeer      = "peer"
	attrOrigin    = "origin"
	attrError     = "error"
	attrExpiresAt = "expires_at"
	attrAttempt   = "attempt"
	attrRetryIn   = "retry_in"
)

// tls12CipherSuites are the TLS 1.2 suites offered and accepted: ECDHE
// with an AEAD only. TLS 1.3 suites are not configurable and all good.
var tls12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// verifier checks the peer's certificate chain of a TLS connection as an
// X509-SVID and authorizes its SPIFFE ID.
type verifier struct {
	bundles  x509bundle.Source
	authz    Authorizer
	now      func() time.Time
	log      *slog.Logger
	required bool   // a peer without a certificate is refused
	peer     string // "client" or "server", for logs
	// refused is told of each refused peer (ServerOptions.OnRefuse).
	refused func(peerID string, err error)
}

// verifyConnection is a tls.Config.VerifyConnection callback. Go's TLS
// stack calls it on every handshake, resumed ones included, after its own
// certificate checks, which SPIFFE TLS turns off (a client sets
// InsecureSkipVerify, a server requests certificates without verifying
// them): this callback is the only verification, so it never trusts the
// system roots.
// refuse reports a refused peer to the OnRefuse hook, if any.
func (v *verifier) refuse(id string, err error) {
	if v.refused != nil {
		v.refused(id, err)
	}
}

func (v *verifier) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if v.required {
			err := fmt.Errorf("%w: the %s presented no certificate", ErrInvalidSVID, v.peer)
			v.log.WarnContext(context.Background(), "peer refused", attrPeer, v.peer, attrError, err)
			v.refuse("", err)
			return err
		}
		return nil
	}
	id, err := v.verify(cs.PeerCertificates)
	if err != nil {
		v.log.WarnContext(context.Background(), "peer refused", attrPeer, v.peer, attrSPIFFEID, id.String(), attrError, err)
		v.refuse(id.String(), err)
		return err
	}
	v.log.DebugContext(context.Background(), "peer verified", attrPeer, v.peer, attrSPIFFEID, id.String())
	return nil
}

// verify validates certs, leaf first, as an X509-SVID (SPECS.md §10.2)
// and authorizes its SPIFFE ID. Path validation is go-spiffe's: against
// the bundle of the ID's own trust domain only, at the configured time.
// The returned ID is set whenever the leaf carries one, even on error.
func (v *verifier) verify(certs []*x509.Certificate) (spiffeid.ID, error) {
	leaf := certs[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: %w", ErrInvalidSVID, err)
	}
	if _, err := v.bundles.GetX509BundleForTrustDomain(id.TrustDomain()); err != nil {
		return id, fmt.Errorf("%w: %w: %s: %w", ErrInvalidSVID, credentials.ErrUntrustedDomain, id, err)
	}
	_, chains, err := x509svid.Verify(certs, v.bundles, x509svid.WithTime(v.now()))
	if err != nil {
		return id, fmt.Errorf("%w: %s: %w", ErrInvalidSVID, id, err)
	}
	// go-spiffe refuses a leaf that may sign certificates or CRLs;
	// SPECS.md §10.2 also requires digitalSignature on every leaf.
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return id, fmt.Errorf("%w: %s: leaf certificate without digitalSignature key usage", ErrInvalidSVID, id)
	}
	if err := v.authz(id, chains); err != nil {
		return id, fmt.Errorf("%w: %s: %w", ErrPeerNotAuthorized, id, err)
	}
	return id, nil
}

func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
