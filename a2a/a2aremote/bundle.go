package a2aremote

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// Bounds on how long a trust bundle is used before it is read again: its
// spiffe_refresh_hint, within these.
const (
	MinBundleRefresh = time.Minute
	MaxBundleRefresh = time.Hour
)

// BundleConfig configures [NewBundle].
type BundleConfig struct {
	// TrustDomain is the trust domain whose agents sign the cards.
	// Required.
	TrustDomain string
	// File or URL is where its SPIFFE bundle is (SPECS.md §10.5): a file,
	// or a bundle endpoint fetched with Fetcher. Exactly one.
	File, URL string
	// Fetcher fetches URL (the outbound-fetch rules); nil means
	// fetch.New with its defaults.
	Fetcher *fetch.Fetcher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Bundle is a trust domain's SPIFFE bundle as card verification needs it,
// read again once its refresh hint has passed. It is safe for concurrent
// use.
type Bundle struct {
	cfg BundleConfig

	mu      sync.Mutex
	roots   *x509.CertPool
	jwt     map[string]crypto.PublicKey
	refresh time.Duration
	at      time.Time
	loaded  bool
}

// NewBundle checks cfg; nothing is read until the bundle is first used.
func NewBundle(cfg BundleConfig) (*Bundle, error) {
	switch {
	case cfg.TrustDomain == "":
		return nil, fmt.Errorf("%w: a bundle needs its trust domain", ErrInvalidConfig)
	case (cfg.File == "") == (cfg.URL == ""):
		return nil, fmt.Errorf("%w: a bundle is read from a file or a URL, one of them", ErrInvalidConfig)
	}
	if cfg.Fetcher == nil {
		cfg.Fetcher = fetch.New(fetch.Config{})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Bundle{cfg: cfg}, nil
}

// VerifyOptions are the card checks of the trust domain (for
// Config.CardVerify): its X.509 authorities for a signature with an x5c
// chain, whose leaf must be one SPIFFE ID of the trust domain, and its JWT
// authorities, by kid, for one without.
func (b *Bundle) VerifyOptions(ctx context.Context, _ string) (a2acard.VerifyOptions, error) {
	roots, jwt, err := b.current(ctx)
	if err != nil {
		return a2acard.VerifyOptions{}, err
	}
	td := b.cfg.TrustDomain
	opts := a2acard.VerifyOptions{Roots: roots, Now: b.cfg.Now, CheckLeaf: func(leaf *x509.Certificate) error {
		return LeafOfTrustDomain(leaf, td)
	}}
	if len(jwt) > 0 {
		opts.Keys = jose.StaticKeys(jwt)
	}
	if opts.Roots == nil && opts.Keys == nil {
		return a2acard.VerifyOptions{}, fmt.Errorf("a2aremote: the bundle of %s holds no authority (every key revoked)", td)
	}
	return opts, nil
}

// Forget drops the bundle read, so the next use reads it again (a card
// failed to verify with it).
func (b *Bundle) Forget() {
	b.mu.Lock()
	b.loaded = false
	b.mu.Unlock()
}

// current returns the authorities, reading the bundle when it was never
// read or its refresh hint has passed.
func (b *Bundle) current(ctx context.Context) (*x509.CertPool, map[string]crypto.PublicKey, error) {
	now := b.cfg.Now()
	b.mu.Lock()
	if b.loaded && now.Before(b.at.Add(min(max(b.refresh, MinBundleRefresh), MaxBundleRefresh))) {
		roots, jwt := b.roots, b.jwt
		b.mu.Unlock()
		return roots, jwt, nil
	}
	b.mu.Unlock()
	var (
		data []byte
		err  error
		from = b.cfg.File
	)
	if from != "" {
		data, err = readBundleFile(from)
	} else {
		from = b.cfg.URL
		var resp *fetch.Response
		if resp, err = b.cfg.Fetcher.JSON(ctx, from, nil); err == nil {
			data = resp.Body
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("a2aremote: the trust bundle of %s: %w", b.cfg.TrustDomain, err)
	}
	a, err := ParseBundle(b.cfg.TrustDomain, data)
	if err != nil {
		return nil, nil, fmt.Errorf("a2aremote: the trust bundle of %s at %s: %w", b.cfg.TrustDomain, from, err)
	}
	var roots *x509.CertPool
	if len(a.X509) > 0 {
		roots = x509.NewCertPool()
		for _, c := range a.X509 {
			roots.AddCert(c)
		}
	}
	b.mu.Lock()
	b.roots, b.jwt, b.refresh, b.at, b.loaded = roots, a.JWT, a.RefreshHint, now, true
	b.mu.Unlock()
	return roots, a.JWT, nil
}

// ParseBundle reads a SPIFFE bundle of at most jose.DefaultMaxKeySetSize
// bytes (ca.ParseBundle).
func ParseBundle(trustDomain string, data []byte) (*ca.Authorities, error) {
	if len(data) > jose.DefaultMaxKeySetSize {
		return nil, fmt.Errorf("a2aremote: a bundle of %d bytes", len(data))
	}
	return ca.ParseBundle(trustDomain, data)
}

// readBundleFile reads a bundle file of at most jose.DefaultMaxKeySetSize
// bytes.
func readBundleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, jose.DefaultMaxKeySetSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > jose.DefaultMaxKeySetSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, jose.DefaultMaxKeySetSize)
	}
	return data, nil
}

// LeafOfTrustDomain checks that leaf, the certificate that signed a card,
// names exactly one SPIFFE ID, of trust domain td.
func LeafOfTrustDomain(leaf *x509.Certificate, td string) error {
	if len(leaf.URIs) != 1 {
		return fmt.Errorf("the signing certificate names %d URIs, want one SPIFFE ID of %s", len(leaf.URIs), td)
	}
	id, err := credentials.ParseIdentity(leaf.URIs[0].String())
	if err != nil || id.Scheme() != credentials.SchemeSPIFFE {
		return fmt.Errorf("the signing certificate names %q, not a SPIFFE ID of %s", leaf.URIs[0].String(), td)
	}
	if id.TrustDomain() != td {
		return fmt.Errorf("the card is signed by %s, of another trust domain than %s", id, td)
	}
	return nil
}
