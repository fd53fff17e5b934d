package userauth

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// DefaultHashWait is how long a password check waits for a free slot when
// [LimiterConfig.Wait] is zero.
const DefaultHashWait = 2 * time.Second

// DefaultMaxHashes returns the number of password hashes that may run at
// once when [LimiterConfig.MaxConcurrent] is zero: twice GOMAXPROCS. More
// would not finish sooner, since each hash keeps a CPU busy, but would
// each hold their memory.
func DefaultMaxHashes() int { return 2 * runtime.GOMAXPROCS(0) }

// LimiterConfig configures [NewLimiter].
type LimiterConfig struct {
	// MaxConcurrent is how many password hashes may run at once; zero
	// means [DefaultMaxHashes]. An argon2id check with the parameters
	// [HashPassword] uses holds 19 MiB while it runs, so hashing never
	// holds more than MaxConcurrent times the memory of the costliest
	// configured hash.
	MaxConcurrent int
	// Wait is how long a check waits for a free slot before it fails with
	// [ErrBusy]; zero means [DefaultHashWait], negative not to wait.
	Wait time.Duration
	// OnHash, when set, is called as each hash starts, and the function
	// it returns (if not nil) as that hash ends: a hook for metrics and
	// tests. It must be quick and safe for concurrent use.
	OnHash func() (done func())
}

// Limiter bounds how many password hashes run at once, so that any number
// of concurrent sign-ins holds a bounded amount of memory. Checks beyond
// the bound wait, for at most the configured time and never beyond their
// context, then fail with [ErrBusy]. It is safe for concurrent use.
type Limiter struct {
	slots  chan struct{}
	wait   time.Duration
	onHash func() (done func())
}

// NewLimiter checks cfg and returns a Limiter.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	n := cfg.MaxConcurrent
	switch {
	case n == 0:
		n = DefaultMaxHashes()
	case n < 0:
		return nil, fmt.Errorf("userauth: limiter: MaxConcurrent %d is negative", n)
	}
	wait := cfg.Wait
	switch {
	case wait == 0:
		wait = DefaultHashWait
	case wait < 0:
		wait = 0
	}
	return &Limiter{slots: make(chan struct{}, n), wait: wait, onHash: cfg.OnHash}, nil
}

var defaultLimiter = sync.OnceValue(func() *Limiter {
	l, _ := NewLimiter(LimiterConfig{})
	return l
})

// DefaultLimiter returns the process's shared Limiter with the default
// settings, made on first use. A [Directory] made without [WithLimiter]
// uses it.
func DefaultLimiter() *Limiter { return defaultLimiter() }

// MaxConcurrent returns how many hashes may run at once.
func (l *Limiter) MaxConcurrent() int { return cap(l.slots) }

// Wait returns how long a check waits for a free slot.
func (l *Limiter) Wait() time.Duration { return l.wait }

// Verify is [VerifyPassword] run under the limit. A malformed hash and a
// password refused without hashing (empty, too long) are answered at once;
// otherwise Verify waits for a free slot and fails with an error wrapping
// [ErrBusy] if none frees in time, or with ctx's error if ctx ends first.
// Once the hash has started it runs to the end.
func (l *Limiter) Verify(ctx context.Context, encoded, password string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	if h.rejectsUnhashed(password) {
		return false, nil
	}
	if err := l.acquire(ctx); err != nil {
		return false, err
	}
	defer func() { <-l.slots }()
	if l.onHash != nil {
		if done := l.onHash(); done != nil {
			defer done()
		}
	}
	return h.verify(password)
}

func (l *Limiter) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("userauth: password check: %w", err)
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.wait <= 0 {
		return fmt.Errorf("%w: all %d slots are taken", ErrBusy, cap(l.slots))
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("userauth: password check: %w", ctx.Err())
	case <-t.C:
		return fmt.Errorf("%w: no free slot of %d within %v", ErrBusy, cap(l.slots), l.wait)
	}
}
