package workloadapi

import (
	"errors"
	"testing"

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
