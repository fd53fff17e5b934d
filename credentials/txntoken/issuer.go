package txntoken

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// DefaultTTL is the lifetime Mint gives a Txn-Token when Config.TTL is
// zero.
const DefaultTTL = 60 * time.Second

// MaxTTL is the longest lifetime an Issuer accepts: Txn-Tokens live
// "minutes or less" (SPECS.md §6.4).
const MaxTTL = 10 * time.Minute

// Attribute keys of the Issuer's log records.
const (
	logKeyTxn       = "txn"
	logKeySubject   = "sub"
	logKeyWorkload  = "req_wl"
	logKeyScope     = "scope"
	logKeyKID       = "kid"
	logKeyExpires   = "exp"
	logKeyTokenHash = "token_sha256"
)

// Config configures an [Issuer], the signing half of a Transaction Token
// Service.
type Config struct {
	// Signer is the private signing key (ES256 with a P-256 key is what
	// agenthost uses; any key jose.AlgorithmForKey supports works).
	// Required.
	Signer crypto.Signer
	// KeyID is the kid header written on every token, so verifiers pick
	// the key across rotations (SPECS.md §6.4). Required.
	KeyID string
	// TrustDomain is the aud of every token. Required.
	TrustDomain string
	// Issuer, when not empty, is written as iss.
	Issuer string
	// TTL is the token lifetime; zero means DefaultTTL. At most MaxTTL.
	TTL time.Duration
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Logger receives a debug record per token minted (claims and the
	// token's SHA-256, never the token); nil means silent.
	Logger *slog.Logger
}

// Issuer mints Txn-Tokens for one trust domain with one key. It is safe
// for concurrent use.
type Issuer struct {
	cfg Config
	pub crypto.PublicKey
}

// NewIssuer checks cfg and fills its defaults. An unusable Config wraps
// [ErrConfig].
func NewIssuer(cfg Config) (*Issuer, error) {
	switch {
	case cfg.Signer == nil:
		return nil, fmt.Errorf("%w: no signer", ErrConfig)
	case cfg.KeyID == "":
		return nil, fmt.Errorf("%w: no key id", ErrConfig)
	case cfg.TrustDomain == "":
		return nil, fmt.Errorf("%w: no trust domain", ErrConfig)
	case cfg.TTL < 0 || cfg.TTL > MaxTTL:
		return nil, fmt.Errorf("%w: ttl %s outside (0, %s]", ErrConfig, cfg.TTL, MaxTTL)
	}
	pub := cfg.Signer.Public()
	if _, err := jose.AlgorithmForKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Issuer{cfg: cfg, pub: pub}, nil
}

// TrustDomain returns the aud the Issuer writes.
func (i *Issuer) TrustDomain() string { return i.cfg.TrustDomain }

// Keys returns a key lookup holding the Issuer's public key under its kid,
// for [VerifyOptions.Keys] when verifier and issuer share a process.
func (i *Issuer) Keys() jose.KeyFunc {
	return jose.StaticKeys(map[string]crypto.PublicKey{i.cfg.KeyID: i.pub})
}

// Mint signs a Txn-Token for the transaction c describes and returns it
// with the claims it holds.
//
// The caller sets txn, sub, scope and req_wl (all required) and, as it
// sees fit, tctx and rctx. Mint sets iat to now, aud to the trust domain,
// iss to Config.Issuer, and exp to now plus the TTL; a non-zero
// c.ExpiresAt (say, the subject token's exp) can shorten the lifetime but
// never lengthen it. An aud or iss in c that differs from the Issuer's, an
// exp already passed, or a missing or malformed required claim wraps
// [ErrInvalid].
func (i *Issuer) Mint(ctx context.Context, c Claims) (string, Claims, error) {
	now := i.cfg.Clock().Truncate(time.Second)
	if c.Audience != "" && c.Audience != i.cfg.TrustDomain {
		return "", Claims{}, fmt.Errorf("%w: aud %q is not the trust domain %q", ErrInvalid, truncate(c.Audience), i.cfg.TrustDomain)
	}
	if c.Issuer != "" && c.Issuer != i.cfg.Issuer {
		return "", Claims{}, fmt.Errorf("%w: iss %q is not the issuer's", ErrInvalid, truncate(c.Issuer))
	}
	c.Audience = i.cfg.TrustDomain
	c.Issuer = i.cfg.Issuer
	c.IssuedAt = now.Unix()
	exp := now.Add(i.cfg.TTL).Unix()
	if c.ExpiresAt != 0 {
		if c.ExpiresAt <= c.IssuedAt {
			return "", Claims{}, fmt.Errorf("%w: exp is not after now", ErrInvalid)
		}
		exp = min(exp, c.ExpiresAt)
	}
	c.ExpiresAt = exp
	tok, err := Sign(ctx, i.cfg.Signer, i.cfg.KeyID, c)
	if err != nil {
		return "", Claims{}, err
	}
	i.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "txn-token minted",
		slog.String(logKeyTxn, c.Txn),
		slog.String(logKeySubject, c.Subject),
		slog.String(logKeyWorkload, c.RequestingWorkload),
		slog.String(logKeyScope, c.Scope),
		slog.String(logKeyKID, i.cfg.KeyID),
		slog.Int64(logKeyExpires, c.ExpiresAt),
		slog.String(logKeyTokenHash, TokenHash(tok)),
	)
	return tok, c, nil
}

// Sign signs complete claims c as a Txn-Token: protected header alg (from
// the key), kid and typ txntoken+jwt (SPECS.md §6.4). Every required claim
// must be set, iat and exp included; it is the primitive under
// [Issuer.Mint] for a service that rotates its own keys. Missing or
// malformed claims wrap [ErrInvalid]; a nil or unsupported key or an empty
// kid wraps [ErrConfig].
func Sign(ctx context.Context, key crypto.Signer, kid string, c Claims) (string, error) {
	if key == nil {
		return "", fmt.Errorf("%w: no signing key", ErrConfig)
	}
	if _, err := jose.AlgorithmForKey(key.Public()); err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if kid == "" {
		return "", fmt.Errorf("%w: no key id", ErrConfig)
	}
	if err := c.validate(); err != nil {
		return "", err
	}
	tok, err := jose.Sign(ctx, key, kid, jose.TypTxnToken, &c)
	if err != nil {
		return "", fmt.Errorf("txntoken: sign: %w", err)
	}
	return tok, nil
}
