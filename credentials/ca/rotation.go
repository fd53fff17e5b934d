package ca

import "time"

// Rotation thresholds, as fractions of an authority's lifetime (the SPIRE
// scheme, STYLE.md rule 21): the next authority is prepared, and so
// published in the bundle, once the current one has less than half of its
// lifetime left, and it becomes current once less than a sixth is left.
const (
	prepareDivisor  = 2
	activateDivisor = 6
)

// kindPlan is what one rotation does to the authorities of one kind.
type kindPlan struct {
	// dropRetired lists the retired authorities (by index) that expired.
	dropRetired []int
	// dropNext drops a prepared authority that expired before activation.
	dropNext bool
	// activate makes the prepared authority current; the old current one is
	// retired, or dropped when it has expired.
	activate bool
	// create makes a fresh current authority because none is valid and
	// none is prepared.
	create bool
	// prepare makes a fresh next authority.
	prepare bool
}

func (p kindPlan) empty() bool {
	return len(p.dropRetired) == 0 && !p.dropNext && !p.activate && !p.create && !p.prepare
}

// rotationPlan is what one rotation does, per kind.
type rotationPlan [numKinds]kindPlan

func (p rotationPlan) empty() bool {
	for _, k := range p {
		if !k.empty() {
			return false
		}
	}
	return true
}

// plan decides the rotation of s at now. It is a pure function of its
// arguments.
func plan(s *state, now time.Time) rotationPlan {
	var p rotationPlan
	for k := range s.kinds {
		p[k] = planKind(&s.kinds[k], now)
	}
	return p
}

func planKind(sl *slots, now time.Time) kindPlan {
	var p kindPlan
	for i, r := range sl.retired {
		if r.expired(now) {
			p.dropRetired = append(p.dropRetired, i)
		}
	}
	cur, next := sl.current, sl.next
	if next != nil && next.expired(now) {
		p.dropNext = true
		next = nil
	}
	curValid := cur != nil && !cur.expired(now)
	if !curValid || cur.remaining(now) < cur.lifetime()/activateDivisor {
		switch {
		case next != nil:
			p.activate = true
			cur, next = next, nil
		case !curValid:
			// Nothing to activate: start over with a fresh authority,
			// whose remaining lifetime is whole.
			p.create = true
			return p
		}
	}
	if next == nil && cur.remaining(now) < cur.lifetime()/prepareDivisor {
		p.prepare = true
	}
	return p
}
