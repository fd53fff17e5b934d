package ca

import (
	"context"
	"crypto"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// failingJournal wraps a journal and fails Save while fail is set.
type failingJournal struct {
	MemoryJournal
	mu   sync.Mutex
	fail bool
}

var errDiskFull = errors.New("disk full")

func (j *failingJournal) setFail(v bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fail = v
}

func (j *failingJournal) Save(ctx context.Context, data []byte) error {
	j.mu.Lock()
	fail := j.fail
	j.mu.Unlock()
	if fail {
		return errDiskFull
	}
	return j.MemoryJournal.Save(ctx, data)
}

const (
	testTD      = "example.org"
	testCATTL   = 60 * time.Hour
	testSVIDTTL = time.Hour
)

// t0 is a fixed start time for fake clocks (whole seconds).
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func newTestCA(t testing.TB, clock func() time.Time, j Journal) *CA {
	t.Helper()
	if j == nil {
		j = &MemoryJournal{}
	}
	c, err := New(context.Background(), Config{
		TrustDomain: testTD,
		Journal:     j,
		SVIDTTL:     testSVIDTTL,
		CATTL:       testCATTL,
		Now:         clock,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func mustID(t testing.TB, s string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// witOptions verifies a WIT-SVID (SPECS.md §10.4) against bundle b at now.
func witOptions(b *spiffebundle.Bundle, now func() time.Time) jose.VerifyOptions {
	return jose.VerifyOptions{
		Types:      []jose.Typ{jose.TypWIT},
		RequireKID: true,
		Keys: func(_ context.Context, kid string) (crypto.PublicKey, error) {
			k, ok := b.FindWITAuthority(kid)
			if !ok {
				return nil, jose.ErrUnknownKey
			}
			return k, nil
		},
		ForbidAudience: true,
		RequireSubject: true,
		Now:            now,
	}
}

// jwtOptions verifies a JWT-SVID against bundle b at now.
func jwtOptions(b *spiffebundle.Bundle, aud string, now func() time.Time) jose.VerifyOptions {
	return jose.VerifyOptions{
		Types:           []jose.Typ{jose.TypJWT},
		AllowMissingTyp: true,
		RequireKID:      true,
		Keys: func(_ context.Context, kid string) (crypto.PublicKey, error) {
			k, ok := b.FindJWTAuthority(kid)
			if !ok {
				return nil, jose.ErrUnknownKey
			}
			return k, nil
		},
		Audience: aud,
		Now:      now,
	}
}
