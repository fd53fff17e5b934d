package clientid

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// MemoryKeyStore is a [KeyStore] in memory: keys last as long as the
// process. It is for tests and single-run tools.
type MemoryKeyStore struct {
	mu   sync.Mutex
	keys map[string][]byte
}

var _ KeyStore = (*MemoryKeyStore)(nil)

// NewMemoryKeyStore returns an empty store.
func NewMemoryKeyStore() *MemoryKeyStore {
	return &MemoryKeyStore{keys: map[string][]byte{}}
}

// Load implements [KeyStore].
func (s *MemoryKeyStore) Load(ctx context.Context, workload string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	der, ok := s.keys[workload]
	if !ok {
		return nil, fmt.Errorf("clientid: key of %q: %w", workload, ErrNotFound)
	}
	return bytes.Clone(der), nil
}

// Save implements [KeyStore].
func (s *MemoryKeyStore) Save(ctx context.Context, workload string, der []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[workload]; ok {
		return fmt.Errorf("clientid: key of %q: %w", workload, ErrExists)
	}
	s.keys[workload] = bytes.Clone(der)
	return nil
}

// MemoryRegistrationStore is a [RegistrationStore] in memory:
// registrations last as long as the process. It is for tests and
// single-run tools.
type MemoryRegistrationStore struct {
	mu   sync.Mutex
	regs map[[2]string]Registration
}

var _ RegistrationStore = (*MemoryRegistrationStore)(nil)

// NewMemoryRegistrationStore returns an empty store.
func NewMemoryRegistrationStore() *MemoryRegistrationStore {
	return &MemoryRegistrationStore{regs: map[[2]string]Registration{}}
}

// Load implements [RegistrationStore].
func (s *MemoryRegistrationStore) Load(ctx context.Context, issuer, workload string) (*Registration, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.regs[[2]string{issuer, workload}]
	if !ok {
		return nil, fmt.Errorf("clientid: registration of %q at %s: %w", workload, issuer, ErrNotFound)
	}
	return &r, nil
}

// Save implements [RegistrationStore].
func (s *MemoryRegistrationStore) Save(ctx context.Context, r *Registration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("clientid: save: no registration")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regs[[2]string{r.Issuer, r.Workload}] = *r
	return nil
}

// Delete implements [RegistrationStore].
func (s *MemoryRegistrationStore) Delete(ctx context.Context, issuer, workload string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.regs, [2]string{issuer, workload})
	return nil
}
