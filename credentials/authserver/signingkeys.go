package authserver

import "time"

// States of a signing key ([SigningKey.State]).
const (
	// KeyCurrent: the key signs what the server issues.
	KeyCurrent = "current"
	// KeyNext: published ahead of Activates, when it starts signing.
	KeyNext = "next"
	// KeyRetired: replaced, it signs nothing and stays published until
	// Retires, so that what it signed keeps verifying.
	KeyRetired = "retired"
)

// SigningKey describes one ES256 key of the server's signing key ring (the
// keys published at PathJWKS), without the key.
type SigningKey struct {
	// KID is the key's kid (its RFC 7638 thumbprint).
	KID string
	// State is KeyCurrent, KeyNext or KeyRetired.
	State string
	// Activates is when the key starts signing: for the next key, when
	// the current one is replaced.
	Activates time.Time
	// Retires is when a retired key leaves the published set; zero for
	// the current and the next key.
	Retires time.Time
}

// SigningKeys returns the server's signing keys as they stand, oldest
// activation first. Keys rotate every Config.KeyPeriod; the ring is
// re-read from the store every 30 s ([Server.Run]).
func (s *Server) SigningKeys() []SigningKey {
	r := s.keys.ring.Load()
	out := make([]SigningKey, 0, len(r.keys))
	for _, sk := range r.keys {
		k := SigningKey{KID: sk.KID, Activates: sk.Activates, Retires: sk.Retires}
		switch {
		case sk == r.current:
			k.State = KeyCurrent
		case sk.Activates.After(r.current.Activates):
			k.State = KeyNext
		default:
			k.State = KeyRetired
		}
		out = append(out, k)
	}
	return out
}
