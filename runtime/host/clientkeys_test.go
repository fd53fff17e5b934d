package host

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
)

// TestGeneratedClientKey: a client's key is created once, owner-only, and
// the same key (and JWK Set) is used at every start; an ID that is not a
// plain file name gets a digest as its file name, never a path.
func TestGeneratedClientKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := generatedClientJWKS(dir, "a2a-caller")
	if err != nil {
		t.Fatal(err)
	}
	path := ClientKeyPath(dir, "a2a-caller")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v, %v", path, fi, err)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("key directory: %v, %v", di, err)
	}
	again, err := generatedClientJWKS(dir, "a2a-caller")
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("second start: %s, %v; want %s", again, err, first)
	}
	keys, err := jose.ParseKeySet(first, 0)
	if err != nil || len(keys) != 1 {
		t.Fatalf("JWK Set %s: %v", first, err)
	}
	if strings.Contains(string(first), `"d"`) {
		t.Fatal("the JWK Set holds the private key")
	}
	_, kid, err := ReadClientKey(path)
	if err != nil || keys[kid] == nil {
		t.Fatalf("the key file's kid %q is not the set's: %v", kid, err)
	}
	for _, id := range []string{"../../etc/x", "a/b", ".hidden", "spiffe://x/y"} {
		p := ClientKeyPath(dir, id)
		if filepath.Dir(p) != filepath.Join(dir, clientKeysDirName) || strings.Contains(filepath.Base(p), "/") || strings.HasPrefix(filepath.Base(p), ".") {
			t.Errorf("ClientKeyPath(%q) = %s", id, p)
		}
	}
}
