package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

// TestStorageDSNNeverQuoted writes the connection string where it does not
// belong: every one is refused, and no message repeats it.
func TestStorageDSNNeverQuoted(t *testing.T) {
	dir := tlsDir(t)
	const secret = "s3cr3t-pw"
	tests := []struct {
		name string
		src  string
		want want
	}{
		{"dsn key", "storage:\n  driver: postgres\n  dsn_env: PG_DSN\n  dsn: postgres://me:" + secret + "@db.example/agenthost\n",
			want{5, "storage.dsn", config.ErrInvalid, "the PostgreSQL connection string is never written in the config; put it in an environment variable named by dsn_env, or in a file named by dsn_file"}},
		{"url key", "storage:\n  driver: postgres\n  dsn_env: PG_DSN\n  url: postgres://me:" + secret + "@db.example/agenthost\n",
			want{5, "storage.url", config.ErrInvalid, "never written in the config"}},
		{"password key", "storage:\n  driver: postgres\n  dsn_env: PG_DSN\n  password: " + secret + "\n",
			want{5, "storage.password", config.ErrInvalid, "never written in the config"}},
		{"url in dsn_env", "storage:\n  driver: postgres\n  dsn_env: postgres://me:" + secret + "@db.example/agenthost\n",
			want{4, "storage.dsn_env", config.ErrInvalid, "is not an environment variable name (letters, digits and '_'); the PostgreSQL connection string is never written"}},
		{"keywords in dsn_env", "storage:\n  driver: postgres\n  dsn_env: host=db password=" + secret + "\n",
			want{4, "storage.dsn_env", config.ErrInvalid, "is not an environment variable name"}},
		{"url in dsn_file", "storage:\n  driver: postgres\n  dsn_file: postgresql://me:" + secret + "@db.example/agenthost\n",
			want{4, "storage.dsn_file", config.ErrInvalid, "holds a connection string, not the path of a file"}},
		{"keywords in dsn_file", "storage:\n  driver: postgres\n  dsn_file: host=db password=" + secret + "\n",
			want{4, "storage.dsn_file", config.ErrInvalid, "holds a connection string, not the path of a file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte("version: 1\n"+tt.src))
			check(t, err, []want{tt.want})
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error repeats the secret: %v", err)
			}
		})
	}
}

func TestStorageDSN(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const dsn = "postgres://agenthost:pw@db.example:5432/agenthost?sslmode=verify-full"
	t.Setenv("AGENTHOST_TEST_DSN", dsn)
	t.Setenv("AGENTHOST_TEST_DSN_PADDED", "  "+dsn+"\n")
	t.Setenv("AGENTHOST_TEST_DSN_EMPTY", " \n")
	os.Unsetenv("AGENTHOST_TEST_DSN_UNSET")
	pg := func(env, file string) config.StorageConfig {
		return config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: env, DSNFile: file}
	}
	tests := []struct {
		name    string
		storage config.StorageConfig
		want    string // the DSN, or the error's text
		wantErr bool
	}{
		{"env", pg("AGENTHOST_TEST_DSN", ""), dsn, false},
		{"env with white space", pg("AGENTHOST_TEST_DSN_PADDED", ""), dsn, false},
		{"file with a final newline", pg("", write("nl", dsn+"\n")), dsn, false},
		{"file with CRLF", pg("", write("crlf", dsn+"\r\n")), dsn, false},
		{"file in keyword form", pg("", write("kw", "host=db.example dbname=agenthost sslmode=verify-full\n")),
			"host=db.example dbname=agenthost sslmode=verify-full", false},
		{"env unset", pg("AGENTHOST_TEST_DSN_UNSET", ""), "config: storage.dsn_env: environment variable AGENTHOST_TEST_DSN_UNSET is not set", true},
		{"env empty", pg("AGENTHOST_TEST_DSN_EMPTY", ""), "config: storage.dsn_env: environment variable AGENTHOST_TEST_DSN_EMPTY is empty", true},
		{"file missing", pg("", filepath.Join(dir, "missing")), "config: storage.dsn_file: open " + filepath.Join(dir, "missing") + ": no such file or directory", true},
		{"file empty", pg("", write("empty", "\n")), "config: storage.dsn_file: " + filepath.Join(dir, "empty") + " is empty", true},
		{"file too large", pg("", write("large", strings.Repeat("x", config.MaxDSNFileSize+1))), "is larger than 65536 bytes", true},
		{"neither", pg("", ""), "config: storage: driver postgres needs dsn_env or dsn_file", true},
		{"both", pg("AGENTHOST_TEST_DSN", write("both", dsn)), "config: storage: give dsn_env or dsn_file, not both", true},
		{"sqlite", config.StorageConfig{Driver: config.DriverSQLite}, `config: storage: driver "sqlite" has no DSN; only driver postgres has one`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.storage.DSN()
			switch {
			case tt.wantErr && err == nil:
				t.Fatalf("DSN() = %q, want an error", got)
			case tt.wantErr && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("DSN() error = %q, want %q", err, tt.want)
			case tt.wantErr && strings.Contains(err.Error(), "pw@"):
				t.Fatalf("DSN() error %q shows the connection string", err)
			case !tt.wantErr && err != nil:
				t.Fatalf("DSN() error = %v", err)
			case !tt.wantErr && got != tt.want:
				t.Fatalf("DSN() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStorageDigest checks that the new keys leave the digest of a file
// without them unchanged, and that they are part of it when written.
func TestStorageDigest(t *testing.T) {
	canon, err := config.Default().CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(canon), "dsn") {
		t.Fatalf("the canonical JSON of the default config mentions dsn: %s", canon)
	}
	c := config.Default()
	c.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: "PG_DSN"}
	canon, err = c.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(canon), `"storage":{"driver":"postgres","path":"","dsn_env":"PG_DSN"}`) {
		t.Fatalf("canonical JSON = %s", canon)
	}
}
