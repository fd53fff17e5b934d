package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// kind names one of the three authorities the CA keeps.
type kind int

const (
	kindX509 kind = iota // signs X509-SVIDs (SPECS.md §10.2)
	kindJWT              // signs JWT-SVIDs (SPECS.md §10.3)
	kindWIT              // signs WIT-SVIDs (SPECS.md §10.4)
	numKinds
)

func (k kind) String() string {
	switch k {
	case kindX509:
		return "x509"
	case kindJWT:
		return "jwt"
	case kindWIT:
		return "wit"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// authority is one signing key with its validity. It is never modified once
// built; rotation replaces authorities, it does not edit them.
type authority struct {
	kid      string            // JWT and WIT authorities only
	key      *ecdsa.PrivateKey // nil once retired
	public   *ecdsa.PublicKey
	cert     *x509.Certificate // X.509 authorities only
	issuedAt time.Time
	notAfter time.Time
}

// lifetime is the authority's whole validity period.
func (a *authority) lifetime() time.Duration { return a.notAfter.Sub(a.issuedAt) }

// remaining is the validity left at now (negative once expired).
func (a *authority) remaining(now time.Time) time.Duration { return a.notAfter.Sub(now) }

// expired reports whether the authority is no longer valid at now.
func (a *authority) expired(now time.Time) bool { return !now.Before(a.notAfter) }

// slots holds the authorities of one kind: the current one signs, the next
// one is published ahead of its activation, and retired ones stay published
// until they expire, so that credentials they signed keep validating.
type slots struct {
	current *authority
	next    *authority
	retired []*authority
}

// state is the CA state persisted in the journal.
type state struct {
	trustDomain spiffeid.TrustDomain
	sequence    uint64
	kinds       [numKinds]slots
}

// clone returns a copy of s whose slots can be changed without touching s.
// Authorities are shared: they are immutable.
func (s *state) clone() *state {
	c := *s
	for k := range c.kinds {
		c.kinds[k].retired = append([]*authority(nil), s.kinds[k].retired...)
	}
	return &c
}

// journalVersion is the version of the journal document format.
const journalVersion = 1

type journalDoc struct {
	Version     int      `json:"version"`
	TrustDomain string   `json:"trust_domain"`
	Sequence    uint64   `json:"sequence"`
	X509        slotsDoc `json:"x509"`
	JWT         slotsDoc `json:"jwt"`
	WIT         slotsDoc `json:"wit"`
}

type slotsDoc struct {
	Current *authorityDoc  `json:"current,omitempty"`
	Next    *authorityDoc  `json:"next,omitempty"`
	Retired []authorityDoc `json:"retired,omitempty"`
}

type authorityDoc struct {
	KID      string    `json:"kid,omitempty"`
	Key      []byte    `json:"key,omitempty"`    // PKCS#8 DER
	Public   []byte    `json:"public,omitempty"` // PKIX DER (JWT and WIT)
	Cert     []byte    `json:"cert,omitempty"`   // DER (X.509)
	IssuedAt time.Time `json:"issued_at"`
	NotAfter time.Time `json:"not_after"`
}

// encodeState returns the journal document for s.
func encodeState(s *state) ([]byte, error) {
	doc := journalDoc{Version: journalVersion, TrustDomain: s.trustDomain.Name(), Sequence: s.sequence}
	for k, dst := range []*slotsDoc{&doc.X509, &doc.JWT, &doc.WIT} {
		sl := s.kinds[k]
		var err error
		if dst.Current, err = encodeAuthority(kind(k), sl.current); err != nil {
			return nil, err
		}
		if dst.Next, err = encodeAuthority(kind(k), sl.next); err != nil {
			return nil, err
		}
		for _, r := range sl.retired {
			d, err := encodeAuthority(kind(k), r)
			if err != nil {
				return nil, err
			}
			dst.Retired = append(dst.Retired, *d)
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

func encodeAuthority(k kind, a *authority) (*authorityDoc, error) {
	if a == nil {
		return nil, nil
	}
	d := &authorityDoc{KID: a.kid, IssuedAt: a.issuedAt.UTC(), NotAfter: a.notAfter.UTC()}
	if a.key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(a.key)
		if err != nil {
			return nil, fmt.Errorf("ca: encode %s key: %w", k, err)
		}
		d.Key = der
	}
	if k == kindX509 {
		d.Cert = a.cert.Raw
	} else {
		der, err := x509.MarshalPKIXPublicKey(a.public)
		if err != nil {
			return nil, fmt.Errorf("ca: encode %s public key: %w", k, err)
		}
		d.Public = der
	}
	return d, nil
}

// decodeState parses and validates a journal document. Every failure wraps
// ErrCorruptJournal.
func decodeState(data []byte) (*state, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc journalDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptJournal, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the document", ErrCorruptJournal)
	}
	if doc.Version != journalVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorruptJournal, doc.Version, journalVersion)
	}
	td, err := spiffeid.TrustDomainFromString(doc.TrustDomain)
	if err != nil || td.Name() != doc.TrustDomain {
		return nil, fmt.Errorf("%w: trust domain %q is not valid", ErrCorruptJournal, doc.TrustDomain)
	}
	s := &state{trustDomain: td, sequence: doc.Sequence}
	kids := make(map[string]bool)
	for k, src := range []*slotsDoc{&doc.X509, &doc.JWT, &doc.WIT} {
		sl := &s.kinds[k]
		where := func(slot string) string { return fmt.Sprintf("%s %s", kind(k), slot) }
		if sl.current, err = decodeAuthority(td, kind(k), src.Current, true, where("current"), kids); err != nil {
			return nil, err
		}
		if sl.next, err = decodeAuthority(td, kind(k), src.Next, true, where("next"), kids); err != nil {
			return nil, err
		}
		for i := range src.Retired {
			r, err := decodeAuthority(td, kind(k), &src.Retired[i], false, where(fmt.Sprintf("retired[%d]", i)), kids)
			if err != nil {
				return nil, err
			}
			sl.retired = append(sl.retired, r)
		}
	}
	return s, nil
}

func decodeAuthority(td spiffeid.TrustDomain, k kind, d *authorityDoc, wantKey bool, where string, kids map[string]bool) (*authority, error) {
	if d == nil {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorruptJournal, where, fmt.Sprintf(format, args...))
	}
	if d.IssuedAt.IsZero() || !d.NotAfter.After(d.IssuedAt) {
		return nil, bad("validity %s .. %s is empty", d.IssuedAt, d.NotAfter)
	}
	a := &authority{kid: d.KID, issuedAt: d.IssuedAt, notAfter: d.NotAfter}
	switch {
	case wantKey && d.Key == nil:
		return nil, bad("private key missing")
	case !wantKey && d.Key != nil:
		return nil, bad("retired authority still holds its private key")
	}
	if d.Key != nil {
		raw, err := x509.ParsePKCS8PrivateKey(d.Key)
		if err != nil {
			return nil, bad("private key: %v", err)
		}
		key, ok := raw.(*ecdsa.PrivateKey)
		if !ok || key.Curve != elliptic.P256() {
			return nil, bad("private key is %T, want ECDSA P-256", raw)
		}
		a.key = key
	}
	if k == kindX509 {
		if d.KID != "" || d.Public != nil {
			return nil, bad("kid or public key set on an X.509 authority")
		}
		cert, err := x509.ParseCertificate(d.Cert)
		if err != nil {
			return nil, bad("certificate: %v", err)
		}
		if !cert.IsCA || len(cert.URIs) != 1 || cert.URIs[0].String() != td.IDString() {
			return nil, bad("certificate is not a CA certificate for %s", td.IDString())
		}
		if !cert.NotAfter.Equal(d.NotAfter) {
			return nil, bad("certificate expires %s, journal says %s", cert.NotAfter, d.NotAfter)
		}
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, bad("certificate key is %T, want ECDSA P-256", cert.PublicKey)
		}
		a.cert, a.public = cert, pub
	} else {
		if d.KID == "" {
			return nil, bad("kid missing")
		}
		if kids[d.KID] {
			return nil, bad("kid %q used twice", d.KID)
		}
		kids[d.KID] = true
		if d.Cert != nil {
			return nil, bad("certificate set on a %s authority", k)
		}
		raw, err := x509.ParsePKIXPublicKey(d.Public)
		if err != nil {
			return nil, bad("public key: %v", err)
		}
		pub, ok := raw.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, bad("public key is %T, want ECDSA P-256", raw)
		}
		a.public = pub
	}
	if a.key != nil && !a.key.PublicKey.Equal(crypto.PublicKey(a.public)) {
		return nil, bad("private key does not match the public key")
	}
	return a, nil
}
