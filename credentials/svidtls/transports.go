package svidtls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/agenthost/agenthost/credentials"
)

// TransportsConfig configures [NewTransports].
type TransportsConfig struct {
	// Issuer issues each workload's X.509-SVIDs. Required.
	Issuer SVIDIssuer
	// Bundles, Origins, Base, Now and Logger are as in TransportConfig,
	// the same for every workload. Nil Base means http.DefaultTransport.
	Bundles x509bundle.Source
	Origins map[string]Authorizer
	Base    http.RoundTripper
	Now     func() time.Time
	Logger  *slog.Logger
}

// Transports are the outbound transports of several workloads (a host's
// agents), one per workload, made on first use: each presents its own
// workload's X.509-SVID, kept current by a [Rotating] it runs, to the
// configured origins, so no connection is ever shared between
// identities. Every other origin goes to Base. Close stops the renewals.
type Transports struct {
	cfg TransportsConfig

	mu     sync.Mutex
	m      map[string]http.RoundTripper
	stop   []context.CancelFunc
	closed bool
}

// NewTransports returns the transports of cfg, none made yet.
func NewTransports(cfg TransportsConfig) *Transports {
	if cfg.Base == nil {
		cfg.Base = http.DefaultTransport
	}
	return &Transports{cfg: cfg, m: map[string]http.RoundTripper{}}
}

// For returns workload id's transport: Base itself when no origin is
// configured.
func (ts *Transports) For(id credentials.Identity) (http.RoundTripper, error) {
	if len(ts.cfg.Origins) == 0 {
		return ts.cfg.Base, nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t, ok := ts.m[id.String()]; ok {
		return t, nil
	}
	if ts.closed {
		return nil, errors.New("svidtls: transports closed")
	}
	issue, err := IssueFor(ts.cfg.Issuer, id)
	if err != nil {
		return nil, err
	}
	log := orDiscard(ts.cfg.Logger).With("workload", id.String())
	rot, err := NewRotating(context.Background(), RotatingConfig{Issue: issue, Now: ts.cfg.Now, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("svidtls: the X.509-SVID of %s: %w", id, err)
	}
	t, err := NewTransport(rot, TransportConfig{Bundles: ts.cfg.Bundles, Origins: ts.cfg.Origins, Base: ts.cfg.Base,
		Now: ts.cfg.Now, Logger: log})
	if err != nil {
		return nil, err
	}
	ts.m[id.String()] = t
	ctx, stop := context.WithCancel(context.Background())
	ts.stop = append(ts.stop, stop)
	go func() { _ = rot.Run(ctx) }()
	return t, nil
}

// Close stops renewing the workloads' SVIDs; For fails afterwards.
func (ts *Transports) Close() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, stop := range ts.stop {
		stop()
	}
	ts.stop, ts.closed = nil, true
}
