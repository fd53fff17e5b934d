package authserver

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// signingKey is one ES256 key of the server's key ring.
type signingKey struct {
	KID       string    `json:"kid"`
	PKCS8     string    `json:"pkcs8"`
	Activates time.Time `json:"activates"`
	// Retires is when the key leaves the published set: its successor's
	// activation plus the longest lifetime of anything it signed.
	Retires time.Time `json:"retires,omitzero"`

	signer crypto.Signer
}

type keyDoc struct {
	Keys []*signingKey `json:"keys"`
}

// keyRing is an immutable snapshot of the signing keys.
type keyRing struct {
	version int64
	keys    []*signingKey // sorted by Activates
	current *signingKey
	jwks    []byte
	// jwksText is jwks as a string, made once per ring: callers that
	// compare key sets on every call (the host's tool plugins) share it.
	jwksText string
	byKID    map[string]crypto.PublicKey
}

// keyRotation holds the ring and replaces it as keys rotate. Like the
// CA's authorities, there is always a current key and a next one that is
// published before it signs anything, so verifiers that cache the JWKS
// know it by the time it is used.
type keyRotation struct {
	store  Store
	now    func() time.Time
	period time.Duration // how long a key is current
	grace  time.Duration // how long a retired key stays published
	ring   atomic.Pointer[keyRing]
}

const keyRecord = "signing"

// load reads or creates the ring and rotates it if due.
func (k *keyRotation) refresh(ctx context.Context) error {
	for range 5 {
		data, version, err := k.store.Get(ctx, nsKeys, keyRecord)
		var doc keyDoc
		switch {
		case errors.Is(err, ErrNotFound):
			version = 0
		case err != nil:
			return fmt.Errorf("authserver: load signing keys: %w", err)
		default:
			if err := json.Unmarshal(data, &doc); err != nil {
				return fmt.Errorf("authserver: signing keys record is corrupt: %w", err)
			}
			for _, sk := range doc.Keys {
				if err := sk.decode(); err != nil {
					return err
				}
			}
		}
		changed, err := k.plan(&doc)
		if err != nil {
			return err
		}
		if changed {
			data, err := json.Marshal(&doc)
			if err != nil {
				return fmt.Errorf("authserver: encode signing keys: %w", err)
			}
			w := Write{IfAbsent: version == 0, IfVersion: version}
			nv, err := k.store.Put(ctx, nsKeys, keyRecord, data, w)
			if errors.Is(err, ErrConflict) {
				continue // another host rotated at the same time: reload
			}
			if err != nil {
				return fmt.Errorf("authserver: save signing keys: %w", err)
			}
			version = nv
		}
		if cur := k.ring.Load(); cur != nil && cur.version == version && !changed {
			return nil
		}
		ring, err := newKeyRing(version, doc.Keys, k.now())
		if err != nil {
			return err
		}
		k.ring.Store(ring)
		return nil
	}
	return fmt.Errorf("authserver: signing keys: too many concurrent rotations")
}

// plan brings doc up to date at now: drops retired keys, makes sure a key
// is current and a next key is published. It reports whether doc changed.
func (k *keyRotation) plan(doc *keyDoc) (bool, error) {
	now := k.now().UTC().Truncate(time.Second)
	changed := false
	kept := doc.Keys[:0]
	for _, sk := range doc.Keys {
		if !sk.Retires.IsZero() && !now.Before(sk.Retires) {
			changed = true
			continue
		}
		kept = append(kept, sk)
	}
	doc.Keys = kept
	sort.Slice(doc.Keys, func(i, j int) bool { return doc.Keys[i].Activates.Before(doc.Keys[j].Activates) })

	var current *signingKey
	for _, sk := range doc.Keys {
		if !sk.Activates.After(now) {
			current = sk
		}
	}
	if current == nil {
		sk, err := newSigningKey(now)
		if err != nil {
			return false, err
		}
		doc.Keys = append([]*signingKey{sk}, doc.Keys...)
		current = sk
		changed = true
	}
	// Every key activated before the current one retires after the grace.
	for _, sk := range doc.Keys {
		if sk != current && sk.Activates.Before(current.Activates) && sk.Retires.IsZero() {
			sk.Retires = current.Activates.Add(k.grace)
			changed = true
		}
	}
	hasNext := false
	for _, sk := range doc.Keys {
		if sk.Activates.After(now) {
			hasNext = true
		}
	}
	if !hasNext {
		at := current.Activates.Add(k.period)
		if !at.After(now) {
			at = now.Add(k.period)
		}
		sk, err := newSigningKey(at)
		if err != nil {
			return false, err
		}
		doc.Keys = append(doc.Keys, sk)
		changed = true
	}
	return changed, nil
}

func newSigningKey(activates time.Time) (*signingKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("authserver: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("authserver: encode signing key: %w", err)
	}
	kid, err := jose.Thumbprint(key.Public())
	if err != nil {
		return nil, fmt.Errorf("authserver: signing key id: %w", err)
	}
	return &signingKey{KID: kid, PKCS8: base64.StdEncoding.EncodeToString(der), Activates: activates.UTC(), signer: key}, nil
}

func (sk *signingKey) decode() error {
	der, err := base64.StdEncoding.DecodeString(sk.PKCS8)
	if err != nil {
		return fmt.Errorf("authserver: signing key %q is corrupt: %w", sk.KID, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return fmt.Errorf("authserver: signing key %q is corrupt: %w", sk.KID, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return fmt.Errorf("authserver: signing key %q is not a P-256 key", sk.KID)
	}
	sk.signer = ec
	return nil
}

func newKeyRing(version int64, keys []*signingKey, now time.Time) (*keyRing, error) {
	r := &keyRing{version: version, keys: keys, byKID: make(map[string]crypto.PublicKey, len(keys))}
	set := make([]jose.SetKey, 0, len(keys))
	for _, sk := range keys {
		if !sk.Activates.After(now) {
			r.current = sk
		}
		r.byKID[sk.KID] = sk.signer.Public()
		set = append(set, jose.SetKey{KID: sk.KID, Key: sk.signer.Public(), Alg: string(jose.ES256), Use: "sig"})
	}
	if r.current == nil {
		return nil, errors.New("authserver: no current signing key")
	}
	jwks, err := jose.MarshalKeySet(set)
	if err != nil {
		return nil, fmt.Errorf("authserver: jwks: %w", err)
	}
	r.jwks, r.jwksText = jwks, string(jwks)
	return r, nil
}

// sign signs claims with the current key.
func (k *keyRotation) sign(ctx context.Context, typ jose.Typ, claims any) (string, error) {
	r := k.ring.Load()
	tok, err := jose.Sign(ctx, r.current.signer, r.current.KID, typ, claims)
	if err != nil {
		return "", fmt.Errorf("authserver: sign: %w", err)
	}
	return tok, nil
}

// current returns the current signing key and its kid, for
// txntoken.Sign, which checks a Txn-Token's claims before it signs.
func (k *keyRotation) current() (crypto.Signer, string) {
	r := k.ring.Load()
	return r.current.signer, r.current.KID
}

// publicKey finds a published key by kid.
func (k *keyRotation) publicKey(_ context.Context, kid string) (crypto.PublicKey, error) {
	if pk, ok := k.ring.Load().byKID[kid]; ok {
		return pk, nil
	}
	return nil, fmt.Errorf("%w: %q", jose.ErrUnknownKey, kid)
}
