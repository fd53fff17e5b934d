package ca

import (
	"context"
	"testing"
	"time"
)

// TestStatus: a new CA reports one current authority of each kind, valid
// for the CA TTL and handing over at a sixth of it left; past half its
// lifetime the next one is listed with the same hand-over time, and after
// that the old one is retired and the next one current.
func TestStatus(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	byKindSlot := func() map[string]AuthorityStatus {
		m := map[string]AuthorityStatus{}
		for _, a := range c.Status() {
			m[a.Kind+"/"+a.Slot] = a
		}
		return m
	}
	st := c.Status()
	if len(st) != 3 {
		t.Fatalf("a new CA has %d authorities, want 3: %+v", len(st), st)
	}
	wantRotates := t0.Add(testCATTL - testCATTL/activateDivisor)
	for _, a := range st {
		if a.Slot != SlotCurrent || !a.IssuedAt.Equal(t0) || !a.NotAfter.Equal(t0.Add(testCATTL)) || !a.Rotates.Equal(wantRotates) {
			t.Errorf("%+v: want current, %v to %v, rotating at %v", a, t0, t0.Add(testCATTL), wantRotates)
		}
		switch a.Kind {
		case "x509":
			if a.Certificate == nil || a.KeyID != "" || !a.Certificate.IsCA {
				t.Errorf("x509 authority %+v", a)
			}
		case "jwt", "wit":
			if a.Certificate != nil || a.KeyID == "" {
				t.Errorf("%s authority %+v", a.Kind, a)
			}
		default:
			t.Errorf("unknown kind %q", a.Kind)
		}
	}

	clock.Set(t0.Add(testCATTL/2 + time.Minute))
	if err := c.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := byKindSlot()
	for _, k := range []string{"x509", "jwt", "wit"} {
		cur, next := m[k+"/"+SlotCurrent], m[k+"/"+SlotNext]
		if next.NotAfter.IsZero() || !next.Rotates.Equal(cur.Rotates) || !cur.Rotates.Equal(wantRotates) {
			t.Errorf("%s after half its lifetime: current %+v, next %+v", k, cur, next)
		}
	}
	old := m["jwt/"+SlotCurrent].KeyID
	clock.Set(wantRotates.Add(time.Minute))
	if err := c.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = byKindSlot()
	if r := m["jwt/"+SlotRetired]; r.KeyID != old || !r.Rotates.IsZero() {
		t.Errorf("the replaced jwt authority: %+v, want %s retired", r, old)
	}
	if cur := m["jwt/"+SlotCurrent]; cur.KeyID == old || cur.KeyID == "" {
		t.Errorf("the current jwt authority after the hand-over: %+v", cur)
	}
}
