package ca

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func privateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFileJournalRestart(t *testing.T) {
	dir := privateDir(t)
	path := filepath.Join(dir, "ca.json")
	j, err := NewFileJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(t0)
	c1 := newTestCA(t, clock.Now, j)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("journal mode %04o, want 0600", perm)
	}
	leftovers, err := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if err != nil || len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// Restart with the same journal: same trust domain, same keys.
	j2, err := NewFileJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	c2 := newTestCA(t, clock.Now, j2)
	if c2.TrustDomain() != c1.TrustDomain() {
		t.Errorf("trust domain %v, want %v", c2.TrustDomain(), c1.TrustDomain())
	}
	if !c2.Bundle().Equal(c1.Bundle()) {
		t.Error("bundle changed across restart")
	}
	for k := range numKinds {
		a1, a2 := c1.current().state.kinds[k].current, c2.current().state.kinds[k].current
		if !a1.key.Equal(a2.key) || a1.kid != a2.kid || !a1.notAfter.Equal(a2.notAfter) {
			t.Errorf("%s authority changed across restart", k)
		}
	}

	// A rotation is persisted and survives a restart as well.
	clock.Set(t0.Add(testCATTL/2 + time.Second))
	if err := c2.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	c3 := newTestCA(t, clock.Now, j2)
	if !c3.Bundle().Equal(c2.Bundle()) {
		t.Error("rotated bundle not restored")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode after rewrite: %v, %v", fi.Mode(), err)
	}

	// Another trust domain against the existing journal is refused, and
	// the journal is left alone.
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), Config{TrustDomain: "other.org", Journal: j2, SVIDTTL: testSVIDTTL, CATTL: testCATTL, Now: clock.Now})
	if !errors.Is(err, ErrTrustDomainMismatch) {
		t.Fatalf("other trust domain: err = %v, want ErrTrustDomainMismatch", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Error("journal modified by a refused start")
	}
}

func TestCorruptJournal(t *testing.T) {
	valid := func(t *testing.T) map[string]any {
		j := &MemoryJournal{}
		newTestCA(t, newFakeClock(t0).Now, j)
		data, err := j.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	edit := func(f func(t *testing.T, m map[string]any)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			m := valid(t)
			f(t, m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	slot := func(m map[string]any, kind, name string) map[string]any {
		return m[kind].(map[string]any)[name].(map[string]any)
	}
	tests := []struct {
		name    string
		data    func(t *testing.T) []byte
		wantMsg string
	}{
		{"empty file", func(*testing.T) []byte { return nil }, "EOF"},
		{"not json", func(*testing.T) []byte { return []byte("{not json") }, "invalid character"},
		{"truncated", func(t *testing.T) []byte {
			b, _ := json.Marshal(valid(t))
			return b[:len(b)/2]
		}, "unexpected EOF"},
		{"trailing data", func(t *testing.T) []byte {
			b, _ := json.Marshal(valid(t))
			return append(b, []byte("{}")...)
		}, "trailing data"},
		{"unknown version", edit(func(_ *testing.T, m map[string]any) { m["version"] = 99 }), "version 99"},
		{"unknown field", edit(func(_ *testing.T, m map[string]any) { m["extra"] = true }), "unknown field"},
		{"bad trust domain", edit(func(_ *testing.T, m map[string]any) { m["trust_domain"] = "Bad Domain" }), "trust domain"},
		{"bad key", edit(func(_ *testing.T, m map[string]any) { slot(m, "x509", "current")["key"] = "AAAA" }), "x509 current: private key"},
		{"missing key", edit(func(_ *testing.T, m map[string]any) { delete(slot(m, "jwt", "current"), "key") }), "jwt current: private key missing"},
		{"key of other authority", edit(func(_ *testing.T, m map[string]any) {
			slot(m, "jwt", "current")["key"] = slot(m, "wit", "current")["key"]
		}), "does not match"},
		{"bad cert", edit(func(_ *testing.T, m map[string]any) { slot(m, "x509", "current")["cert"] = "AAAA" }), "certificate"},
		{"cert expiry differs", edit(func(_ *testing.T, m map[string]any) {
			slot(m, "x509", "current")["not_after"] = t0.Add(time.Hour).Format(time.RFC3339)
		}), "certificate expires"},
		{"empty validity", edit(func(_ *testing.T, m map[string]any) {
			slot(m, "wit", "current")["not_after"] = t0.Add(-time.Hour).Format(time.RFC3339)
		}), "validity"},
		{"missing kid", edit(func(_ *testing.T, m map[string]any) { delete(slot(m, "wit", "current"), "kid") }), "kid missing"},
		{"duplicate kid", edit(func(_ *testing.T, m map[string]any) {
			slot(m, "wit", "current")["kid"] = slot(m, "jwt", "current")["kid"]
		}), "used twice"},
		{"retired with key", edit(func(_ *testing.T, m map[string]any) {
			m["jwt"].(map[string]any)["retired"] = []any{slot(m, "jwt", "current")}
		}), "retired authority still holds its private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := privateDir(t)
			path := filepath.Join(dir, "ca.json")
			data := tt.data(t)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := NewFileJournal(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(context.Background(), Config{TrustDomain: testTD, Journal: j, SVIDTTL: testSVIDTTL, CATTL: testCATTL, Now: newFakeClock(t0).Now})
			if !errors.Is(err, ErrCorruptJournal) {
				t.Fatalf("err = %v, want ErrCorruptJournal", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.wantMsg)
			}
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(after, data) {
				t.Error("corrupt journal was modified")
			}
		})
	}
}

func TestFileJournalPermissions(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the journal path
		// atNew says the error comes from NewFileJournal; otherwise from
		// Load.
		atNew bool
	}{
		{"group-readable directory", func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "ca.json")
		}, true},
		{"world-writable directory", func(t *testing.T) string {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "ca.json")
		}, true},
		{"group-readable file", func(t *testing.T) string {
			path := filepath.Join(privateDir(t), "ca.json")
			if err := os.WriteFile(path, []byte("{}"), 0o640); err != nil {
				t.Fatal(err)
			}
			return path
		}, true},
		{"file made world-readable later", func(t *testing.T) string {
			return filepath.Join(privateDir(t), "ca.json")
		}, false},
		{"symlink", func(t *testing.T) string {
			dir := privateDir(t)
			target := filepath.Join(dir, "real.json")
			if err := os.WriteFile(target, []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "ca.json")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return path
		}, true},
		{"directory as file", func(t *testing.T) string {
			path := filepath.Join(privateDir(t), "ca.json")
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			return path
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t)
			j, err := NewFileJournal(path)
			if tt.atNew {
				if !errors.Is(err, ErrInsecurePermissions) {
					t.Fatalf("NewFileJournal: err = %v, want ErrInsecurePermissions", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Save(context.Background(), []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := j.Load(context.Background()); !errors.Is(err, ErrInsecurePermissions) {
				t.Errorf("Load: err = %v, want ErrInsecurePermissions", err)
			}
			if err := j.Save(context.Background(), []byte("{}")); !errors.Is(err, ErrInsecurePermissions) {
				t.Errorf("Save: err = %v, want ErrInsecurePermissions", err)
			}
		})
	}
}

func TestJournalLoadEmpty(t *testing.T) {
	ctx := context.Background()
	fj, err := NewFileJournal(filepath.Join(privateDir(t), "ca.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		j    Journal
	}{
		{"file", fj},
		{"memory", &MemoryJournal{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.j.Load(ctx); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load: err = %v, want ErrNotFound", err)
			}
			if err := tt.j.Save(ctx, []byte("one")); err != nil {
				t.Fatal(err)
			}
			if err := tt.j.Save(ctx, []byte("two")); err != nil {
				t.Fatal(err)
			}
			got, err := tt.j.Load(ctx)
			if err != nil || string(got) != "two" {
				t.Fatalf("Load = %q, %v", got, err)
			}
		})
	}
	if _, err := NewFileJournal(""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty path: err = %v", err)
	}
	if _, err := NewFileJournal(filepath.Join(t.TempDir(), "missing", "ca.json")); err == nil {
		t.Error("missing directory accepted")
	}
}
