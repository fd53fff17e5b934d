package svidtls

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ClientCertMode says whether a server requires clients to present an
// X509-SVID.
type ClientCertMode int

const (
	// RequireClientSVID refuses every client that does not present a
	// valid, authorized X509-SVID. It is the zero value.
	RequireClientSVID ClientCertMode = iota
	// OptionalClientSVID accepts clients without a certificate (see
	// [PeerID] to tell them apart), but a client that presents one must
	// present a valid, authorized X509-SVID or the handshake fails: an
	// invalid certificate never degrades to an anonymous client.
	OptionalClientSVID
)

// String returns "require" or "optional".
func (m ClientCertMode) String() string {
	switch m {
	case RequireClientSVID:
		return "require"
	case OptionalClientSVID:
		return "optional"
	default:
		return fmt.Sprintf("ClientCertMode(%d)", int(m))
	}
}

// ServerOptions configures [ServerConfig].
type ServerOptions struct {
	// ClientCerts is RequireClientSVID (the zero value) or
	// OptionalClientSVID.
	ClientCerts ClientCertMode
	// Authorizer decides which clients, by SPIFFE ID, may connect.
	// Required, in both modes: there is no implicit "any".
	Authorizer Authorizer
	// Now is the clock that client certificates are verified at; nil
	// means time.Now.
	Now func() time.Time
	// OnRefuse, when set, is told of each client refused at the
	// handshake: the SPIFFE ID its certificate names ("" when it names
	// none) and why. It runs in the handshake: keep it short, and rate
	// limit what it records, since anyone can try a handshake.
	OnRefuse func(peerID string, err error)
	// Logger receives a warning for each refused client and for a
	// handshake that found no SVID to serve, and a debug record per
	// verified client; nil means silent.
	Logger *slog.Logger
}

// ServerConfig returns a TLS configuration that serves the X509-SVID of
// svid and verifies client X509-SVIDs against bundles.
//
// The server certificate is fetched from svid on every handshake (through
// GetCertificate), so a renewed SVID, such as [Rotating] provides, is
// served from the next handshake on while established connections keep
// theirs. Do not set Certificates on the result: crypto/tls prefers it to
// GetCertificate when the client sends no server name.
//
// A client certificate is verified against the bundle of the trust domain
// its SPIFFE ID names, which bundles must hold (several trust domains,
// such as the host's own and federated ones, go in one
// x509bundle.Set), and must then pass opts.Authorizer. Verification runs
// on every handshake, session resumptions included, so a removed bundle
// or an expired client SVID is noticed on resumption too. The protocol is
// TLS 1.2 or later (1.3 whenever the client supports it), with
// ECDHE+AEAD cipher suites for 1.2. NextProtos is left for the caller (or
// http.Server) to set.
func ServerConfig(svid x509svid.Source, bundles x509bundle.Source, opts ServerOptions) (*tls.Config, error) {
	switch {
	case svid == nil:
		return nil, fmt.Errorf("%w: server: no X509-SVID source", ErrConfig)
	case bundles == nil:
		return nil, fmt.Errorf("%w: server: no bundle source", ErrConfig)
	case opts.Authorizer == nil:
		return nil, fmt.Errorf("%w: server: no authorizer", ErrConfig)
	}
	v := &verifier{
		bundles: bundles,
		authz:   opts.Authorizer,
		now:     orNow(opts.Now),
		log:     orDiscard(opts.Logger),
		peer:    "client",
		refused: opts.OnRefuse,
	}
	cfg := tlsconfig.TLSServerConfig(svid, tlsconfig.WithTrace(certTrace(v.log, "no X509-SVID to serve")))
	switch opts.ClientCerts {
	case RequireClientSVID:
		cfg.ClientAuth = tls.RequireAnyClientCert
		v.required = true
	case OptionalClientSVID:
		cfg.ClientAuth = tls.RequestClientCert
	default:
		return nil, fmt.Errorf("%w: server: client certificate mode %s", ErrConfig, opts.ClientCerts)
	}
	cfg.MinVersion = tls.VersionTLS12
	cfg.CipherSuites = tls12CipherSuites
	cfg.VerifyConnection = v.verifyConnection
	return cfg, nil
}

// certTrace logs msg when the SVID to present cannot be obtained.
func certTrace(log *slog.Logger, msg string) tlsconfig.Trace {
	return tlsconfig.Trace{
		GotCertificate: func(info tlsconfig.GotCertificateInfo, _ any) {
			if info.Err != nil {
				log.WarnContext(context.Background(), msg, attrError, info.Err)
			}
		},
	}
}
