package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Files and folders inside the data directory.
const (
	lockFileName    = "agenthost.lock"
	runFileName     = "host.json"
	dbFileName      = "agenthost.db"
	caDirName       = "ca"
	caJournalName   = "journal.json"
	workloadDirName = "workload"
)

// ErrHostRunning reports that another host already holds the data directory.
var ErrHostRunning = errors.New("host: another agenthost is running on this data directory")

// ErrNotRunning reports that no host is running on the data directory.
var ErrNotRunning = errors.New("host: no agenthost is running on this data directory")

// EnsurePrivateDir creates dir (and parents) with mode 0700 if it does not
// exist, and refuses an existing path that is not a directory or that group
// or others can access: it holds key material.
func EnsurePrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("host: create data directory: %w", err)
		}
		// MkdirAll is subject to the umask; make the mode exact.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("host: create data directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("host: data directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("host: data directory %s exists and is not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("host: data directory %s has mode %04o; it holds keys and must be accessible by its owner only (chmod 700 %s)",
			dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// dirLock is an exclusive advisory lock on the data directory, held for the
// life of the host so that two hosts never share one state.
type dirLock struct{ f *os.File }

func lockDataDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("host: lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", ErrHostRunning, dir)
		}
		return nil, fmt.Errorf("host: lock data directory: %w", err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}

// RunInfo is what a running host publishes in its data directory so that CLI
// commands given the same --data-dir can find it.
type RunInfo struct {
	PID         int       `json:"pid"`
	Address     string    `json:"address"`
	Issuer      string    `json:"issuer"`
	TrustDomain string    `json:"trust_domain"`
	Started     time.Time `json:"started"`
	Version     string    `json:"version"`
}

func writeRunInfo(dir string, info RunInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("host: encode run info: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, runFileName), append(b, '\n'), 0o600)
}

// RunInfoPath is the file of dataDir where a host that serves keeps its run
// information (ReadRunInfo reads it); there is none before it serves and
// after it stops.
func RunInfoPath(dataDir string) string { return filepath.Join(dataDir, runFileName) }

func removeRunInfo(dir string) { _ = os.Remove(filepath.Join(dir, runFileName)) }

// ReadRunInfo returns the run information of the host holding dataDir. It
// returns ErrNotRunning when no host holds the directory's lock, whatever a
// stale run file says.
func ReadRunInfo(dataDir string) (RunInfo, error) {
	if _, err := os.Stat(dataDir); err != nil {
		return RunInfo{}, fmt.Errorf("%w (%v)", ErrNotRunning, err)
	}
	if l, err := lockDataDir(dataDir); err == nil {
		l.release()
		return RunInfo{}, fmt.Errorf("%w (%s)", ErrNotRunning, dataDir)
	} else if !errors.Is(err, ErrHostRunning) {
		return RunInfo{}, err
	}
	b, err := os.ReadFile(filepath.Join(dataDir, runFileName))
	if err != nil {
		return RunInfo{}, fmt.Errorf("host: read run info: %w", err)
	}
	var info RunInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return RunInfo{}, fmt.Errorf("host: run info %s is corrupt: %w", filepath.Join(dataDir, runFileName), err)
	}
	return info, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("host: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("host: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("host: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("host: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("host: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("host: write %s: %w", path, err)
	}
	return nil
}
