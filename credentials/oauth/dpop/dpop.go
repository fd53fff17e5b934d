package dpop

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// Errors. Every verification failure wraps ErrInvalidProof or ErrUseNonce.
var (
	// ErrInvalidProof maps to the OAuth error invalid_dpop_proof.
	ErrInvalidProof = errors.New("dpop: invalid proof")
	// ErrUseNonce maps to use_dpop_nonce: the proof lacks the current
	// server nonce.
	ErrUseNonce = errors.New("dpop: use nonce")
	// ErrReplay reports a proof (or other single-use value) seen before.
	ErrReplay = errors.New("dpop: replayed")
)

// ErrorCode returns the OAuth error code for a verification error, or ""
// for errors that are not about the proof.
func ErrorCode(err error) string {
	switch {
	case errors.Is(err, ErrUseNonce):
		return "use_dpop_nonce"
	case errors.Is(err, ErrInvalidProof), errors.Is(err, ErrReplay):
		return "invalid_dpop_proof"
	}
	return ""
}

// ProofParams is what a proof is bound to.
type ProofParams struct {
	Method string
	URL    string
	// AccessToken, when set, is bound through ath.
	AccessToken string
	// Nonce is the server's last DPoP-Nonce, if any.
	Nonce string
	// Now is the proof's iat; zero means time.Now.
	Now time.Time
}

type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// NewProof signs a proof for one request with key (RFC 9449 §4.2).
func NewProof(ctx context.Context, key crypto.Signer, p ProofParams) (string, error) {
	if p.Method == "" {
		return "", errors.New("dpop: proof needs a method")
	}
	u, err := url.Parse(p.URL)
	if err != nil || !u.IsAbs() {
		return "", fmt.Errorf("dpop: proof URL %q is not absolute", p.URL)
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	c := proofClaims{JTI: base64.RawURLEncoding.EncodeToString(jti), HTM: p.Method, HTU: u.String(), IAT: now.Unix(), Nonce: p.Nonce}
	if p.AccessToken != "" {
		c.ATH = AccessTokenHash(p.AccessToken)
	}
	tok, err := jose.SignWithHeader(ctx, key, jose.Header{Typ: jose.TypDPoP, EmbedJWK: true}, c)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	return tok, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of key, the value of
// cnf.jkt.
func Thumbprint(key crypto.PublicKey) (string, error) { return jose.Thumbprint(key) }

// AccessTokenHash is the ath of an access token: base64url(SHA-256(at)).
func AccessTokenHash(at string) string {
	sum := sha256.Sum256([]byte(at))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ReplayCache remembers single-use values.
type ReplayCache interface {
	// Remember records key until until; it returns an error wrapping
	// ErrReplay if key is already remembered.
	Remember(ctx context.Context, key string, until time.Time) error
}

// MemoryReplayCache is a ReplayCache for one process.
type MemoryReplayCache struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]time.Time
	// MaxEntries bounds the cache; when full, Remember refuses new keys
	// rather than forgetting live ones (which would allow replays).
	MaxEntries int
}

// NewMemoryReplayCache returns an empty cache; now nil means time.Now.
func NewMemoryReplayCache(now func() time.Time) *MemoryReplayCache {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{now: now, entries: map[string]time.Time{}, MaxEntries: 1 << 20}
}

// Remember implements ReplayCache.
func (c *MemoryReplayCache) Remember(_ context.Context, key string, until time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if exp, ok := c.entries[key]; ok && now.Before(exp) {
		return fmt.Errorf("%w: %s", ErrReplay, "jti already used")
	}
	if len(c.entries) >= c.MaxEntries {
		for k, exp := range c.entries {
			if !now.Before(exp) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.MaxEntries {
			return errors.New("dpop: replay cache is full")
		}
	}
	c.entries[key] = until
	return nil
}

// NonceSource issues and checks server nonces (RFC 9449 §8).
type NonceSource interface {
	Nonce(ctx context.Context) (string, error)
	Check(ctx context.Context, nonce string) error
}

// HMACNonces are stateless nonces: a time bucket and its HMAC. A nonce is
// good in its bucket and the next one.
type HMACNonces struct {
	key    []byte
	window time.Duration
	now    func() time.Time
}

// DefaultNonceWindow is the bucket length of HMACNonces.
const DefaultNonceWindow = 5 * time.Minute

// NewHMACNonces returns nonces keyed by key (at least 32 bytes); window
// zero means DefaultNonceWindow, now nil means time.Now.
func NewHMACNonces(key []byte, window time.Duration, now func() time.Time) (*HMACNonces, error) {
	if len(key) < 32 {
		return nil, errors.New("dpop: nonce key must be at least 32 bytes")
	}
	if window <= 0 {
		window = DefaultNonceWindow
	}
	if now == nil {
		now = time.Now
	}
	return &HMACNonces{key: append([]byte(nil), key...), window: window, now: now}, nil
}

func (n *HMACNonces) bucket() uint64 { return uint64(n.now().UnixNano() / int64(n.window)) }

func (n *HMACNonces) mac(bucket uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], bucket)
	m := hmac.New(sha256.New, n.key)
	m.Write(b[:])
	return append(b[:], m.Sum(nil)[:16]...)
}

// Nonce implements NonceSource.
func (n *HMACNonces) Nonce(context.Context) (string, error) {
	return base64.RawURLEncoding.EncodeToString(n.mac(n.bucket())), nil
}

// Check implements NonceSource.
func (n *HMACNonces) Check(_ context.Context, nonce string) error {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 24 {
		return fmt.Errorf("%w: the nonce is not one of this server's", ErrUseNonce)
	}
	b := binary.BigEndian.Uint64(raw[:8])
	cur := n.bucket()
	if b != cur && b+1 != cur {
		return fmt.Errorf("%w: the nonce is stale", ErrUseNonce)
	}
	if !hmac.Equal(raw, n.mac(b)) {
		return fmt.Errorf("%w: the nonce is not one of this server's", ErrUseNonce)
	}
	return nil
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Replay makes proofs single-use. Required.
	Replay ReplayCache
	// Nonces, when set, makes a current server nonce required.
	Nonces NonceSource
	// Algorithms accepted; nil means ES256, ES384, ES512, EdDSA, PS256,
	// RS256.
	Algorithms []jose.Alg
	// MaxAge refuses proofs whose iat is older; zero means 5 minutes.
	MaxAge time.Duration
	// Leeway accepts proofs whose iat is that far in the future; zero
	// means 30 seconds.
	Leeway time.Duration
	// MaxProofSize caps a proof; zero means 8 KiB.
	MaxProofSize int
	Now          func() time.Time
}

// Verifier checks DPoP proofs.
type Verifier struct {
	cfg VerifierConfig
}

// DefaultAlgorithms are the proof algorithms accepted by default.
var DefaultAlgorithms = []jose.Alg{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256, jose.RS256}

// NewVerifier checks cfg and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Replay == nil {
		return nil, errors.New("dpop: a replay cache is required")
	}
	if cfg.Algorithms == nil {
		cfg.Algorithms = DefaultAlgorithms
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.MaxProofSize <= 0 {
		cfg.MaxProofSize = 8 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg}, nil
}

// Request is what a proof must match.
type Request struct {
	Method string
	URL    *url.URL
	// AccessToken, when set, requires a matching ath.
	AccessToken string
	// JKT, when set, requires the proof key to have this thumbprint (the
	// token's cnf.jkt).
	JKT string
}

// Proof is a verified proof.
type Proof struct {
	JKT      string
	JTI      string
	IssuedAt time.Time
	Nonce    string
	Key      crypto.PublicKey
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidProof}, args...)...)
}

// Verify checks proof against req (RFC 9449 §4.3) and records its jti; a
// proof that fails any check does not consume its jti.
func (v *Verifier) Verify(ctx context.Context, proof string, req Request) (*Proof, error) {
	if req.URL == nil || req.Method == "" {
		return nil, errors.New("dpop: request method and URL are required")
	}
	t, err := jose.Verify(ctx, proof, jose.VerifyOptions{
		Types:            []jose.Typ{jose.TypDPoP},
		Algorithms:       v.cfg.Algorithms,
		AllowEmbeddedJWK: true,
		OptionalExp:      true,
		MaxTokenSize:     v.cfg.MaxProofSize,
		Now:              v.cfg.Now,
		Leeway:           v.cfg.Leeway,
	})
	if err != nil {
		return nil, invalid("%v", strings.TrimPrefix(err.Error(), "jose: "))
	}
	var c proofClaims
	if err := t.Decode(&c); err != nil {
		return nil, invalid("claims are malformed")
	}
	for name, ok := range map[string]bool{"jti": c.JTI != "", "htm": c.HTM != "", "htu": c.HTU != "", "iat": c.IAT != 0} {
		if !ok {
			return nil, invalid("claim %s is missing", name)
		}
	}
	if len(c.JTI) > 256 {
		return nil, invalid("jti is too long")
	}
	if c.HTM != req.Method {
		return nil, invalid("htm %q does not match method %q", truncate(c.HTM, 16), req.Method)
	}
	htu, err := url.Parse(c.HTU)
	if err != nil || !htu.IsAbs() {
		return nil, invalid("htu is not an absolute URL")
	}
	if normalize(htu) != normalize(req.URL) {
		return nil, invalid("htu does not match the request URL")
	}
	now := v.cfg.Now()
	iat := time.Unix(c.IAT, 0)
	if iat.Before(now.Add(-v.cfg.MaxAge)) {
		return nil, invalid("iat is too old")
	}
	if iat.After(now.Add(v.cfg.Leeway)) {
		return nil, invalid("iat is in the future")
	}
	if req.AccessToken != "" {
		if c.ATH == "" {
			return nil, invalid("ath is missing")
		}
		if !hmac.Equal([]byte(c.ATH), []byte(AccessTokenHash(req.AccessToken))) {
			return nil, invalid("ath does not match the access token")
		}
	}
	jkt, err := jose.Thumbprint(t.Key)
	if err != nil {
		return nil, invalid("jwk has no thumbprint")
	}
	if req.JKT != "" && jkt != req.JKT {
		return nil, invalid("the proof key is not the key the token is bound to")
	}
	if v.cfg.Nonces != nil {
		if c.Nonce == "" {
			return nil, fmt.Errorf("%w: a server nonce is required", ErrUseNonce)
		}
		if err := v.cfg.Nonces.Check(ctx, c.Nonce); err != nil {
			return nil, err
		}
	}
	if err := v.cfg.Replay.Remember(ctx, jkt+":"+c.JTI, iat.Add(v.cfg.MaxAge+v.cfg.Leeway)); err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, fmt.Errorf("%w: %w: the proof was already used", ErrInvalidProof, ErrReplay)
		}
		return nil, fmt.Errorf("dpop: replay cache: %w", err)
	}
	return &Proof{JKT: jkt, JTI: c.JTI, IssuedAt: iat, Nonce: c.Nonce, Key: t.Key}, nil
}

// normalize applies syntax-based normalization (RFC 3986 §6.2.2) to the
// parts htu compares: lowercase scheme and host, default port dropped,
// empty path as "/"; query and fragment are ignored.
func normalize(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
