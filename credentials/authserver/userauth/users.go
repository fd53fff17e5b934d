package userauth

import (
	"context"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// maxNameLen bounds a user name in bytes.
const maxNameLen = 128

// dummyHash is an argon2id hash of a random password nobody knows, made
// with the parameters [HashPassword] uses. [Directory.Authenticate]
// verifies against it when the name is unknown, so that path costs the
// same work as a known name with a wrong password.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$9KdeM8lX7t0/1aTV5KbHKg$7dne5q4ebCxwqy8ne6wSnEFQHr3vp2s7go/puwZBYyw"

// User is a person who can sign in to the authorization server.
type User struct {
	// Name is the sign-in name and the subject of the user's tokens.
	Name string
	// DisplayName is the full name shown to clients (OpenID "name").
	DisplayName string
	// Email is the user's email address, or empty.
	Email string
	// PasswordHash is an argon2id or bcrypt hash ([CheckHash]).
	PasswordHash string
}

// Directory is the immutable set of configured users. Its methods are safe
// for concurrent use; a nil *Directory has no users.
type Directory struct {
	users   map[string]User
	limiter *Limiter
}

// DirectoryOption configures [NewDirectory].
type DirectoryOption func(*Directory)

// WithLimiter makes [Directory.Authenticate] hash passwords under l
// instead of the process's [DefaultLimiter].
func WithLimiter(l *Limiter) DirectoryOption {
	return func(d *Directory) { d.limiter = l }
}

// NewDirectory checks users and returns a Directory of them. Names must be
// unique, 1 to 128 bytes of UTF-8 without spaces or control characters,
// and every PasswordHash must pass [CheckHash].
func NewDirectory(users []User, opts ...DirectoryOption) (*Directory, error) {
	d := &Directory{users: make(map[string]User, len(users))}
	for _, o := range opts {
		o(d)
	}
	for i, u := range users {
		if err := checkName(u.Name); err != nil {
			return nil, fmt.Errorf("userauth: user %d: %w", i, err)
		}
		if _, dup := d.users[u.Name]; dup {
			return nil, fmt.Errorf("userauth: user %d: name %q is defined twice", i, u.Name)
		}
		if err := CheckHash(u.PasswordHash); err != nil {
			return nil, fmt.Errorf("userauth: user %q: password hash: %w", u.Name, err)
		}
		d.users[u.Name] = u
	}
	return d, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name is empty")
	case len(name) > maxNameLen:
		return fmt.Errorf("name is %d bytes long; the limit is %d", len(name), maxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("name %q has a space or control character", name)
		}
	}
	return nil
}

// Limiter returns the [Limiter] that [Directory.Authenticate] hashes
// passwords under.
func (d *Directory) Limiter() *Limiter {
	if d == nil || d.limiter == nil {
		return DefaultLimiter()
	}
	return d.limiter
}

// Lookup returns the user called name.
func (d *Directory) Lookup(name string) (User, bool) {
	if d == nil {
		return User{}, false
	}
	u, ok := d.users[name]
	return u, ok
}

// Authenticate returns the user called name if password is theirs. An
// unknown name and a wrong password both return [ErrBadCredentials], and
// an unknown name still costs one argon2id verification, so neither the
// answer nor its timing reveals which names exist. The verification runs
// under the directory's [Limiter]: when no slot frees in time the error
// wraps [ErrBusy] and the password was not checked. Other errors (a
// cancelled ctx, a hash VerifyPassword refuses) are returned wrapped.
func (d *Directory) Authenticate(ctx context.Context, name, password string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("userauth: authenticate: %w", err)
	}
	u, known := d.Lookup(name)
	hash := dummyHash
	if known {
		hash = u.PasswordHash
	}
	ok, err := d.Limiter().Verify(ctx, hash, password)
	if err != nil {
		return User{}, fmt.Errorf("userauth: authenticate: %w", err)
	}
	if !known || !ok {
		return User{}, ErrBadCredentials
	}
	return u, nil
}
