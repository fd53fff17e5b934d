package userauth

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewLimiter(t *testing.T) {
	tests := []struct {
		name     string
		cfg      LimiterConfig
		wantMax  int
		wantWait time.Duration
		wantErr  string
	}{
		{name: "defaults", wantMax: 2 * runtime.GOMAXPROCS(0), wantWait: DefaultHashWait},
		{name: "set", cfg: LimiterConfig{MaxConcurrent: 3, Wait: time.Second}, wantMax: 3, wantWait: time.Second},
		{name: "no wait", cfg: LimiterConfig{MaxConcurrent: 1, Wait: -1}, wantMax: 1, wantWait: 0},
		{name: "negative max", cfg: LimiterConfig{MaxConcurrent: -1}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLimiter(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "userauth: ") {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.MaxConcurrent() != tt.wantMax || l.Wait() != tt.wantWait {
				t.Errorf("max %d wait %v, want %d %v", l.MaxConcurrent(), l.Wait(), tt.wantMax, tt.wantWait)
			}
		})
	}
	if d := DefaultLimiter(); d != DefaultLimiter() || d.MaxConcurrent() != DefaultMaxHashes() {
		t.Error("DefaultLimiter is not one limiter with the default bound")
	}
}

// heldLimiter returns a limiter of one slot and the given wait, whose slot
// is held by a check that blocks until the returned release is called.
func heldLimiter(t *testing.T, hash string, wait time.Duration) (*Limiter, func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	var holding atomic.Bool
	l, err := NewLimiter(LimiterConfig{MaxConcurrent: 1, Wait: wait, OnHash: func() func() {
		if holding.CompareAndSwap(false, true) {
			close(started)
			<-unblock
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = l.Verify(context.Background(), hash, "pw") })
	<-started
	release := sync.OnceFunc(func() {
		close(unblock)
		wg.Wait()
	})
	t.Cleanup(release)
	return l, release
}

// TestLimiterVerify: what needs no hashing is answered at once even when
// every slot is taken; a check that needs a slot fails with ErrBusy, or
// with its context's error, and succeeds once the slot is free.
func TestLimiterVerify(t *testing.T) {
	good := cheapArgon(t, "pw")
	l, release := heldLimiter(t, good, -1)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		hash, pw string
		wantErr  error
	}{
		{name: "busy", hash: good, pw: "pw", wantErr: ErrBusy},
		{name: "cancelled", ctx: cancelled, hash: good, pw: "pw", wantErr: context.Canceled},
		{name: "malformed hash", hash: "nope", pw: "pw", wantErr: ErrBadHash},
		{name: "empty password", hash: good, pw: ""},
		{name: "overlong password", hash: good, pw: strings.Repeat("p", maxPasswordLen+1)},
		{name: "bcrypt beyond 72 bytes", hash: "$2b$04$" + strings.Repeat("a", 53), pw: strings.Repeat("p", 73)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			ok, err := l.Verify(ctx, tt.hash, tt.pw)
			if ok || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify = %v, %v; want false, %v", ok, err, tt.wantErr)
			}
		})
	}
	release()
	if ok, err := l.Verify(t.Context(), good, "pw"); !ok || err != nil {
		t.Fatalf("Verify with the slot free = %v, %v", ok, err)
	}
}

// TestLimiterWaits: a check waits for a slot that frees within the wait,
// and gives up with ErrBusy after the wait, or when its context ends.
func TestLimiterWaits(t *testing.T) {
	good := cheapArgon(t, "pw")
	t.Run("slot frees in time", func(t *testing.T) {
		l, release := heldLimiter(t, good, time.Minute)
		time.AfterFunc(20*time.Millisecond, release)
		if ok, err := l.Verify(t.Context(), good, "pw"); !ok || err != nil {
			t.Fatalf("Verify = %v, %v", ok, err)
		}
	})
	t.Run("wait ends", func(t *testing.T) {
		l, _ := heldLimiter(t, good, 20*time.Millisecond)
		if _, err := l.Verify(t.Context(), good, "pw"); !errors.Is(err, ErrBusy) {
			t.Fatalf("Verify = %v, want ErrBusy", err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		l, _ := heldLimiter(t, good, time.Minute)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if _, err := l.Verify(ctx, good, "pw"); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrBusy) {
			t.Fatalf("Verify = %v, want the context's deadline", err)
		}
	})
}

// TestLimiterBoundsConcurrency: many concurrent checks never run more
// hashes at once than the bound, and every one is checked.
func TestLimiterBoundsConcurrency(t *testing.T) {
	const checks, limit = 64, 3
	var running, peak, total atomic.Int64
	l, err := NewLimiter(LimiterConfig{MaxConcurrent: limit, Wait: time.Minute, OnHash: func() func() {
		total.Add(1)
		n := running.Add(1)
		for old := peak.Load(); n > old && !peak.CompareAndSwap(old, n); old = peak.Load() {
		}
		time.Sleep(time.Millisecond) // keep the slot long enough to overlap
		return func() { running.Add(-1) }
	}})
	if err != nil {
		t.Fatal(err)
	}
	hash := cheapArgon(t, "pw")
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range checks {
		wg.Go(func() {
			if ok, err := l.Verify(context.Background(), hash, "pw"); !ok || err != nil {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 0 || total.Load() != checks {
		t.Errorf("%d checks failed, %d hashed; want 0 and %d", wrong.Load(), total.Load(), checks)
	}
	if p := peak.Load(); p < 1 || p > limit {
		t.Errorf("%d hashes at once, limit %d", p, limit)
	}
}

// TestAuthenticateUsesLimiter: Authenticate hashes under the directory's
// limiter, for a known and an unknown name alike, and reports a busy
// limiter as ErrBusy, not as bad credentials.
func TestAuthenticateUsesLimiter(t *testing.T) {
	var total atomic.Int64
	l, err := NewLimiter(LimiterConfig{OnHash: func() func() { total.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDirectory([]User{{Name: "alice", PasswordHash: cheapArgon(t, "pw")}}, WithLimiter(l))
	if err != nil {
		t.Fatal(err)
	}
	if d.Limiter() != l {
		t.Fatal("Limiter is not the one given")
	}
	if _, err := d.Authenticate(t.Context(), "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(t.Context(), "nobody", "pw"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if total.Load() != 2 {
		t.Errorf("%d hashes under the limiter, want 2", total.Load())
	}
	held, _ := heldLimiter(t, cheapArgon(t, "pw"), -1)
	busy, err := NewDirectory([]User{{Name: "alice", PasswordHash: cheapArgon(t, "pw")}}, WithLimiter(held))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "nobody"} {
		if _, err := busy.Authenticate(t.Context(), name, "pw"); !errors.Is(err, ErrBusy) || errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s with the limiter busy: %v, want ErrBusy", name, err)
		}
	}
	var none *Directory
	if none.Limiter() != DefaultLimiter() {
		t.Error("a nil directory does not use the default limiter")
	}
}
