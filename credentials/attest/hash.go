package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// chunkSize is how much of a file is read between two context checks.
const chunkSize = 256 << 10

// HashFile returns the lowercase hexadecimal SHA-256 of the file at path,
// such as a plugin binary before it is launched, for comparison with
// [Evidence.SHA256] later. A symbolic link is followed. The file is read in
// chunks, never held in memory whole, and ctx is checked between chunks.
//
// A file that is not regular is refused with [ErrNotRegular] (it is opened
// without blocking, so a named pipe cannot stall the call), and a file whose
// size or modification time changes while it is read fails with
// [ErrModified].
func HashFile(ctx context.Context, path string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("attest: hash %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return "", fmt.Errorf("attest: hash: %w", err)
	}
	defer f.Close()
	sum, _, err := hashFile(ctx, f, path)
	if err != nil {
		return "", err
	}
	return sum, nil
}

// hashFile hashes the open file f, named name in errors. It refuses a file
// that is not regular and one whose size or modification time differ after
// reading, and returns the digest with the file's information from before
// the read.
func hashFile(ctx context.Context, f *os.File, name string) (string, fs.FileInfo, error) {
	before, err := f.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("attest: hash: %w", err)
	}
	if !before.Mode().IsRegular() {
		return "", nil, fmt.Errorf("%w: %s is %s", ErrNotRegular, name, describeMode(before.Mode()))
	}
	h := sha256.New()
	buf := make([]byte, chunkSize)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", nil, fmt.Errorf("attest: hash %s: %w", name, err)
		}
		m, err := f.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("attest: hash: %w", err)
		}
	}
	after, err := f.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("attest: hash: %w", err)
	}
	if after.Size() != before.Size() || n != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return "", nil, fmt.Errorf("%w: %s: size %d and mtime %s before, size %d and mtime %s after, %d bytes read",
			ErrModified, name, before.Size(), before.ModTime().UTC().Format(timeFormat),
			after.Size(), after.ModTime().UTC().Format(timeFormat), n)
	}
	return hex.EncodeToString(h.Sum(nil)), before, nil
}

// timeFormat is how times appear in error messages.
const timeFormat = "2006-01-02T15:04:05.999999999Z07:00"

// describeMode names the type of a file that is not regular.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "not a regular file (mode " + m.String() + ")"
	}
}
