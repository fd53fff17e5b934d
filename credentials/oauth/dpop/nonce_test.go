package dpop

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHMACNoncesRotation(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: epoch.Truncate(time.Minute)}
	n, err := NewHMACNonces(nonceKey, time.Minute, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	first, err := n.Nonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(first); err != nil || len(raw) != 8+32 {
		t.Fatalf("nonce %q: %d bytes, %v", first, len(raw), err)
	}
	steps := []struct {
		advance  time.Duration
		accepted bool
		same     bool // the current nonce is still first
	}{
		{0, true, true},
		{59 * time.Second, true, true},   // same bucket
		{time.Second, true, false},       // next bucket: first is the previous one
		{59 * time.Second, true, false},  // end of the next bucket
		{time.Second, false, false},      // two buckets on: stale
		{-3 * time.Minute, false, false}, // clock went back past first's bucket
		{time.Minute, true, true},        // back in first's bucket
	}
	for i, s := range steps {
		c.now = c.now.Add(s.advance)
		err := n.Check(ctx, first)
		if (err == nil) != s.accepted {
			t.Fatalf("step %d (%s): Check = %v, want accepted %v", i, c.now.Sub(epoch.Truncate(time.Minute)), err, s.accepted)
		}
		if err != nil && (!errors.Is(err, ErrUseNonce) || err.Error() != "dpop: nonce is stale") {
			t.Fatalf("step %d: %v", i, err)
		}
		cur, _ := n.Nonce(ctx)
		if (cur == first) != s.same {
			t.Fatalf("step %d: nonce changed %v, want %v", i, cur != first, !s.same)
		}
		if err := n.Check(ctx, cur); err != nil {
			t.Fatalf("step %d: current nonce refused: %v", i, err)
		}
	}
}

func TestHMACNoncesSharedKey(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: epoch}
	a, _ := NewHMACNonces(nonceKey, time.Minute, c.Now)
	b, _ := NewHMACNonces(append([]byte(nil), nonceKey...), time.Minute, c.Now)
	otherKey := []byte(strings.Repeat("k", 32))
	other, _ := NewHMACNonces(otherKey, time.Minute, c.Now)
	na, _ := a.Nonce(ctx)
	if err := b.Check(ctx, na); err != nil {
		t.Fatalf("a host with the same key refused the nonce: %v", err)
	}
	if err := other.Check(ctx, na); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("a host with another key: %v", err)
	}
	// The key is copied.
	key := []byte(strings.Repeat("z", 32))
	d, _ := NewHMACNonces(key, time.Minute, c.Now)
	nd, _ := d.Nonce(ctx)
	key[0] = 'y'
	if err := d.Check(ctx, nd); err != nil {
		t.Fatalf("changing the caller's key changed the nonces: %v", err)
	}
}

func TestHMACNoncesMalformed(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: epoch}
	n, _ := NewHMACNonces(nonceKey, time.Minute, c.Now)
	good, _ := n.Nonce(ctx)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := map[string]string{
		"empty":             "",
		"garbage":           "not a nonce",
		"short":             good[:len(good)-1],
		"long":              good + "A",
		"padded":            base64.URLEncoding.EncodeToString(raw),
		"std alphabet":      strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+",
		"bucket changed":    flip(7),
		"mac changed":       flip(20),
		"zero":              base64.RawURLEncoding.EncodeToString(make([]byte, 40)),
		"huge":              strings.Repeat("A", 1<<16),
		"non-canonical b64": good[:len(good)-1] + string(nonCanonicalLast(good[len(good)-1])),
	}
	for name, nonce := range tests {
		t.Run(name, func(t *testing.T) {
			err := n.Check(ctx, nonce)
			if !errors.Is(err, ErrUseNonce) || ErrorCode(err) != CodeUseNonce {
				t.Fatalf("Check = %v", err)
			}
			if err.Error() != "dpop: nonce was not issued by this server" {
				t.Fatalf("message %q", err)
			}
		})
	}
}

// nonCanonicalLast returns another base64url character that decodes to
// the same bytes as c in the last position of a 54-character string: only
// the top 2 bits of that character count, and it flips the lowest.
func nonCanonicalLast(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

func TestNewHMACNonces(t *testing.T) {
	tests := []struct {
		name   string
		key    []byte
		window time.Duration
		ok     bool
	}{
		{"32-byte key", make([]byte, 32), time.Minute, true},
		{"default window", make([]byte, 64), 0, true},
		{"31-byte key", make([]byte, 31), time.Minute, false},
		{"nil key", nil, time.Minute, false},
		{"negative window", make([]byte, 32), -time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NewHMACNonces(tt.key, tt.window, nil)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "dpop: ") {
					t.Fatalf("message %q", err)
				}
				return
			}
			if tt.window == 0 && n.window != DefaultNonceWindow {
				t.Fatalf("window %s", n.window)
			}
			nonce, _ := n.Nonce(context.Background())
			if err := n.Check(context.Background(), nonce); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func FuzzHMACNoncesCheck(f *testing.F) {
	c := &clock{now: epoch}
	n, _ := NewHMACNonces(nonceKey, time.Minute, c.Now)
	good, _ := n.Nonce(context.Background())
	for _, s := range []string{good, "", "AAAA", good + "A", strings.Repeat("_", 54)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := n.Check(context.Background(), s)
		if err == nil && s != good {
			t.Fatalf("accepted %q", s)
		}
		if err != nil && !errors.Is(err, ErrUseNonce) {
			t.Fatalf("error %v does not wrap ErrUseNonce", err)
		}
	})
}
