package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s := open(t, path)
	r, err := s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "log", []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, "leader", "host-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(name), fi.Mode().Perm())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	got, err := s.Get(ctx, "ns", "k")
	if err != nil || got.Version != r.Version || string(got.Value) != "v" || !got.ExpiresAt.Equal(r.ExpiresAt) {
		t.Fatalf("after reopen Get = %+v, %v; want %+v", got, err, r)
	}
	es, err := s.Read(ctx, "log", 0, 10)
	if err != nil || len(es) != 2 || string(es[0].Data) != "a" || string(es[1].Data) != "b" {
		t.Fatalf("after reopen Read = %+v, %v", es, err)
	}
	if _, err := s.AcquireLease(ctx, "leader", "host-b", time.Hour); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("lease after reopen: %v, want ErrLeaseHeld", err)
	}
	if _, err := s.RenewLease(ctx, lease, time.Hour); err != nil {
		t.Fatalf("renew after reopen: %v", err)
	}
	// Versions and indexes carry on from where they were.
	r2, err := s.Put(ctx, "ns", "k2", nil, store.PutOptions{})
	if err != nil || r2.Version <= lease.Token {
		t.Fatalf("version after reopen = %d, want > %d (%v)", r2.Version, lease.Token, err)
	}
	if first, err := s.Append(ctx, "log", []byte("c")); err != nil || first != 2 {
		t.Fatalf("Append after reopen = %d, %v; want 2", first, err)
	}
}

func TestSchemaRecorded(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "test.db"))
	var uv, appID, rows int
	var mode string
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT user_version FROM pragma_user_version), (SELECT application_id FROM pragma_application_id),
		(SELECT count(*) FROM schema_migrations), (SELECT journal_mode FROM pragma_journal_mode)`).
		Scan(&uv, &appID, &rows, &mode)
	if err != nil {
		t.Fatal(err)
	}
	if uv != SchemaVersion || appID != applicationID || rows != SchemaVersion || mode != "wal" {
		t.Fatalf("user_version %d, application_id %#x, %d migration rows, journal %s; want %d, %#x, %d, wal",
			uv, appID, rows, mode, SchemaVersion, applicationID, SchemaVersion)
	}
	if SchemaVersion != len(migrations) {
		t.Fatalf("SchemaVersion = %d but there are %d migrations", SchemaVersion, len(migrations))
	}
}

// writeSQLite creates an SQLite database at path with the given statements,
// as another program would.
func writeSQLite(t *testing.T, path, stmts string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmts); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesOthersFiles(t *testing.T) {
	dbHeader := []byte("SQLite format 3\x00")
	tests := []struct {
		name    string
		write   func(t *testing.T, path string)
		wantErr error
	}{
		{"text", content([]byte("this is not a database\n")), ErrNotDatabase},
		{"truncated header", content([]byte("SQLite form")), ErrNotDatabase},
		{"json", content([]byte(`{"keys":[]}`)), ErrNotDatabase},
		{"other header", content(append([]byte("SQLite format 2\x00"), make([]byte, 4096)...)), ErrNotDatabase},
		{"valid header, garbage body", content(append(dbHeader, bytes.Repeat([]byte{0xa5}, 8192)...)), ErrNotDatabase},
		{"another program's database", func(t *testing.T, path string) {
			writeSQLite(t, path, `CREATE TABLE accounts (id INTEGER PRIMARY KEY); INSERT INTO accounts VALUES (1)`)
		}, ErrForeignDatabase},
		{"another application_id", func(t *testing.T, path string) {
			writeSQLite(t, path, `PRAGMA application_id = 1234; CREATE TABLE x (y)`)
		}, ErrForeignDatabase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.db")
			tt.write(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(context.Background(), Config{Path: path})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if prefix := fmt.Sprintf("sqlitestore: open %s: %v", path, tt.wantErr); !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("Open error = %q, want it to start with %q", err, prefix)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, before) {
				t.Fatal("Open changed the file")
			}
			if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("Open left a WAL file beside the refused file: %v", err)
			}
		})
	}
}

func content(b []byte) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s := open(t, path)
	if _, err := s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Config{Path: path})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open error = %v, want ErrNewerSchema", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("schema %d, this build knows up to %d", SchemaVersion+1, SchemaVersion)) {
		t.Fatalf("Open error %q does not name both versions", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, before) {
		t.Fatal("Open changed a database with a newer schema")
	}
}

func TestOpenErrors(t *testing.T) {
	loose := filepath.Join(t.TempDir(), "loose")
	if err := os.Mkdir(loose, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o777); err != nil {
		t.Fatal(err)
	}
	groupWritable := filepath.Join(t.TempDir(), "group")
	if err := os.Mkdir(groupWritable, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(groupWritable, 0o770); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	content([]byte("x"))(t, notDir)
	tests := []struct {
		name    string
		path    string
		wantErr error // nil: any error
	}{
		{"empty path", "", store.ErrInvalid},
		{"missing directory", filepath.Join(t.TempDir(), "missing", "x.db"), os.ErrNotExist},
		{"path is a directory", t.TempDir(), nil},
		{"parent is a file", filepath.Join(notDir, "x.db"), nil},
		{"world-writable directory", filepath.Join(loose, "x.db"), ErrUnsafeDir},
		{"group-writable directory", filepath.Join(groupWritable, "x.db"), ErrUnsafeDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), Config{Path: tt.path})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "sqlitestore: open") {
				t.Fatalf("Open error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(loose, "x.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created a file in a world-writable directory: %v", err)
	}
}

// TestTwoHandles opens the same file twice, as two processes would, and
// checks that writers through both still serialise.
func TestTwoHandles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	handles := []*Store{open(t, path), open(t, path)}
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := handles[i%2]
			_, err := s.Put(ctx, "replay", "jti-1", nil, store.PutOptions{Condition: store.IfAbsent, TTL: time.Hour})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("Put: %v", err)
			}
			for j := range 10 {
				if _, err := s.Append(ctx, "audit", fmt.Appendf(nil, "%d-%d", i, j)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d winners of put-if-absent across two handles, want 1", wins)
	}
	es, err := handles[1].Read(ctx, "audit", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range es {
		if e.Index != int64(i) || seen[string(e.Data)] {
			t.Fatalf("entry %d: index %d, data %q (gap or duplicate)", i, e.Index, e.Data)
		}
		seen[string(e.Data)] = true
	}
	if len(es) != n*10 {
		t.Fatalf("%d entries, want %d", len(es), n*10)
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
		if _, err := s.Put(ctx, "bench", fmt.Sprintf("key-%08d", i), v, store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutIfAbsentTTL(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Put(ctx, "jti", fmt.Sprintf("jti-%08d", i), nil, store.PutOptions{Condition: store.IfAbsent, TTL: time.Hour}); err != nil {
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

func BenchmarkGetParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if _, err := s.Put(ctx, "bench", "k", bytes.Repeat([]byte("x"), 256), store.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "bench", "k"); err != nil {
				b.Error(err)
				return
			}
		}
	})
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
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/entry")
}
