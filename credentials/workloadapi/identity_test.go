package workloadapi

import (
	"errors"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
)

func TestIDFromIdentity(t *testing.T) {
	id, err := credentials.AgentIdentity("example.org", "research")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := IDFromIdentity(id)
	if err != nil || sid.String() != "spiffe://example.org/agent/research" {
		t.Fatalf("IDFromIdentity = %v, %v", sid, err)
	}
	wimse := credentials.MustParseIdentity("wimse://example.org/agent/x")
	if _, err := IDFromIdentity(wimse); !errors.Is(err, credentials.ErrInvalidIdentity) {
		t.Fatalf("wimse identity: err = %v, want ErrInvalidIdentity", err)
	}
	if _, err := IDFromIdentity(credentials.Identity{}); !errors.Is(err, credentials.ErrInvalidIdentity) {
		t.Fatalf("zero identity: err = %v, want ErrInvalidIdentity", err)
	}
}

func TestX509SVIDExpiry(t *testing.T) {
	s := &Server{workloads: map[spiffeid.ID]*workload{}}
	id := spiffeid.RequireFromString("spiffe://example.org/agent/a")
	if _, ok := s.X509SVIDExpiry(id); ok {
		t.Fatal("expiry reported for an unregistered workload")
	}
	s.workloads[id] = &workload{id: id}
	if _, ok := s.X509SVIDExpiry(id); ok {
		t.Fatal("expiry reported for a workload without an SVID")
	}
}
