package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/agenthost/agenthost/runtime/store"
)

// These tests need no server.

// shipped pins the SHA-256 of every shipped migration: a shipped migration
// is never edited (a database that ran it would not run it again), so a
// change here means the change belongs in a new migration instead. Add a
// line for each new migration when it ships.
var shipped = map[string]string{
	"migrations/0001_initial.sql": "e33ad1e8ed0664473d315ab6ca299753f769f47d7e471c4e314398c6ba5164a8",
}

func TestMigrationsUnchanged(t *testing.T) {
	for name, want := range shipped {
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			t.Fatalf("shipped migration %s is gone: %v", name, err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("migration %s was edited (sha256 %s, shipped as %s): never edit a shipped migration; add the next one", name, got, want)
		}
	}
	if len(migrations) != SchemaVersion {
		t.Fatalf("SchemaVersion = %d but there are %d migrations", SchemaVersion, len(migrations))
	}
	if len(shipped) != len(migrations) {
		t.Fatalf("%d migrations, %d of them pinned in shipped: pin the new one", len(migrations), len(shipped))
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []string // names, or nil with wantErr
		wantErr string
	}{
		{"two", fstest.MapFS{"migrations/0002_more.sql": file("b"), "migrations/0001_initial.sql": file("a")}, []string{"initial", "more"}, ""},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": file("a"), "migrations/0003_c.sql": file("c")}, nil, "version 3, want 2"},
		{"not from 1", fstest.MapFS{"migrations/0002_b.sql": file("b")}, nil, "version 2, want 1"},
		{"no label", fstest.MapFS{"migrations/0001.sql": file("a")}, nil, "want a name like 0001_initial.sql"},
		{"short number", fstest.MapFS{"migrations/1_a.sql": file("a")}, nil, "want a name like"},
		{"none", fstest.MapFS{}, []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for i, m := range ms {
				if m.version != i+1 {
					t.Fatalf("migration %d has version %d", i, m.version)
				}
				got = append(got, m.name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("migrations = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, want string
		ok           bool
	}{
		{"a", "b", true},
		{"b/", "b0", true},
		{"k\u00e9", "k\u00ea", true},
		{"\u00bf", "\u00c0", true},          // a byte-wise increment would give invalid UTF-8 (C2 C0)
		{"x\u007f", "x\u0080", true},        // and here 7F → 80, a lone continuation byte
		{"\ud7ff", "\ue000", true},          // surrogates skipped
		{"a\U0010ffff", "b", true},          // the last code point carries
		{"\U0010ffff\U0010ffff", "", false}, // no upper bound
	}
	for _, tt := range tests {
		got, ok := prefixEnd(tt.prefix)
		if got != tt.want || ok != tt.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tt.prefix, got, ok, tt.want, tt.ok)
		}
		if ok && !utf8.ValidString(got) {
			t.Errorf("prefixEnd(%q) = %q is not valid UTF-8", tt.prefix, got)
		}
	}
	// Property: for valid strings, HasPrefix(s, p) ⇔ p <= s < prefixEnd(p).
	runes := []rune{'a', 'b', 0x7f, 0x80, 0xbf, 0xc0, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xffff, 0x10000, utf8.MaxRune}
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(runes[rnd.IntN(len(runes))])
		}
		return b.String()
	}
	for range 20000 {
		p, s := word(1+rnd.IntN(3)), word(rnd.IntN(5))
		if rnd.IntN(2) == 0 {
			s = p + s
		}
		end, ok := prefixEnd(p)
		in := s >= p && (!ok || s < end)
		if in != strings.HasPrefix(s, p) {
			t.Fatalf("prefix %q, key %q: in range %v, HasPrefix %v (end %q)", p, s, in, strings.HasPrefix(s, p), end)
		}
	}
}

func TestClassify(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	tests := []struct {
		name               string
		err                error
		lost, retry, isErr bool
	}{
		{"eof", io.EOF, true, true, false},
		{"unexpected eof", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), true, true, false},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true, true, false},
		{"conn closed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), true, true, false},
		{"admin shutdown", pg(codeAdminShutdown), true, true, false},
		{"cannot connect now", pg(codeCannotConnectNow), true, true, false},
		{"connection exception", pg("08006"), true, true, false},
		{"too many connections", pg(codeTooManyConnections), true, true, false},
		{"serialization failure", pg(codeSerializationFailure), false, true, true},
		{"deadlock", pg(codeDeadlockDetected), false, true, true},
		{"unique violation", pg(codeUniqueViolation), false, false, true},
		{"syntax error", pg("42601"), false, false, false},
		{"not found", store.ErrNotFound, false, false, false},
	}
	s := &Store{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := connLost(tt.err); got != tt.lost {
				t.Errorf("connLost = %v, want %v", got, tt.lost)
			}
			if got := transient(tt.err); got != tt.retry {
				t.Errorf("transient = %v, want %v", got, tt.retry)
			}
			err := s.wrap(context.Background(), "op", tt.err, false)
			if got := errors.Is(err, store.ErrConflict); got != tt.isErr {
				t.Errorf("wrap = %v: ErrConflict %v, want %v", err, got, tt.isErr)
			}
			if got := errors.Is(err, ErrUnavailable); got != tt.lost {
				t.Errorf("wrap = %v: ErrUnavailable %v, want %v", err, got, tt.lost)
			}
			if !errors.Is(err, tt.err) || !strings.HasPrefix(err.Error(), "pgstore: op: ") {
				t.Errorf("wrap = %v, want the cause wrapped after the prefix", err)
			}
		})
	}
	err := s.wrap(context.Background(), "append", io.ErrUnexpectedEOF, true)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("uncertain wrap = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.wrap(ctx, "put", io.ErrUnexpectedEOF, true)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("canceled uncertain wrap = %v", err)
	}
}
