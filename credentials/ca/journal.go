package ca

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Journal persists the CA state: every authority's key, certificate and
// validity, and the bundle sequence number, as one versioned JSON document.
type Journal interface {
	// Load returns the last saved document, or an error wrapping
	// ErrNotFound when nothing was saved yet.
	Load(ctx context.Context) ([]byte, error)
	// Save replaces the document atomically: after an error the previous
	// document is still there, whole.
	Save(ctx context.Context, data []byte) error
}

// maxJournalSize caps the journal document a FileJournal reads.
const maxJournalSize = 4 << 20

// FileJournal is a [Journal] kept in one file, written with mode 0600
// through a temporary file, fsync and rename. It refuses a file or a parent
// directory that the group or others can access, and a path that is a
// symbolic link or not a regular file.
type FileJournal struct {
	path string
	mu   sync.Mutex
}

// NewFileJournal returns a FileJournal at path. The parent directory must
// exist and be private to its owner (mode 0700 or stricter); the file
// itself need not exist yet.
func NewFileJournal(path string) (*FileJournal, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: empty journal path", ErrInvalidArgument)
	}
	j := &FileJournal{path: filepath.Clean(path)}
	if err := j.checkPermissions(); err != nil {
		return nil, err
	}
	return j, nil
}

// Path returns the journal file path.
func (j *FileJournal) Path() string { return j.path }

func (j *FileJournal) checkPermissions() error {
	dir := filepath.Dir(j.path)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("ca: journal directory: %w", err)
	}
	if !di.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrInsecurePermissions, dir)
	}
	if di.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: directory %s has mode %04o, want 0700 or stricter", ErrInsecurePermissions, dir, di.Mode().Perm())
	}
	fi, err := os.Lstat(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ca: journal: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file (%s)", ErrInsecurePermissions, j.path, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: file %s has mode %04o, want 0600 or stricter", ErrInsecurePermissions, j.path, fi.Mode().Perm())
	}
	return nil
}

// Load implements [Journal].
func (j *FileJournal) Load(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ca: journal load: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.checkPermissions(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(j.path, os.O_RDONLY|noFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNotFound, j.path)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: journal load: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJournalSize+1))
	if err != nil {
		return nil, fmt.Errorf("ca: journal load: %w", err)
	}
	if len(data) > maxJournalSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorruptJournal, j.path, maxJournalSize)
	}
	return data, nil
}

// Save implements [Journal].
func (j *FileJournal) Save(ctx context.Context, data []byte) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ca: journal save: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.checkPermissions(); err != nil {
		return err
	}
	dir := filepath.Dir(j.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(j.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("ca: journal save: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("ca: journal save: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("ca: journal save: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("ca: journal save: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("ca: journal save: %w", err)
	}
	if err := os.Rename(tmp.Name(), j.path); err != nil {
		return fmt.Errorf("ca: journal save: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename durable; a failure here leaves the new file in
		// place, so it is not reported.
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// MemoryJournal is a [Journal] held in memory, for hosts that keep no state
// across restarts and for tests.
type MemoryJournal struct {
	mu   sync.Mutex
	data []byte
}

// Load implements [Journal].
func (m *MemoryJournal) Load(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ca: journal load: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil, ErrNotFound
	}
	return append([]byte(nil), m.data...), nil
}

// Save implements [Journal].
func (m *MemoryJournal) Save(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ca: journal save: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = append([]byte(nil), data...)
	return nil
}
