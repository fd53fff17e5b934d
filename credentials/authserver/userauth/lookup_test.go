package userauth

import "testing"

func TestLookupEmail(t *testing.T) {
	d, err := NewDirectory([]User{
		{Name: "alice", Email: "Alice@Example.org", PasswordHash: dummyHash},
		{Name: "bob", Email: "shared@example.org", PasswordHash: dummyHash},
		{Name: "carol", Email: "shared@example.org", PasswordHash: dummyHash},
		{Name: "dave", PasswordHash: dummyHash},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, email, want string
	}{
		{"exact", "Alice@Example.org", "alice"},
		{"case folded", "alice@example.ORG", "alice"},
		{"shared address names nobody", "shared@example.org", ""},
		{"unknown", "eve@example.org", ""},
		{"empty matches no user without email", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok := d.LookupEmail(tt.email)
			if ok != (tt.want != "") || u.Name != tt.want {
				t.Fatalf("LookupEmail(%q) = %q, %v; want %q", tt.email, u.Name, ok, tt.want)
			}
		})
	}
	var nilDir *Directory
	if _, ok := nilDir.LookupEmail("alice@example.org"); ok {
		t.Fatal("nil directory found a user")
	}
}
