package sqlitestore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB, now func() time.Time) store.Store {
		s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "test.db"), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "log", []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode = %v, %v; want 0600", fi.Mode(), err)
	}

	s, err = Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, "ns", "k")
	if err != nil || got.Version != r.Version || string(got.Value) != "v" {
		t.Fatalf("after reopen Get = %+v, %v", got, err)
	}
	if n, err := s.Len(ctx, "log"); err != nil || n != 2 {
		t.Fatalf("after reopen Len = %d, %v", n, err)
	}
	// Versions keep growing after a reopen.
	r2, err := s.Put(ctx, "ns", "k2", nil, store.PutOptions{})
	if err != nil || r2.Version <= r.Version {
		t.Fatalf("version after reopen = %d, want > %d (%v)", r2.Version, r.Version, err)
	}
}

func TestRefusesNonDatabaseFile(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
	}{
		{"text", []byte("this is not a database\n")},
		{"truncated header", []byte("SQLite form")},
		{"json", []byte(`{"keys":[]}`)},
		{"garbage after a valid-looking start", append([]byte("SQLite format 2\x00"), make([]byte, 4096)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(context.Background(), Config{Path: path})
			if !errors.Is(err, ErrNotDatabase) {
				t.Fatalf("Open error = %v, want ErrNotDatabase", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, tt.content) {
				t.Fatal("Open changed a file that is not a database")
			}
			if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("Open left a WAL file beside a non-database: %v", err)
			}
		})
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, Config{Path: path})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open error = %v, want ErrNewerSchema", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(context.Background(), Config{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("empty path: %v", err)
	}
	if _, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "missing", "x.db")}); err == nil {
		t.Fatal("missing directory: no error")
	}
	if _, err := Open(context.Background(), Config{Path: t.TempDir()}); err == nil {
		t.Fatal("a directory as the path: no error")
	}
}

func benchStore(b *testing.B) *Store {
	s, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkPut(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	v := bytes.Repeat([]byte("x"), 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Put(ctx, "bench", string(rune('a'+i%26))+time.Duration(i).String(), v, store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if _, err := s.Put(ctx, "bench", "k", bytes.Repeat([]byte("x"), 256), store.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "bench", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	e := bytes.Repeat([]byte("x"), 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(ctx, "bench", e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBatch64(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = bytes.Repeat([]byte("x"), 256)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(ctx, "bench", batch...); err != nil {
			b.Fatal(err)
		}
	}
}
