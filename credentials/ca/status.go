package ca

import (
	"crypto/x509"
	"time"
)

// Slots an authority can hold ([AuthorityStatus.Slot]).
const (
	// SlotCurrent: the authority signs.
	SlotCurrent = "current"
	// SlotNext: prepared and published, it signs once the current one
	// has a sixth of its lifetime left.
	SlotNext = "next"
	// SlotRetired: replaced, it signs nothing and stays published until
	// it expires, so that what it signed keeps validating.
	SlotRetired = "retired"
)

// AuthorityStatus describes one authority of the trust domain, as an
// operator reads it: its kind, its slot and its validity.
type AuthorityStatus struct {
	// Kind is "x509" (signs X509-SVIDs), "jwt" (JWT-SVIDs) or "wit"
	// (WIT-SVIDs).
	Kind string
	// Slot is SlotCurrent, SlotNext or SlotRetired.
	Slot string
	// KeyID is a JWT or WIT authority's kid; empty for X.509.
	KeyID string
	// Certificate is an X.509 authority's CA certificate.
	Certificate *x509.Certificate
	// IssuedAt and NotAfter bound the authority's validity.
	IssuedAt time.Time
	NotAfter time.Time
	// Rotates is when the current authority hands over to the next one
	// and when the next one starts signing: the point where the current
	// one has a sixth of its lifetime left. Zero for a retired authority.
	Rotates time.Time
}

// Status returns the authorities of the trust domain's bundle, by kind
// (x509, jwt, wit), each kind's current authority first, then the next
// one, then the retired ones.
func (c *CA) Status() []AuthorityStatus {
	s := c.current().state
	var out []AuthorityStatus
	for k := range s.kinds {
		sl := &s.kinds[k]
		var rotates time.Time
		if sl.current != nil {
			rotates = sl.current.notAfter.Add(-sl.current.lifetime() / activateDivisor)
		}
		add := func(a *authority, slot string, at time.Time) {
			if a == nil {
				return
			}
			out = append(out, AuthorityStatus{Kind: kind(k).String(), Slot: slot, KeyID: a.kid, Certificate: a.cert,
				IssuedAt: a.issuedAt, NotAfter: a.notAfter, Rotates: at})
		}
		add(sl.current, SlotCurrent, rotates)
		add(sl.next, SlotNext, rotates)
		for _, a := range sl.retired {
			add(a, SlotRetired, time.Time{})
		}
	}
	return out
}
