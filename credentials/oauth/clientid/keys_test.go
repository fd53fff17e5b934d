package clientid_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
	"github.com/agenthost/agenthost/credentials/oauth/clientid/clientidtest"
)

func TestMemoryStores(t *testing.T) {
	t.Run("KeyStore", func(t *testing.T) {
		clientidtest.KeyStore(t, func(*testing.T) clientid.KeyStore { return clientid.NewMemoryKeyStore() })
	})
	t.Run("RegistrationStore", func(t *testing.T) {
		clientidtest.RegistrationStore(t, func(*testing.T) clientid.RegistrationStore { return clientid.NewMemoryRegistrationStore() })
	})
}

// countingKeys counts Saves.
type countingKeys struct {
	clientid.KeyStore
	saves atomic.Int32
}

func (s *countingKeys) Save(ctx context.Context, name string, der []byte) error {
	s.saves.Add(1)
	return s.KeyStore.Save(ctx, name, der)
}

func TestKeyMadeOnceAndKept(t *testing.T) {
	store := &countingKeys{KeyStore: clientid.NewMemoryKeyStore()}
	h := newHost(t, clientid.Config{Keys: store})
	ctx := context.Background()
	var wg sync.WaitGroup
	sets := make([]string, 8)
	for i := range sets {
		wg.Go(func() {
			set, err := h.m.JWKS(ctx, "research")
			if err != nil {
				t.Error(err)
				return
			}
			sets[i] = string(set)
		})
	}
	wg.Wait()
	if store.saves.Load() != 1 {
		t.Fatalf("%d keys saved for one workload", store.saves.Load())
	}
	for _, s := range sets {
		if s != sets[0] {
			t.Fatalf("different JWK Sets: %v", sets)
		}
	}
	// The saved key is a PKCS #8 P-256 key whose thumbprint is the kid.
	der, err := store.Load(ctx, "research")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := raw.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("saved a %T", raw)
	}
	keys, err := jose.ParseKeySet([]byte(sets[0]), 0)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := jose.Thumbprint(key.Public())
	if _, ok := keys[kid]; !ok || len(keys) != 1 {
		t.Fatalf("JWK Set %s does not hold the saved key %q", sets[0], kid)
	}
	// Another Manager on the same store publishes the same key.
	m2, err := clientid.New(clientid.Config{Keys: store, Workloads: []clientid.Workload{h.workload("research")}})
	if err != nil {
		t.Fatal(err)
	}
	set2, err := m2.JWKS(ctx, "research")
	if err != nil || string(set2) != sets[0] {
		t.Fatalf("after restart: %s, %v", set2, err)
	}
	if store.saves.Load() != 1 {
		t.Fatalf("%d keys saved", store.saves.Load())
	}
}

// raceKeys is a store where another process saves its key just before
// this one: Save reports ErrExists, and Load gives the other key.
type raceKeys struct {
	clientid.KeyStore
	other []byte
}

func (s *raceKeys) Save(ctx context.Context, name string, der []byte) error {
	if err := s.KeyStore.Save(ctx, name, s.other); err != nil {
		return err
	}
	return s.KeyStore.Save(ctx, name, der)
}

func TestKeySaveRace(t *testing.T) {
	donor := newHost(t, clientid.Config{})
	if _, err := donor.m.JWKS(context.Background(), "research"); err != nil {
		t.Fatal(err)
	}
	otherDER, err := donor.keys.Load(context.Background(), "research")
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t, clientid.Config{Keys: &raceKeys{KeyStore: clientid.NewMemoryKeyStore(), other: otherDER}})
	got, err := h.m.JWKS(context.Background(), "research")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := donor.m.JWKS(context.Background(), "research")
	if string(got) != string(want) {
		t.Fatalf("JWK Set %s, want the key saved first %s", got, want)
	}
}

func TestKeyStoreBadKey(t *testing.T) {
	ctx := context.Background()
	tests := map[string]func(t *testing.T) []byte{
		"not PKCS #8": func(*testing.T) []byte { return []byte("junk") },
		"unsupported curve": func(t *testing.T) []byte {
			k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
			if err != nil {
				t.Skip("P-224 key generation:", err)
			}
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				t.Skip("P-224 PKCS #8:", err)
			}
			return der
		},
	}
	for name, saved := range tests {
		t.Run(name, func(t *testing.T) {
			store := clientid.NewMemoryKeyStore()
			der := saved(t)
			if err := store.Save(ctx, "research", der); err != nil {
				t.Fatal(err)
			}
			h := newHost(t, clientid.Config{Keys: store})
			if _, err := h.m.JWKS(ctx, "research"); err == nil {
				t.Fatal("a bad saved key was used")
			}
			// The saved key is left for the operator to look at, not
			// replaced.
			if got, _ := store.Load(ctx, "research"); string(got) != string(der) {
				t.Fatal("the saved key was replaced")
			}
		})
	}
}

// failingKeys fails every Load with a store error.
type failingKeys struct{ clientid.KeyStore }

func (failingKeys) Load(context.Context, string) ([]byte, error) {
	return nil, errors.New("disk on fire")
}

func TestKeyStoreFailure(t *testing.T) {
	store := &countingKeys{KeyStore: failingKeys{clientid.NewMemoryKeyStore()}}
	h := newHost(t, clientid.Config{Keys: store})
	if _, err := h.m.JWKS(context.Background(), "research"); err == nil {
		t.Fatal("JWKS with a failing store")
	}
	if store.saves.Load() != 0 {
		t.Fatal("a new key was made while the store could not say whether one exists")
	}
	// And the handler answers 500 without detail.
	resp, err := h.srv.Client().Get(h.jwksURL("research"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
