package clientidtest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/clientid"
)

func isNotFound(err error) bool {
	return errors.Is(err, clientid.ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

func isExists(err error) bool {
	return errors.Is(err, clientid.ErrExists) || errors.Is(err, fs.ErrExist)
}

// KeyStore checks the contract of [clientid.KeyStore] on stores made by
// newStore, each empty.
func KeyStore(t *testing.T, newStore func(t *testing.T) clientid.KeyStore) {
	ctx := context.Background()
	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Load(ctx, "research"); !isNotFound(err) {
			t.Fatalf("Load of a missing key: %v, want ErrNotFound", err)
		}
	})
	t.Run("SaveLoad", func(t *testing.T) {
		s := newStore(t)
		der := []byte("pkcs8 bytes")
		if err := s.Save(ctx, "research", der); err != nil {
			t.Fatal(err)
		}
		der[0] = 'X' // the store keeps its own copy
		got, err := s.Load(ctx, "research")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte("pkcs8 bytes")) {
			t.Fatalf("Load = %q", got)
		}
		if _, err := s.Load(ctx, "other"); !isNotFound(err) {
			t.Fatalf("Load of another workload: %v, want ErrNotFound", err)
		}
	})
	t.Run("SaveNeverReplaces", func(t *testing.T) {
		s := newStore(t)
		if err := s.Save(ctx, "research", []byte("first")); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, "research", []byte("second")); !isExists(err) {
			t.Fatalf("second Save: %v, want ErrExists", err)
		}
		got, err := s.Load(ctx, "research")
		if err != nil || string(got) != "first" {
			t.Fatalf("Load = %q, %v; want the first key", got, err)
		}
	})
	t.Run("ConcurrentSave", func(t *testing.T) {
		s := newStore(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = s.Save(ctx, "research", []byte{byte(i)}) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !isExists(err):
				t.Errorf("Save: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent Saves succeeded, want exactly 1", won)
		}
	})
}

// RegistrationStore checks the contract of [clientid.RegistrationStore]
// on stores made by newStore, each empty.
func RegistrationStore(t *testing.T, newStore func(t *testing.T) clientid.RegistrationStore) {
	ctx := context.Background()
	reg := clientid.Registration{
		Issuer: "https://as.example", Workload: "research", ClientID: "c-1", ClientIDIssuedAt: 1700000000,
		RegistrationAccessToken: "rat", RegistrationClientURI: "https://as.example/register/c-1",
		JWKSURI: "https://host.example/clients/research/jwks.json", KeyID: "kid-1",
		RegisteredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Renewed: true,
	}
	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Load(ctx, reg.Issuer, reg.Workload); !isNotFound(err) {
			t.Fatalf("Load of a missing registration: %v, want ErrNotFound", err)
		}
	})
	t.Run("SaveLoadDelete", func(t *testing.T) {
		s := newStore(t)
		in := reg
		if err := s.Save(ctx, &in); err != nil {
			t.Fatal(err)
		}
		in.ClientID = "changed after Save"
		got, err := s.Load(ctx, reg.Issuer, reg.Workload)
		if err != nil {
			t.Fatal(err)
		}
		if !got.RegisteredAt.Equal(reg.RegisteredAt) {
			t.Fatalf("RegisteredAt = %v, want %v", got.RegisteredAt, reg.RegisteredAt)
		}
		g := *got
		g.RegisteredAt = reg.RegisteredAt
		if g != reg {
			t.Fatalf("Load = %+v, want %+v", g, reg)
		}
		for _, k := range [][2]string{{reg.Issuer, "other"}, {"https://other.example", reg.Workload}} {
			if _, err := s.Load(ctx, k[0], k[1]); !isNotFound(err) {
				t.Fatalf("Load(%q, %q): %v, want ErrNotFound", k[0], k[1], err)
			}
		}
		if err := s.Delete(ctx, reg.Issuer, reg.Workload); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(ctx, reg.Issuer, reg.Workload); !isNotFound(err) {
			t.Fatalf("Load after Delete: %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, reg.Issuer, reg.Workload); err != nil {
			t.Fatalf("Delete of a missing registration: %v", err)
		}
	})
	t.Run("SaveReplaces", func(t *testing.T) {
		s := newStore(t)
		first, second := reg, reg
		second.ClientID = "c-2"
		if err := s.Save(ctx, &first); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, &second); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, reg.Issuer, reg.Workload)
		if err != nil || got.ClientID != "c-2" {
			t.Fatalf("Load = %+v, %v; want client c-2", got, err)
		}
	})
}
