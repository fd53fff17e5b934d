package cli

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
)

// runWithStdin runs the command line with in as standard input and returns
// the exit status, standard output and standard error.
func runWithStdin(t *testing.T, in io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := newRoot(&stdout, &stderr)
	root.SetIn(in)
	root.SetArgs(args)
	code := exitOK
	if err := root.Execute(); err != nil {
		stderr.WriteString("agenthost: " + err.Error() + "\n")
		code = exitFailure
		var ue usageError
		if errors.As(err, &ue) {
			code = exitUsage
		}
	}
	return code, stdout.String(), stderr.String()
}

func TestHashPassword(t *testing.T) {
	long := strings.Repeat("p", maxPasswordLen)
	tests := []struct {
		name     string
		stdin    string
		password string // what the hash must verify
	}{
		{"line with newline", "correct horse battery staple\n", "correct horse battery staple"},
		{"no final newline", "s3cr3t", "s3cr3t"},
		{"crlf line ending", "s3cr3t\r\n", "s3cr3t"},
		{"only the first line", "first\nsecond\n", "first"},
		{"spaces are kept", "  padded  \n", "  padded  "},
		{"unicode", "pässwörd\n", "pässwörd"},
		{"longest accepted", long + "\n", long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runWithStdin(t, strings.NewReader(tt.stdin), "hash-password")
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing when stdin is not a terminal", stderr)
			}
			hash, ok := strings.CutSuffix(stdout, "\n")
			if !ok || strings.Contains(hash, "\n") || !strings.HasPrefix(hash, "$argon2id$v=19$") {
				t.Fatalf("stdout = %q, want one argon2id PHC line", stdout)
			}
			if ok, err := userauth.VerifyPassword(hash, tt.password); err != nil || !ok {
				t.Fatalf("VerifyPassword(hash, %q) = %v, %v", tt.password, ok, err)
			}
			if ok, err := userauth.VerifyPassword(hash, tt.password+"x"); err != nil || ok {
				t.Errorf("VerifyPassword(hash, wrong) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestHashPasswordSalted(t *testing.T) {
	_, a, _ := runWithStdin(t, strings.NewReader("same\n"), "hash-password")
	_, b, _ := runWithStdin(t, strings.NewReader("same\n"), "hash-password")
	if a == "" || a == b {
		t.Fatalf("two hashes of one password: %q and %q; want different salts", a, b)
	}
}

func TestHashPasswordProblems(t *testing.T) {
	tests := []struct {
		name     string
		stdin    io.Reader
		args     []string
		wantCode int
		wantErr  string
	}{
		{"empty input", strings.NewReader(""), nil, exitUsage, "the password is empty"},
		{"empty first line", strings.NewReader("\nsecret\n"), nil, exitUsage, "the password is empty"},
		{"only crlf", strings.NewReader("\r\n"), nil, exitUsage, "the password is empty"},
		{"one byte too long", strings.NewReader(strings.Repeat("p", maxPasswordLen+1) + "\n"), nil, exitUsage, "longer than 1024 bytes"},
		{"very long without newline", strings.NewReader(strings.Repeat("p", 1<<20)), nil, exitUsage, "longer than 1024 bytes"},
		{"read error", iotest.ErrReader(errors.New("device gone")), nil, exitFailure, "read standard input: device gone"},
		{"argument given", strings.NewReader("x\n"), []string{"extra"}, exitUsage, "at most 0 argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runWithStdin(t, tt.stdin, append([]string{"hash-password"}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to contain %q)", code, tt.wantCode, stderr, tt.wantErr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestHashPasswordPromptsOnTerminal(t *testing.T) {
	saved := stdinIsTerminal
	t.Cleanup(func() { stdinIsTerminal = saved })
	stdinIsTerminal = func(io.Reader) bool { return true }

	code, stdout, stderr := runWithStdin(t, strings.NewReader("typed\n"), "hash-password")
	if code != exitOK || !strings.HasPrefix(stderr, "Password") {
		t.Fatalf("exit %d, stderr %q; want a prompt on stderr", code, stderr)
	}
	hash := strings.TrimSuffix(stdout, "\n")
	if ok, err := userauth.VerifyPassword(hash, "typed"); err != nil || !ok {
		t.Fatalf("stdout %q does not verify: %v, %v", stdout, ok, err)
	}
}

func TestStdinIsTerminal(t *testing.T) {
	if stdinIsTerminal(strings.NewReader("x")) {
		t.Error("a strings.Reader is reported as a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if stdinIsTerminal(r) {
		t.Error("a pipe is reported as a terminal")
	}
}
