package wimse

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// CredentialFunc returns the caller's current WIT and the private key of
// its cnf.jwk. It is called for every request, so it should return a
// cached credential and renew it before it expires (the Workload API does
// this for a workload).
type CredentialFunc func(ctx context.Context) (wit string, key crypto.Signer, err error)

// TransportConfig configures a [Transport].
type TransportConfig struct {
	// Base is the RoundTripper that sends the request; nil means
	// http.DefaultTransport.
	Base http.RoundTripper
	// Credential returns the current WIT and its key. Required.
	Credential CredentialFunc
	// Mode is the proof each request carries: ModeWPT (the default when
	// empty) or ModeHTTPSig.
	Mode Mode
	// Lifetime is the lifetime of each proof; zero means
	// DefaultProofLifetime. At most MaxProofLifetime.
	Lifetime time.Duration
	// OtherTokenHeaders names the request headers carrying other context
	// tokens the proof binds when present: through oth in a WPT, as
	// covered components in a signature. Match the server's
	// Config.OtherTokenHeaders.
	OtherTokenHeaders []string
	// MaxBodySize caps the body read to compute Content-Digest in
	// ModeHTTPSig; zero means DefaultMaxBodySize.
	MaxBodySize int64
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Logger receives a debug record per request proven (the WIT's hash,
	// never a token); nil means silent.
	Logger *slog.Logger
}

// Transport is an http.RoundTripper that authenticates each outgoing
// request as the caller's workload: it adds the Workload-Identity-Token
// header and either a Workload-Proof-Token for the request's target URI
// (binding the access token of an Authorization: Bearer or DPoP header,
// the Txn-Token header and the configured other-token headers) or a WIMSE
// HTTP message signature (see [SignRequest]). The caller's request is not
// modified; a clone is sent. Place it innermost, next to the network
// transport, so that every header it binds (Authorization, Txn-Token) is
// already set when it runs. It is safe for concurrent use.
type Transport struct {
	base     http.RoundTripper
	cred     CredentialFunc
	mode     Mode
	lifetime time.Duration
	others   []string
	maxBody  int64
	now      func() time.Time
	log      *slog.Logger

	mu   sync.Mutex
	last struct {
		wit string
		p   *presented
	}
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport checks cfg and fills its defaults. An unusable config wraps
// [ErrConfig].
func NewTransport(cfg TransportConfig) (*Transport, error) {
	if cfg.Credential == nil {
		return nil, fmt.Errorf("%w: transport: no credential source", ErrConfig)
	}
	t := &Transport{
		base:     cfg.Base,
		cred:     cfg.Credential,
		mode:     cfg.Mode,
		lifetime: cfg.Lifetime,
		maxBody:  cfg.MaxBodySize,
		now:      cfg.Clock,
		log:      cfg.Logger,
	}
	if t.mode == "" {
		t.mode = ModeWPT
	}
	if !t.mode.Valid() {
		return nil, fmt.Errorf("%w: transport: mode %q", ErrConfig, cfg.Mode)
	}
	if t.lifetime == 0 {
		t.lifetime = DefaultProofLifetime
	}
	if t.lifetime < time.Second || t.lifetime > MaxProofLifetime {
		return nil, fmt.Errorf("%w: transport: lifetime %s outside [1s, %s]", ErrConfig, t.lifetime, MaxProofLifetime)
	}
	for _, h := range cfg.OtherTokenHeaders {
		name := strings.ToLower(strings.TrimSpace(h))
		if !isToken(name) || isReservedHeader(name) {
			return nil, fmt.Errorf("%w: transport: other token header %q", ErrConfig, h)
		}
		t.others = append(t.others, name)
	}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t, nil
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	out, err := t.prove(req)
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(out)
}

// prove returns a clone of req carrying the WIT and the proof.
func (t *Transport) prove(req *http.Request) (*http.Request, error) {
	ctx := req.Context()
	wit, key, err := t.cred(ctx)
	if err != nil {
		return nil, fmt.Errorf("wimse: transport: credential: %w", err)
	}
	p, err := t.inspect(wit, key)
	if err != nil {
		return nil, fmt.Errorf("wimse: transport: %w", err)
	}
	out := req.Clone(ctx)
	switch t.mode {
	case ModeWPT:
		opts := WPTOptions{Lifetime: t.lifetime, Now: t.now}
		if opts.AccessToken, err = accessToken(out.Header); err != nil {
			return nil, fmt.Errorf("%w: transport: %w", ErrConfig, err)
		}
		if opts.TxnToken, err = singleHeader(out.Header, HeaderTxnToken); err != nil {
			return nil, fmt.Errorf("%w: transport: %w", ErrConfig, err)
		}
		if opts.OtherTokens, err = otherTokens(out.Header, t.others); err != nil {
			return nil, fmt.Errorf("%w: transport: %w", ErrConfig, err)
		}
		wpt, err := mintWPT(ctx, key, p, TargetURI(out.URL), opts)
		if err != nil {
			return nil, err
		}
		out.Header.Set(HeaderWIT, wit)
		out.Header.Set(HeaderWPT, wpt)
	case ModeHTTPSig:
		out.Header.Del(HeaderWPT)
		err := signRequest(ctx, out, wit, key, p, SignOptions{
			Lifetime:    t.lifetime,
			Headers:     t.others,
			MaxBodySize: t.maxBody,
			Now:         t.now,
		})
		if err != nil {
			return nil, err
		}
	}
	t.log.LogAttrs(ctx, slog.LevelDebug, "wimse proof added",
		slog.String(logKeyProof, string(t.mode)),
		slog.String(logKeyWITHash, p.hash),
		slog.String(logKeyAudience, TargetURI(out.URL)),
	)
	return out, nil
}

// inspect reads the WIT's confirmation key once per WIT, and checks on
// every call that key is its private key.
func (t *Transport) inspect(wit string, key crypto.Signer) (*presented, error) {
	t.mu.Lock()
	cached := t.last
	t.mu.Unlock()
	if cached.p != nil && cached.wit == wit {
		if key == nil || !publicKeyEqual(key.Public(), cached.p.key) {
			return nil, fmt.Errorf("%w: the signing key is not the WIT's cnf.jwk", ErrConfig)
		}
		return cached.p, nil
	}
	p, err := inspectOwnWIT(wit, key)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.last.wit, t.last.p = wit, p
	t.mu.Unlock()
	return p, nil
}
