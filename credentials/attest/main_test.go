package attest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The test binary doubles as the workload under test: started with
// childEnv set, it runs one of the child modes below instead of the tests.
const (
	childEnv    = "ATTEST_TEST_CHILD"
	childPIDEnv = "ATTEST_TEST_PID"

	// modeWait prints "ready" and runs until its stdin is closed.
	modeWait = "wait"
	// modeExit exits at once.
	modeExit = "exit"
	// modeSpawn starts a copy of itself in modeWait, prints that
	// grandchild's pid and runs until its stdin is closed.
	modeSpawn = "spawn"
	// modeCollect collects evidence about childPIDEnv and prints
	// "permission" when that failed for lack of permission, or the
	// outcome otherwise.
	modeCollect = "collect"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case modeWait:
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case modeExit:
		os.Exit(0)
	case modeSpawn:
		os.Exit(runSpawn())
	case modeCollect:
		pid, err := strconv.Atoi(os.Getenv(childPIDEnv))
		if err != nil {
			fmt.Println("bad pid:", err)
			os.Exit(2)
		}
		_, err = Collect(context.Background(), Request{PID: pid})
		switch {
		case errors.Is(err, fs.ErrPermission):
			fmt.Println("permission")
		case err != nil:
			fmt.Println("error:", err)
		default:
			fmt.Println("collected")
		}
		os.Exit(0)
	default:
		fmt.Println("unknown child mode")
		os.Exit(2)
	}
}

// copyTestBinary copies the running test binary to dir/name with marker
// appended, so that the copy runs like the original but has its own digest.
// It returns the path of the copy.
func copyTestBinary(tb testing.TB, dir, name, marker string) string {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatalf("os.Executable: %v", err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		tb.Fatalf("read test binary: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, append(data, marker...), 0o755); err != nil {
		tb.Fatalf("write test binary copy: %v", err)
	}
	return path
}

// child is a running copy of the test binary in modeWait.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  bool
}

// startChild starts path in modeWait and returns once it has printed
// "ready", so it is running the test binary's code. The child is stopped
// when the test ends.
func startChild(tb testing.TB, path string) *child {
	tb.Helper()
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), childEnv+"="+modeWait)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("stdin pipe: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start child: %v", err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	tb.Cleanup(c.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		tb.Fatalf("child did not report ready: %q, %v", line, err)
	}
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop closes the child's stdin, which ends it, and reaps it.
func (c *child) stop() {
	if c.done {
		return
	}
	c.done = true
	_ = c.stdin.Close()
	_ = c.cmd.Wait()
}

// kill kills the child and reaps it.
func (c *child) kill() {
	if c.done {
		return
	}
	c.done = true
	_ = c.cmd.Process.Kill()
	_ = c.stdin.Close()
	_ = c.cmd.Wait()
}
