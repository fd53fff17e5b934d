package login

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxSessionFile caps what Load reads.
const maxSessionFile = 64 << 10

// Store keeps one [Session] per issuer in a directory that only its owner
// may use: the directory is 0700 and each file 0600, named
// signin-<hex SHA-256 of the issuer>.json. Files are replaced atomically.
type Store struct {
	dir string
}

// NewStore returns a store in dir (created when a session is saved).
func NewStore(dir string) *Store { return &Store{dir: dir} }

// DefaultStore is the store in [os.UserConfigDir]/agenthost
// ($XDG_CONFIG_HOME/agenthost or ~/.config/agenthost on Linux,
// ~/Library/Application Support/agenthost on macOS).
func DefaultStore() (*Store, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("login: no configuration directory for the sign-in: %w", err)
	}
	return NewStore(filepath.Join(d, "agenthost")), nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path is the file that holds the session of issuer.
func (s *Store) Path(issuer string) string {
	sum := sha256.Sum256([]byte(issuer))
	return filepath.Join(s.dir, "signin-"+hex.EncodeToString(sum[:])+".json")
}

// Load returns the session of issuer. It returns an error wrapping
// [ErrNotSignedIn] when there is none, and refuses a file that is not a
// regular file, that others may read or write, or that holds another
// issuer's session.
func (s *Store) Load(issuer string) (*Session, error) {
	path := s.Path(issuer)
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w to %s", ErrNotSignedIn, issuer)
	}
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("login: %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("login: %s holds credentials but other users may access it (mode %04o): delete it and sign in again", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSessionFile+1))
	if err != nil {
		return nil, fmt.Errorf("login: read %s: %w", path, err)
	}
	if len(b) > maxSessionFile {
		return nil, fmt.Errorf("login: %s is larger than %d bytes", path, maxSessionFile)
	}
	var sess Session
	if err := json.Unmarshal(b, &sess); err != nil {
		return nil, fmt.Errorf("login: %s is corrupt: %w", path, err)
	}
	if sess.Issuer != issuer {
		return nil, fmt.Errorf("login: %s holds a sign-in to %q, not %q", path, sess.Issuer, issuer)
	}
	return &sess, nil
}

// Save writes sess as its issuer's session, replacing the one there. The
// directory is created 0700 (an existing one is made 0700) and the file
// 0600.
func (s *Store) Save(sess *Session) error {
	if sess == nil || sess.Issuer == "" {
		return errors.New("login: a session without an issuer cannot be saved")
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	// MkdirAll is subject to the umask and leaves an existing directory
	// as it was: make the mode exact.
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	data, err := json.MarshalIndent(sess, "", "  ")
	if err != nil {
		return fmt.Errorf("login: encode the session: %w", err)
	}
	path := s.Path(sess.Issuer)
	tmp, err := os.CreateTemp(s.dir, ".signin-*.tmp")
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("login: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("login: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("login: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("login: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	return nil
}

// Delete removes the session of issuer and reports whether there was one.
func (s *Store) Delete(issuer string) (bool, error) {
	err := os.Remove(s.Path(issuer))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("login: %w", err)
}
