package clientid

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"sync"

	"github.com/agenthost/agenthost/credentials/jose"
)

// signingKey is a private key with its kid (the RFC 7638 thumbprint of
// its public key) and JWS algorithm.
type signingKey struct {
	signer crypto.Signer
	kid    string
	alg    jose.Alg
}

func newSigningKey(signer crypto.Signer) (*signingKey, error) {
	alg, err := jose.AlgorithmForKey(signer.Public())
	if err != nil {
		return nil, err
	}
	kid, err := jose.Thumbprint(signer.Public())
	if err != nil {
		return nil, err
	}
	return &signingKey{signer: signer, kid: kid, alg: alg}, nil
}

// keySet is the JWK Set document (RFC 7517 §5) of k's public key.
func (k *signingKey) keySet() ([]byte, error) {
	return jose.MarshalKeySet([]jose.SetKey{{KID: k.kid, Key: k.signer.Public(), Alg: string(k.alg), Use: "sig"}})
}

// key returns workload's private_key_jwt key: from memory, else from the
// KeyStore, else a new ES256 (P-256) key saved there first. A concurrent
// creator's saved key wins over one made here.
func (m *Manager) key(ctx context.Context, workload string) (*signingKey, error) {
	m.mu.RLock()
	k := m.keys[workload]
	m.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	unlock, err := m.locks.lock(ctx, "key\x00"+workload)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m.mu.RLock()
	k = m.keys[workload]
	m.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	k, err = m.loadKey(ctx, workload)
	if notFound(err) {
		k, err = m.createKey(ctx, workload)
	}
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.keys[workload] = k
	m.mu.Unlock()
	return k, nil
}

func (m *Manager) loadKey(ctx context.Context, workload string) (*signingKey, error) {
	der, err := m.keyStore.Load(ctx, workload)
	if err != nil {
		if notFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("clientid: key of workload %q: load: %w", workload, err)
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("clientid: key of workload %q: the saved key is not PKCS #8: %w", workload, err)
	}
	signer, ok := raw.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("clientid: key of workload %q: a saved %T cannot sign", workload, raw)
	}
	k, err := newSigningKey(signer)
	if err != nil {
		return nil, fmt.Errorf("clientid: key of workload %q: %w", workload, err)
	}
	return k, nil
}

func (m *Manager) createKey(ctx context.Context, workload string) (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("clientid: key of workload %q: generate: %w", workload, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("clientid: key of workload %q: encode: %w", workload, err)
	}
	if err := m.keyStore.Save(ctx, workload, der); err != nil {
		if exists(err) {
			// Another process saved one first: use that.
			return m.loadKey(ctx, workload)
		}
		return nil, fmt.Errorf("clientid: key of workload %q: save: %w", workload, err)
	}
	m.log.InfoContext(ctx, "clientid: workload key created", attrWorkload, workload)
	return newSigningKey(priv)
}

// locks are mutexes by name that waiting callers can give up on when
// their context ends.
type locks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (l *locks) lock(ctx context.Context, name string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]chan struct{}{}
	}
	ch, ok := l.m[name]
	if !ok {
		ch = make(chan struct{}, 1)
		l.m[name] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
