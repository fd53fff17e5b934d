package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/agenthost/agenthost/runtime/localapi"
)

// openPTY opens a pseudo-terminal and returns its two ends.
func openPTY(t *testing.T) (controller, terminal *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	controller = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { controller.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	terminal, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminal.Close() })
	return controller, terminal
}

func TestIsTerminal(t *testing.T) {
	_, tty := openPTY(t)
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	regular, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	tests := []struct {
		name string
		w    io.Writer
		want bool
	}{
		{"pseudo-terminal", tty, true},
		{"/dev/null (a character device, not a terminal)", devNull, false},
		{"regular file", regular, false},
		{"buffer", &bytes.Buffer{}, false},
	}
	for _, tt := range tests {
		if got := isTerminal(tt.w); got != tt.want {
			t.Errorf("%s: isTerminal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestRunOnATerminal runs the command with its stdout and stderr on a real
// pseudo-terminal: what reaches the terminal holds no escape sequence from
// the agent, only the live line's own.
func TestRunOnATerminal(t *testing.T) {
	controller, tty := openPTY(t)
	dir := startRunHost(t, &runBackend{events: []localapi.TaskEvent{{Type: "thought", Text: hostile}, {Type: "final", Text: hostile}}})
	code := execute([]string{"run", "research", "hi", "--data-dir", dir}, strings.NewReader(""), tty, tty, isTerminal)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	tty.Close()
	var got bytes.Buffer
	_, _ = io.Copy(&got, controller) // ends with EIO once the terminal end is closed
	out := got.String()
	// The terminal writes each newline as CR LF (so the agent's own CR LF
	// arrives as CR CR LF); the live line clears itself with CR, ESC [K.
	out = strings.ReplaceAll(out, "\r\r\n", "\n")
	out = withoutLiveLine(strings.ReplaceAll(out, "\r\n", "\n"))
	if strings.ContainsAny(out, "\x1b\x07\r\u009b\u202e") {
		t.Fatalf("a control character from the agent reached the terminal: %q", out)
	}
	for _, want := range []string{"task task-abc (trace: ", "· " + strings.ReplaceAll(hostileEscaped, "\r\n", "\n"), strings.ReplaceAll(hostileEscaped, "\r\n", "\n") + "\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("terminal output %q lacks %q", out, want)
		}
	}
}
