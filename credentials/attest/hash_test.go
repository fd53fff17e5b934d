package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHashFile(t *testing.T) {
	large := make([]byte, 3*chunkSize+17)
	for i := range large {
		large[i] = byte(i * 7)
	}
	sumOf := func(b []byte) string {
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to hash
		ctx     func() context.Context
		want    string
		wantErr error
		wantMsg string
	}{
		{
			name:  "empty file",
			setup: writeFile(nil),
			want:  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		},
		{
			name:  "abc",
			setup: writeFile([]byte("abc")),
			want:  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		},
		{
			name:  "several chunks",
			setup: writeFile(large),
			want:  sumOf(large),
		},
		{
			name: "symbolic link is followed",
			setup: func(t *testing.T, dir string) string {
				target := writeFile([]byte("abc"))(t, dir)
				link := filepath.Join(dir, "link")
				if err := os.Symlink(target, link); err != nil {
					t.Fatal(err)
				}
				return link
			},
			want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		},
		{
			name:    "directory",
			setup:   func(t *testing.T, dir string) string { return dir },
			wantErr: ErrNotRegular,
			wantMsg: "is a directory",
		},
		{
			name:    "missing file",
			setup:   func(t *testing.T, dir string) string { return filepath.Join(dir, "missing") },
			wantErr: fs.ErrNotExist,
		},
		{
			name:  "canceled context",
			setup: writeFile(large),
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			got, err := HashFile(ctx, path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("HashFile = %q, %v; want error %v", got, err, tt.wantErr)
				}
				if got != "" {
					t.Errorf("HashFile returned digest %q with an error", got)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("HashFile error %q does not contain %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("HashFile: %v", err)
			}
			if got != tt.want {
				t.Errorf("HashFile = %s, want %s", got, tt.want)
			}
		})
	}
}

// writeFile returns a setup function that writes data to a file in dir.
func writeFile(data []byte) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

func BenchmarkHashFile(b *testing.B) {
	const size = 10 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	path := filepath.Join(b.TempDir(), "bench")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashFile(ctx, path); err != nil {
			b.Fatal(err)
		}
	}
}
