package credentials

import (
	"errors"
	"strings"
	"testing"
)

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "agent", in: "spiffe://agenthost.local/agent/research", want: "spiffe://agenthost.local/agent/research"},
		{name: "trust domain only", in: "spiffe://example.org", want: "spiffe://example.org"},
		{name: "wimse scheme", in: "wimse://example.org/svc/a", want: "wimse://example.org/svc/a"},
		{name: "uppercase scheme and domain are lowercased", in: "SPIFFE://Example.ORG/A", want: "spiffe://example.org/A"},
		{name: "path keeps case", in: "spiffe://ex.org/Agent/X_1.b-c", want: "spiffe://ex.org/Agent/X_1.b-c"},
		{name: "empty", in: "", wantErr: true},
		{name: "no scheme", in: "example.org/a", wantErr: true},
		{name: "https scheme", in: "https://example.org/a", wantErr: true},
		{name: "trailing slash", in: "spiffe://ex.org/a/", wantErr: true},
		{name: "root slash", in: "spiffe://ex.org/", wantErr: true},
		{name: "percent encoding", in: "spiffe://ex.org/a%20b", wantErr: true},
		{name: "port", in: "spiffe://ex.org:443/a", wantErr: true},
		{name: "userinfo", in: "spiffe://u@ex.org/a", wantErr: true},
		{name: "empty segment", in: "spiffe://ex.org/a//b", wantErr: true},
		{name: "dot segment", in: "spiffe://ex.org/a/./b", wantErr: true},
		{name: "dotdot segment", in: "spiffe://ex.org/a/../b", wantErr: true},
		{name: "query", in: "spiffe://ex.org/a?x=1", wantErr: true},
		{name: "fragment", in: "spiffe://ex.org/a#f", wantErr: true},
		{name: "empty trust domain", in: "spiffe:///a", wantErr: true},
		{name: "too long", in: "spiffe://ex.org/" + strings.Repeat("a", 2048), wantErr: true},
		{name: "trust domain too long", in: "spiffe://" + strings.Repeat("a", 256), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIdentity(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidIdentity) {
					t.Fatalf("ParseIdentity(%q) error = %v, want ErrInvalidIdentity", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIdentity(%q): %v", tt.in, err)
			}
			if got.String() != tt.want {
				t.Fatalf("ParseIdentity(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAgentAndHostIdentity(t *testing.T) {
	a, err := AgentIdentity("agenthost.local", "research")
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != "spiffe://agenthost.local/agent/research" || a.TrustDomain() != "agenthost.local" || a.Path() != "/agent/research" {
		t.Fatalf("AgentIdentity = %q (%q, %q)", a, a.TrustDomain(), a.Path())
	}
	if !a.MemberOf("agenthost.local") || a.MemberOf("other.local") {
		t.Fatal("MemberOf mismatch")
	}
	h, err := HostIdentity("agenthost.local")
	if err != nil || h.String() != "spiffe://agenthost.local/host" {
		t.Fatalf("HostIdentity = %q, %v", h, err)
	}
	for _, bad := range []string{"", "a/b", "a b", ".."} {
		if _, err := AgentIdentity("agenthost.local", bad); !errors.Is(err, ErrInvalidIdentity) {
			t.Errorf("AgentIdentity(%q) error = %v, want ErrInvalidIdentity", bad, err)
		}
	}
	if _, err := AgentIdentity("Bad Domain", "x"); !errors.Is(err, ErrInvalidIdentity) {
		t.Errorf("AgentIdentity with bad trust domain: %v", err)
	}
}

func TestIdentityText(t *testing.T) {
	var id Identity
	if err := id.UnmarshalText([]byte("spiffe://ex.org/a")); err != nil {
		t.Fatal(err)
	}
	b, _ := id.MarshalText()
	if string(b) != "spiffe://ex.org/a" {
		t.Fatalf("MarshalText = %q", b)
	}
	if err := id.UnmarshalText([]byte("spiffe://ex.org/a/")); err == nil {
		t.Fatal("UnmarshalText accepted a trailing slash")
	}
	if (Identity{}).String() != "" || !(Identity{}).IsZero() {
		t.Fatal("zero identity")
	}
}

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{"spiffe://ex.org/a", "wimse://x/y/z", "spiffe://", "://", "spiffe://a:1/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			return
		}
		again, err := ParseIdentity(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
	})
}
