package dpop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// NonceSource issues and checks server nonces (RFC 9449 §8).
type NonceSource interface {
	// Nonce returns the nonce to send in DPoP-Nonce now.
	Nonce(ctx context.Context) (string, error)
	// Check returns nil when nonce is acceptable, an error wrapping
	// ErrUseNonce when it is not (stale, unknown), and any other error
	// when it cannot tell.
	Check(ctx context.Context, nonce string) error
}

// DefaultNonceWindow is the bucket length of HMACNonces when none is
// given. A nonce stays good for one to two windows.
const DefaultNonceWindow = 5 * time.Minute

// MinNonceKeySize is the smallest HMACNonces key, in bytes.
const MinNonceKeySize = 32

const (
	bucketSize = 8
	nonceSize  = bucketSize + sha256.Size
)

// HMACNonces are stateless nonces: base64url(bucket || HMAC-SHA256(key,
// bucket)), where bucket is the current time divided by the window, as 8
// big-endian bytes. Check accepts nonces of the current and the previous
// bucket only.
type HMACNonces struct {
	key    []byte
	window time.Duration
	now    func() time.Time
}

var _ NonceSource = (*HMACNonces)(nil)

// NewHMACNonces returns nonces keyed by key (at least MinNonceKeySize
// bytes, copied). window zero means DefaultNonceWindow; now nil means
// time.Now.
func NewHMACNonces(key []byte, window time.Duration, now func() time.Time) (*HMACNonces, error) {
	if len(key) < MinNonceKeySize {
		return nil, errors.New("dpop: nonce key must be at least 32 bytes")
	}
	if window < 0 {
		return nil, errors.New("dpop: nonce window must not be negative")
	}
	if window == 0 {
		window = DefaultNonceWindow
	}
	if now == nil {
		now = time.Now
	}
	return &HMACNonces{key: append([]byte(nil), key...), window: window, now: now}, nil
}

func (n *HMACNonces) bucket() uint64 {
	return uint64(n.now().UnixNano() / int64(n.window))
}

// nonce returns the raw nonce of bucket b.
func (n *HMACNonces) nonce(b uint64) []byte {
	out := make([]byte, bucketSize, nonceSize)
	binary.BigEndian.PutUint64(out, b)
	m := hmac.New(sha256.New, n.key)
	m.Write(out)
	return m.Sum(out)
}

// Nonce implements NonceSource.
func (n *HMACNonces) Nonce(context.Context) (string, error) {
	return base64.RawURLEncoding.EncodeToString(n.nonce(n.bucket())), nil
}

// Check implements NonceSource.
func (n *HMACNonces) Check(_ context.Context, nonce string) error {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceSize {
		return useNonce("nonce was not issued by this server")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil || len(raw) != nonceSize {
		return useNonce("nonce was not issued by this server")
	}
	b := binary.BigEndian.Uint64(raw[:bucketSize])
	if !hmac.Equal(raw, n.nonce(b)) {
		return useNonce("nonce was not issued by this server")
	}
	if cur := n.bucket(); b != cur && b+1 != cur {
		return useNonce("nonce is stale")
	}
	return nil
}
