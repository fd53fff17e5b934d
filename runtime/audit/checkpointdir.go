package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// checkpointExt ends the name of every file of a [CheckpointDir].
const checkpointExt = ".checkpoint"

// CheckpointDir keeps checkpoints of the log as files in a directory
// outside the host's store, one file per checkpoint, named by its tree
// size in 20 digits ("00000000000000001234.checkpoint"), holding the
// signed note (with any witness cosignatures). A rollback or rewrite of
// the store does not reach them, so the log can be checked against them
// later ([AgainstCheckpoint], `agenthost audit verify --checkpoint DIR`).
// The directory is best on other storage than the data directory: a
// mount, a synced folder, another machine's share.
type CheckpointDir struct {
	path string
}

// NewCheckpointDir returns the checkpoint directory at path, creating it
// (mode 0700) if it does not exist.
func NewCheckpointDir(path string) (*CheckpointDir, error) {
	if path == "" {
		return nil, errors.New("audit: checkpoint directory: empty path")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("audit: checkpoint directory: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("audit: checkpoint directory %s is not a directory", path)
	}
	return &CheckpointDir{path: path}, nil
}

// Path is the directory.
func (d *CheckpointDir) Path() string { return d.path }

// Write stores checkpoint under its tree size, atomically. A file for the
// same tree size is replaced only by the same checkpoint (with more
// signatures, such as a witness's cosignature); a different tree of the
// same size is refused with an error wrapping [ErrTampered]: the log
// forked.
func (d *CheckpointDir) Write(checkpoint []byte) error {
	n, err := CheckpointSize(checkpoint)
	if err != nil {
		return err
	}
	name := filepath.Join(d.path, checkpointFileName(n))
	if old, err := os.ReadFile(name); err == nil {
		if bytes.Equal(old, checkpoint) {
			return nil
		}
		if !bytes.Equal(noteText(old), noteText(checkpoint)) {
			return fmt.Errorf("%w: %s holds another checkpoint of %d records", ErrTampered, name, n)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: checkpoint directory: %w", err)
	}
	if err := writeFileSync(name, checkpoint); err != nil {
		return fmt.Errorf("audit: checkpoint directory: %w", err)
	}
	return nil
}

// Latest returns the checkpoint of the largest tree the directory holds,
// or an error wrapping [ErrNotFound] if it holds none. Its signature is
// not checked here.
func (d *CheckpointDir) Latest() ([]byte, error) {
	names, err := checkpointFiles(d.path)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("audit: checkpoint directory %s: %w: no checkpoint", d.path, ErrNotFound)
	}
	return readCheckpointFile(filepath.Join(d.path, names[len(names)-1]))
}

// LoadCheckpoint reads a checkpoint kept outside the store: a file holding
// the signed note (as `agenthost audit checkpoint` prints it), or a
// [CheckpointDir], of which it takes the checkpoint of the largest tree.
// Its signature is not checked here.
func LoadCheckpoint(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit: load checkpoint: %w", err)
	}
	if fi.IsDir() {
		return (&CheckpointDir{path: path}).Latest()
	}
	return readCheckpointFile(path)
}

func readCheckpointFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("audit: load checkpoint: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCheckpointSize+1))
	if err != nil {
		return nil, fmt.Errorf("audit: load checkpoint %s: %w", name, err)
	}
	if len(data) > maxCheckpointSize {
		return nil, fmt.Errorf("audit: load checkpoint %s: larger than %d bytes", name, maxCheckpointSize)
	}
	return trimKeyLine(data), nil
}

// checkpointFileName is the file name of the checkpoint of n records.
func checkpointFileName(n int64) string {
	return fmt.Sprintf("%020d%s", n, checkpointExt)
}

// checkpointFiles returns the names of the checkpoint files in dir,
// smallest tree first.
func checkpointFiles(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint directory: %w", err)
	}
	var names []string
	for _, e := range es {
		base, ok := strings.CutSuffix(e.Name(), checkpointExt)
		if !ok || len(base) != 20 || !e.Type().IsRegular() {
			continue
		}
		if _, err := strconv.ParseUint(base, 10, 63); err != nil {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// writeFileSync writes data to name atomically (a temporary file renamed
// over it) and durably, readable by all: a checkpoint is public.
func writeFileSync(name string, data []byte) error {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
