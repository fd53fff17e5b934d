//go:build unix

package attest

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A named pipe without a writer would block a plain open; HashFile must
// refuse it at once.
func TestHashFileNamedPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	_, err := HashFile(context.Background(), path)
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("HashFile = %v, want ErrNotRegular", err)
	}
	if !strings.Contains(err.Error(), "is a named pipe") {
		t.Errorf("HashFile error %q does not name the pipe", err)
	}
}
