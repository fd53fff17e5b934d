package userauth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

var aliceHash = sync.OnceValues(func() (string, error) { return HashPassword("alice-password") })

func TestNewDirectory(t *testing.T) {
	good := cheapArgon(t, "pw")
	tests := []struct {
		name    string
		users   []User
		wantErr string
	}{
		{name: "none", users: nil},
		{name: "two", users: []User{{Name: "alice", PasswordHash: good}, {Name: "bob", PasswordHash: good}}},
		{name: "max name", users: []User{{Name: strings.Repeat("n", maxNameLen), PasswordHash: good}}},
		{name: "unicode name", users: []User{{Name: "zoë", PasswordHash: good}}},
		{name: "empty name", users: []User{{Name: "", PasswordHash: good}}, wantErr: "empty"},
		{name: "long name", users: []User{{Name: strings.Repeat("n", maxNameLen+1), PasswordHash: good}}, wantErr: "limit"},
		{name: "space in name", users: []User{{Name: "al ice", PasswordHash: good}}, wantErr: "space"},
		{name: "control in name", users: []User{{Name: "al\nice", PasswordHash: good}}, wantErr: "control"},
		{name: "format char in name", users: []User{{Name: "al\u200dice", PasswordHash: good}}, wantErr: "control"},
		{name: "invalid UTF-8", users: []User{{Name: "al\xffice", PasswordHash: good}}, wantErr: "UTF-8"},
		{name: "duplicate", users: []User{{Name: "alice", PasswordHash: good}, {Name: "alice", PasswordHash: good}}, wantErr: "twice"},
		{name: "empty hash", users: []User{{Name: "alice"}}, wantErr: "malformed"},
		{name: "bad hash", users: []User{{Name: "alice", PasswordHash: "$argon2id$v=19$m=4294967295,t=1,p=1$xx$yy"}}, wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDirectory(tt.users)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "userauth: ") {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range tt.users {
				if got, ok := d.Lookup(u.Name); !ok || got != u {
					t.Errorf("Lookup(%q) = %+v, %v", u.Name, got, ok)
				}
			}
			if _, ok := d.Lookup("nobody"); ok {
				t.Error("Lookup(nobody) found a user")
			}
		})
	}
}

func TestBadHashErrorWrapsSentinel(t *testing.T) {
	_, err := NewDirectory([]User{{Name: "alice", PasswordHash: "nope"}})
	if !errors.Is(err, ErrBadHash) {
		t.Errorf("err = %v, want ErrBadHash", err)
	}
}

func TestAuthenticate(t *testing.T) {
	hash, err := aliceHash()
	if err != nil {
		t.Fatal(err)
	}
	alice := User{Name: "alice", DisplayName: "Alice A.", Email: "alice@example.com", PasswordHash: hash}
	d, err := NewDirectory([]User{alice, {Name: "bob", PasswordHash: cheapArgon(t, "bob-password")}})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name, user, password string
		ctx                  context.Context
		want                 User
		wantErr              error
	}{
		{name: "right", user: "alice", password: "alice-password", want: alice},
		{name: "wrong password", user: "alice", password: "bob-password", wantErr: ErrBadCredentials},
		{name: "other user's password", user: "bob", password: "alice-password", wantErr: ErrBadCredentials},
		{name: "unknown user", user: "carol", password: "alice-password", wantErr: ErrBadCredentials},
		{name: "case differs", user: "Alice", password: "alice-password", wantErr: ErrBadCredentials},
		{name: "empty password", user: "alice", password: "", wantErr: ErrBadCredentials},
		{name: "empty name", user: "", password: "x", wantErr: ErrBadCredentials},
		{name: "overlong password", user: "alice", password: strings.Repeat("p", 5000), wantErr: ErrBadCredentials},
		{name: "cancelled", user: "alice", password: "alice-password", ctx: cancelled, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			got, err := d.Authenticate(ctx, tt.user, tt.password)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != (User{}) {
					t.Fatalf("Authenticate = %+v, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Authenticate = %+v, %v", got, err)
			}
		})
	}
	// Unknown user and wrong password give the same error value.
	_, e1 := d.Authenticate(t.Context(), "carol", "x")
	_, e2 := d.Authenticate(t.Context(), "alice", "x")
	if e1 == nil || e2 == nil || e1.Error() != e2.Error() {
		t.Errorf("unknown user %v and wrong password %v differ", e1, e2)
	}
}

func TestNilDirectory(t *testing.T) {
	var d *Directory
	if _, ok := d.Lookup("alice"); ok {
		t.Error("nil directory found a user")
	}
	if _, err := d.Authenticate(t.Context(), "alice", "pw"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate on nil = %v", err)
	}
}
