package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Defaults applied by [New] to zero Config fields.
const (
	DefaultSVIDTTL        = time.Hour
	DefaultCATTL          = 720 * time.Hour
	DefaultRotateInterval = 10 * time.Second
	DefaultRefreshHint    = 5 * time.Minute
)

// backdate is how far NotBefore of issued certificates lies before the
// issuing time, to absorb small clock differences between peers.
const backdate = 10 * time.Second

// Config configures a [CA].
type Config struct {
	// TrustDomain is the trust domain name ("example.org") or its SPIFFE
	// ID ("spiffe://example.org"). Required. A journal that already holds
	// another trust domain makes New fail.
	TrustDomain string
	// Journal persists the keys and certificates. Required.
	Journal Journal
	// SVIDTTL is the lifetime of issued SVIDs; zero means DefaultSVIDTTL.
	// An SVID never outlives the authority that signs it.
	SVIDTTL time.Duration
	// CATTL is the lifetime of every authority (X.509 CA certificate,
	// JWT-SVID key, WIT-SVID key); zero means DefaultCATTL. It must be
	// longer than SVIDTTL.
	CATTL time.Duration
	// RotateInterval is how often Run calls Rotate; zero means
	// DefaultRotateInterval.
	RotateInterval time.Duration
	// RefreshHint is the spiffe_refresh_hint of the bundle (SPECS.md §10.5)
	// and the max-age of the served bundle; zero means DefaultRefreshHint.
	// A prepared authority is published a third of CATTL before it signs
	// anything, so the hint only needs to be much shorter than that.
	RefreshHint time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives rotation events; nil means silent.
	Logger *slog.Logger
	// Rand is the randomness for serial numbers, key IDs and token IDs,
	// and for key generation where the standard library uses it; nil means
	// crypto/rand.
	Rand io.Reader
}

// CA is the trust-domain certificate authority: it holds the X.509, JWT-SVID
// and WIT-SVID authorities of one trust domain, rotates them, issues SVIDs
// and publishes the trust bundle. Its methods are safe for concurrent use.
type CA struct {
	td             spiffeid.TrustDomain
	journal        Journal
	svidTTL        time.Duration
	caTTL          time.Duration
	rotateInterval time.Duration
	refreshHint    time.Duration
	now            func() time.Time
	log            *slog.Logger
	rand           io.Reader

	rotateMu sync.Mutex // serialises Rotate

	mu   sync.RWMutex
	snap *snapshot

	subMu  sync.Mutex
	subs   map[int]chan struct{}
	nextID int
}

// snapshot is an immutable view of the state with its bundle.
type snapshot struct {
	state      *state
	bundle     *spiffebundle.Bundle
	bundleJSON []byte
}

// New returns the CA of cfg.TrustDomain. It loads the state from the
// journal, or creates the authorities on first start, then rotates at Now
// (authorities may have aged while the host was down) and saves the state
// if that changed it.
func New(ctx context.Context, cfg Config) (*CA, error) {
	if cfg.TrustDomain == "" {
		return nil, fmt.Errorf("%w: trust domain is required", ErrInvalidArgument)
	}
	td, err := spiffeid.TrustDomainFromString(cfg.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("%w: trust domain %q: %v", ErrInvalidArgument, cfg.TrustDomain, err)
	}
	if cfg.TrustDomain != td.Name() && cfg.TrustDomain != td.IDString() {
		return nil, fmt.Errorf("%w: trust domain %q is a SPIFFE ID with a path", ErrInvalidArgument, cfg.TrustDomain)
	}
	if cfg.Journal == nil {
		return nil, fmt.Errorf("%w: journal is required", ErrInvalidArgument)
	}
	c := &CA{
		td:             td,
		journal:        cfg.Journal,
		svidTTL:        orDefault(cfg.SVIDTTL, DefaultSVIDTTL),
		caTTL:          orDefault(cfg.CATTL, DefaultCATTL),
		rotateInterval: orDefault(cfg.RotateInterval, DefaultRotateInterval),
		refreshHint:    orDefault(cfg.RefreshHint, DefaultRefreshHint),
		now:            cfg.Now,
		log:            cfg.Logger,
		rand:           cfg.Rand,
		subs:           make(map[int]chan struct{}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.svidTTL < 0 || c.caTTL < 0 || c.rotateInterval < 0 || c.refreshHint < 0 {
		return nil, fmt.Errorf("%w: negative duration", ErrInvalidArgument)
	}
	if c.svidTTL >= c.caTTL {
		return nil, fmt.Errorf("%w: SVID TTL %s must be shorter than CA TTL %s", ErrInvalidArgument, c.svidTTL, c.caTTL)
	}

	var st *state
	data, err := c.journal.Load(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		st = &state{trustDomain: td}
		c.log.InfoContext(ctx, "creating trust domain", "trust_domain", td.Name())
	case err != nil:
		return nil, fmt.Errorf("ca: load journal: %w", err)
	default:
		if st, err = decodeState(data); err != nil {
			return nil, err
		}
		if st.trustDomain != td {
			return nil, fmt.Errorf("%w: journal holds %q, configured %q", ErrTrustDomainMismatch, st.trustDomain.Name(), td.Name())
		}
	}
	next, changed, err := c.rotate(ctx, st, c.now())
	if err != nil {
		return nil, err
	}
	if changed || data == nil {
		if err := c.save(ctx, next); err != nil {
			return nil, err
		}
	}
	snap, err := c.newSnapshot(next)
	if err != nil {
		return nil, err
	}
	c.snap = snap
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// TrustDomain returns the CA's trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.td }

func (c *CA) current() *snapshot {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.snap
}

// Rotate applies the rotation plan at Now: it prepares, activates, creates
// and drops authorities as needed, saves the state and notifies
// subscribers when anything changed. On an error nothing changes, in memory
// or in the journal.
func (c *CA) Rotate(ctx context.Context) error {
	c.rotateMu.Lock()
	defer c.rotateMu.Unlock()
	cur := c.current()
	next, changed, err := c.rotate(ctx, cur.state, c.now())
	if err != nil || !changed {
		return err
	}
	snap, err := c.newSnapshot(next)
	if err != nil {
		return err
	}
	if err := c.save(ctx, next); err != nil {
		return err
	}
	c.mu.Lock()
	c.snap = snap
	c.mu.Unlock()
	c.notify()
	return nil
}

// Run calls Rotate every RotateInterval until ctx is done; it returns nil
// then. A failed rotation is logged and retried at the next tick.
func (c *CA) Run(ctx context.Context) error {
	t := time.NewTicker(c.rotateInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := c.Rotate(ctx); err != nil && ctx.Err() == nil {
				c.log.ErrorContext(ctx, "rotation failed", "error", err)
			}
		}
	}
}

// rotate returns the state after applying plan(s, now) and whether it
// differs from s. s itself is not modified.
func (c *CA) rotate(ctx context.Context, s *state, now time.Time) (*state, bool, error) {
	p := plan(s, now)
	if p.empty() {
		return s, false, nil
	}
	n := s.clone()
	for k := range n.kinds {
		kp := p[k]
		if kp.empty() {
			continue
		}
		sl := &n.kinds[k]
		if len(kp.dropRetired) > 0 {
			kept := sl.retired[:0:0]
			for i, r := range sl.retired {
				if !slices.Contains(kp.dropRetired, i) {
					kept = append(kept, r)
				}
			}
			sl.retired = kept
		}
		if kp.dropNext {
			sl.next = nil
		}
		if kp.activate {
			if old := sl.current; old != nil && !old.expired(now) {
				sl.retired = append(sl.retired, retire(old))
			}
			sl.current, sl.next = sl.next, nil
			c.log.InfoContext(ctx, "authority activated", "kind", kind(k).String(), "kid", sl.current.kid, "not_after", sl.current.notAfter)
		}
		if kp.create {
			a, err := c.newAuthority(kind(k), n, now)
			if err != nil {
				return nil, false, err
			}
			sl.current = a
			c.log.InfoContext(ctx, "authority created", "kind", kind(k).String(), "kid", a.kid, "not_after", a.notAfter)
		}
		if kp.prepare {
			a, err := c.newAuthority(kind(k), n, now)
			if err != nil {
				return nil, false, err
			}
			sl.next = a
			c.log.InfoContext(ctx, "authority prepared", "kind", kind(k).String(), "kid", a.kid, "not_after", a.notAfter)
		}
	}
	n.sequence++
	return n, true, nil
}

// retire returns a copy of a without its private key.
func retire(a *authority) *authority {
	r := *a
	r.key = nil
	return &r
}

// newAuthority creates an authority of kind k valid from now for CATTL. For
// JWT and WIT authorities the kid is unique within s.
func (c *CA) newAuthority(k kind, s *state, now time.Time) (*authority, error) {
	issuedAt := now.UTC().Truncate(time.Second)
	key, err := ecdsa.GenerateKey(elliptic.P256(), c.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: generate %s key: %w", k, err)
	}
	a := &authority{key: key, public: &key.PublicKey, issuedAt: issuedAt, notAfter: issuedAt.Add(c.caTTL)}
	if k == kindX509 {
		cert, err := c.newCACert(key, issuedAt, a.notAfter)
		if err != nil {
			return nil, err
		}
		a.cert = cert
		return a, nil
	}
	for {
		kid, err := c.randomID()
		if err != nil {
			return nil, fmt.Errorf("ca: %s key id: %w", k, err)
		}
		if !s.hasKID(kid) {
			a.kid = kid
			return a, nil
		}
	}
}

func (s *state) hasKID(kid string) bool {
	for _, sl := range s.kinds {
		for _, a := range append([]*authority{sl.current, sl.next}, sl.retired...) {
			if a != nil && a.kid == kid {
				return true
			}
		}
	}
	return false
}

// newCACert self-signs the root certificate of an X.509 authority
// (SPECS.md §10.2: cA=true, keyCertSign, SPIFFE ID of the trust domain
// without path).
func (c *CA) newCACert(key *ecdsa.PrivateKey, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := c.serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"agenthost"}, CommonName: c.td.Name(), SerialNumber: serial.Text(16)},
		NotBefore:             notBefore.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{c.td.ID().URL()},
	}
	der, err := x509.CreateCertificate(c.rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse CA certificate: %w", err)
	}
	return cert, nil
}

// serial returns a random positive 128-bit certificate serial number.
func (c *CA) serial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(c.rand, b); err != nil {
		return nil, fmt.Errorf("ca: serial number: %w", err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // never zero, always 16 bytes
	return new(big.Int).SetBytes(b), nil
}

// randomID returns 16 random bytes, base64url-encoded.
func (c *CA) randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(c.rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (c *CA) save(ctx context.Context, s *state) error {
	data, err := encodeState(s)
	if err != nil {
		return err
	}
	if err := c.journal.Save(ctx, data); err != nil {
		return fmt.Errorf("ca: save journal: %w", err)
	}
	return nil
}

// Subscribe returns a channel that receives a value after any change to the
// authorities or the bundle, and a function that ends the subscription and
// closes the channel. Notifications coalesce: a subscriber that has not
// received the previous one gets one value for several changes. Notifying
// never blocks.
func (c *CA) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.subMu.Lock()
	id := c.nextID
	c.nextID++
	c.subs[id] = ch
	c.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.subMu.Lock()
			delete(c.subs, id)
			c.subMu.Unlock()
			close(ch)
		})
	}
}

func (c *CA) notify() {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
