package ca

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func auth(issued time.Time, lifetime time.Duration) *authority {
	return &authority{issuedAt: issued, notAfter: issued.Add(lifetime)}
}

func TestPlan(t *testing.T) {
	const life = 60 * time.Hour
	cur := auth(t0, life)
	next := auth(t0.Add(31*time.Hour), life)
	oldRetired := auth(t0.Add(-50*time.Hour), life) // expires t0+10h
	type want = kindPlan
	tests := []struct {
		name string
		sl   slots
		now  time.Time
		want kindPlan
	}{
		{"empty state creates", slots{}, t0, want{create: true}},
		{"fresh current does nothing", slots{current: cur}, t0.Add(time.Hour), want{}},
		{"just before half life", slots{current: cur}, t0.Add(30 * time.Hour), want{}},
		{"past half life prepares", slots{current: cur}, t0.Add(30*time.Hour + time.Second), want{prepare: true}},
		{"prepared waits", slots{current: cur, next: next}, t0.Add(49 * time.Hour), want{}},
		{"at five sixths exactly waits", slots{current: cur, next: next}, t0.Add(50 * time.Hour), want{}},
		{"past five sixths activates", slots{current: cur, next: next}, t0.Add(50*time.Hour + time.Second), want{activate: true}},
		{"past five sixths without next prepares", slots{current: cur}, t0.Add(55 * time.Hour), want{prepare: true}},
		{"expired current activates next", slots{current: cur, next: next}, t0.Add(61 * time.Hour), want{activate: true}},
		{"expired current without next creates", slots{current: cur}, t0.Add(61 * time.Hour), want{create: true}},
		{"expired current and next creates", slots{current: cur, next: auth(t0, time.Hour)}, t0.Add(61 * time.Hour), want{dropNext: true, create: true}},
		{"activated next already old prepares too", slots{current: cur, next: auth(t0.Add(10*time.Hour), life)}, t0.Add(51 * time.Hour), want{activate: true, prepare: true}},
		{"expired retired dropped", slots{current: cur, retired: []*authority{oldRetired, auth(t0, life)}}, t0.Add(10 * time.Hour), want{dropRetired: []int{0}}},
		{"retired kept until expiry", slots{current: cur, retired: []*authority{oldRetired}}, t0.Add(10*time.Hour - time.Second), want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &state{}
			for k := range s.kinds {
				s.kinds[k] = tt.sl
			}
			p := plan(s, tt.now)
			for k := range p {
				if diff := cmp.Diff(tt.want, p[k], cmp.AllowUnexported(kindPlan{})); diff != "" {
					t.Errorf("%s (-want +got):\n%s", kind(k), diff)
				}
			}
			if got := p.empty(); got != tt.want.empty() {
				t.Errorf("empty = %v", got)
			}
		})
	}
}

func TestPlanIsPerKind(t *testing.T) {
	s := &state{}
	s.kinds[kindX509] = slots{current: auth(t0, 60*time.Hour)}
	s.kinds[kindJWT] = slots{current: auth(t0.Add(-40*time.Hour), 60*time.Hour)}
	s.kinds[kindWIT] = slots{}
	p := plan(s, t0)
	if !p[kindX509].empty() || !p[kindJWT].prepare || !p[kindWIT].create {
		t.Errorf("plan = %+v", p)
	}
}

// signerKID returns the key ID that signed an X.509-SVID: the authority
// key ID of the leaf.
func authorityKeyID(t *testing.T, svid *x509svid.SVID) string {
	t.Helper()
	return string(svid.Certificates[0].AuthorityKeyId)
}

func TestRotationLifecycle(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	ctx := context.Background()
	id := mustID(t, "spiffe://example.org/agent/a")
	notes, cancel := c.Subscribe()
	defer cancel()

	seqs := []uint64{seqOf(t, c.Bundle())}
	first := c.Bundle()
	firstRoot := first.X509Authorities()[0]
	firstJWT := onlyKID(t, first.JWTAuthorities())
	firstWIT := onlyKID(t, first.WITAuthorities())

	// Nothing to do at t0: no change, no notification, same sequence.
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	expectNoNote(t, notes)
	if seqOf(t, c.Bundle()) != seqs[0] {
		t.Error("sequence changed without a change")
	}

	// Past half of the lifetime: the next authorities are published, the
	// current ones still sign.
	clock.Set(t0.Add(testCATTL/2 + time.Second))
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	expectNote(t, notes)
	prepared := c.Bundle()
	seqs = append(seqs, seqOf(t, prepared))
	if n := len(prepared.X509Authorities()); n != 2 {
		t.Fatalf("%d X.509 authorities after prepare, want 2", n)
	}
	if len(prepared.JWTAuthorities()) != 2 || len(prepared.WITAuthorities()) != 2 {
		t.Fatalf("JWT %d / WIT %d authorities after prepare, want 2", len(prepared.JWTAuthorities()), len(prepared.WITAuthorities()))
	}
	svid, err := c.NewX509SVID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if authorityKeyID(t, svid) != string(firstRoot.SubjectKeyId) {
		t.Error("X.509-SVID not signed by the current authority after prepare")
	}
	jwt, _, err := c.NewJWTSVID(ctx, id, []string{"aud"})
	if err != nil {
		t.Fatal(err)
	}
	if kid := tokenHeader(t, jwt)["kid"]; kid != firstJWT {
		t.Errorf("JWT-SVID kid %v, want current %s", kid, firstJWT)
	}
	wit, _, _, err := c.NewWITSVID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if kid := tokenHeader(t, wit)["kid"]; kid != firstWIT {
		t.Errorf("WIT-SVID kid %v, want current %s", kid, firstWIT)
	}

	// Past five sixths: the prepared authorities sign; what they sign
	// validates against the bundle fetched before activation.
	clock.Set(t0.Add(testCATTL*5/6 + time.Second))
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	expectNote(t, notes)
	activated := c.Bundle()
	seqs = append(seqs, seqOf(t, activated))
	if len(activated.X509Authorities()) != 2 {
		t.Errorf("%d X.509 authorities after activation, want 2 (old one retired, still valid)", len(activated.X509Authorities()))
	}
	svid2, err := c.NewX509SVID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if authorityKeyID(t, svid2) == string(firstRoot.SubjectKeyId) {
		t.Error("X.509-SVID still signed by the old authority after activation")
	}
	if _, _, err := x509svid.Verify(svid2.Certificates, prepared, x509svid.WithTime(clock.Now())); err != nil {
		t.Errorf("new X.509-SVID against the bundle fetched before activation: %v", err)
	}
	if _, _, err := x509svid.Verify(svid2.Certificates, first, x509svid.WithTime(clock.Now())); err == nil {
		t.Error("new X.509-SVID validates against the bundle that predates the next authority")
	}
	// Credentials of the old authority still validate (it is retired, not
	// dropped).
	if _, _, err := x509svid.Verify(svid.Certificates, activated, x509svid.WithTime(svid.Certificates[0].NotBefore.Add(time.Minute))); err != nil {
		t.Errorf("old X.509-SVID against the current bundle: %v", err)
	}
	jwt2, _, err := c.NewJWTSVID(ctx, id, []string{"aud"})
	if err != nil {
		t.Fatal(err)
	}
	if kid := tokenHeader(t, jwt2)["kid"]; kid == firstJWT {
		t.Error("JWT-SVID still signed by the old key after activation")
	}
	if _, err := jose.Verify(ctx, jwt2, jwtOptions(prepared, "aud", clock.Now)); err != nil {
		t.Errorf("new JWT-SVID against the bundle fetched before activation: %v", err)
	}
	if _, _, err := c.ValidateJWTSVID(ctx, jwt2, "aud"); err != nil {
		t.Errorf("ValidateJWTSVID of new JWT-SVID: %v", err)
	}
	wit2, _, _, err := c.NewWITSVID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if kid := tokenHeader(t, wit2)["kid"]; kid == firstWIT {
		t.Error("WIT-SVID still signed by the old key after activation")
	}
	if _, err := jose.Verify(ctx, wit2, witOptions(prepared, clock.Now)); err != nil {
		t.Errorf("new WIT-SVID against the bundle fetched before activation: %v", err)
	}

	// Past the old authorities' expiry: they leave the bundle.
	clock.Set(t0.Add(testCATTL + time.Second))
	if err := c.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	expectNote(t, notes)
	final := c.Bundle()
	seqs = append(seqs, seqOf(t, final))
	if final.HasX509Authority(firstRoot) {
		t.Error("expired X.509 authority still in the bundle")
	}
	if final.HasJWTAuthority(firstJWT) || final.HasWITAuthority(firstWIT) {
		t.Error("expired JWT or WIT authority still in the bundle")
	}
	if len(final.X509Authorities()) == 0 || len(final.JWTAuthorities()) == 0 || len(final.WITAuthorities()) == 0 {
		t.Error("bundle lost its current authorities")
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Errorf("sequence numbers not increasing: %v", seqs)
		}
	}
}

func TestRotateAfterLongDowntime(t *testing.T) {
	clock := newFakeClock(t0)
	j := &MemoryJournal{}
	newTestCA(t, clock.Now, j)
	// Restart long after every authority expired.
	clock.Set(t0.Add(10 * testCATTL))
	c := newTestCA(t, clock.Now, j)
	b := c.Bundle()
	if len(b.X509Authorities()) != 1 || len(b.JWTAuthorities()) != 1 || len(b.WITAuthorities()) != 1 {
		t.Fatalf("bundle after downtime: %d/%d/%d authorities", len(b.X509Authorities()), len(b.JWTAuthorities()), len(b.WITAuthorities()))
	}
	if !b.X509Authorities()[0].NotAfter.After(clock.Now()) {
		t.Error("X.509 authority not renewed")
	}
	if _, err := c.NewX509SVID(context.Background(), mustID(t, "spiffe://example.org/a")); err != nil {
		t.Errorf("issuance after downtime: %v", err)
	}
}

func TestRotateSaveFailureKeepsState(t *testing.T) {
	clock := newFakeClock(t0)
	j := &failingJournal{}
	c := newTestCA(t, clock.Now, j)
	saved, err := j.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := c.Bundle()
	notes, cancel := c.Subscribe()
	defer cancel()

	clock.Set(t0.Add(testCATTL/2 + time.Second))
	j.setFail(true)
	if err := c.Rotate(context.Background()); !errors.Is(err, errDiskFull) {
		t.Fatalf("Rotate: err = %v, want disk full", err)
	}
	if !c.Bundle().Equal(before) {
		t.Error("bundle changed although the state could not be saved")
	}
	expectNoNote(t, notes)
	now, err := j.Load(context.Background())
	if err != nil || string(now) != string(saved) {
		t.Error("journal changed by a failed save")
	}
	j.setFail(false)
	if err := c.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	expectNote(t, notes)
	if len(c.Bundle().X509Authorities()) != 2 {
		t.Error("retry did not prepare the next authority")
	}
}

func TestSubscribeCoalescesAndCancels(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	ch, cancel := c.Subscribe()
	other, cancelOther := c.Subscribe()
	defer cancelOther()
	for _, at := range []time.Duration{testCATTL/2 + time.Second, testCATTL*5/6 + time.Second} {
		clock.Set(t0.Add(at))
		if err := c.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	expectNote(t, ch)
	expectNoNote(t, ch) // two changes, one notification
	expectNote(t, other)
	cancel()
	cancel() // idempotent
	if _, ok := <-ch; ok {
		t.Error("channel not closed after cancel")
	}
	clock.Set(t0.Add(testCATTL + time.Second))
	if err := c.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	expectNote(t, other)
}

func TestRun(t *testing.T) {
	clock := newFakeClock(t0)
	c, err := New(context.Background(), Config{
		TrustDomain:    testTD,
		Journal:        &MemoryJournal{},
		SVIDTTL:        testSVIDTTL,
		CATTL:          testCATTL,
		RotateInterval: time.Millisecond,
		Now:            clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	notes, cancelSub := c.Subscribe()
	defer cancelSub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	clock.Set(t0.Add(testCATTL/2 + time.Second))
	<-notes // Run rotated
	if len(c.Bundle().X509Authorities()) != 2 {
		t.Error("Run did not prepare the next authority")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil on cancellation", err)
	}
}

func seqOf(t *testing.T, b *spiffebundle.Bundle) uint64 {
	t.Helper()
	s, ok := b.SequenceNumber()
	if !ok {
		t.Fatal("bundle has no sequence number")
	}
	return s
}

func onlyKID[V any](t *testing.T, m map[string]V) string {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("%d keys, want 1", len(m))
	}
	for k := range m {
		return k
	}
	return ""
}

func expectNote(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
	default:
		t.Fatal("no notification")
	}
}

func expectNoNote(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("unexpected notification")
	default:
	}
}

// TestConcurrentIssuanceAndRotation issues credentials while rotations run;
// run with -race it checks the locking. The clock moves by a twelfth of the
// lifetime per rotation, so the current authority is never expired when a
// credential is issued, and every issuance must succeed.
func TestConcurrentIssuanceAndRotation(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	ctx := context.Background()
	id := mustID(t, "spiffe://example.org/agent/a")
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				if _, err := c.NewX509SVID(ctx, id); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
				if _, _, err := c.NewJWTSVID(ctx, id, []string{"aud"}); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
				if c.Bundle().Empty() {
					errs <- fmt.Errorf("worker %d: empty bundle", w)
					return
				}
			}
		}()
	}
	for i := 1; i <= 24; i++ {
		clock.Set(t0.Add(time.Duration(i) * testCATTL / 12))
		if err := c.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
