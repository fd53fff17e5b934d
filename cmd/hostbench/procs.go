package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long a server has to exit after SIGTERM before it
// is killed.
const stopTimeout = 10 * time.Second

// process is a server this program started: the host or the bare mcp-go
// server. Its stdout and stderr go to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stdin   *os.File // held open; the bare server exits when it closes
	exited  chan struct{}
	waitErr error
}

// startProcess starts path with args, its output appended to logPath, and
// waits up to timeout for a line of its stdout that addrOf accepts,
// returning what addrOf extracted. On any error the process is stopped.
func startProcess(ctx context.Context, name, path string, args []string, logPath string,
	addrOf func(line string) (string, bool), timeout time.Duration) (*process, string, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", err
	}
	defer logf.Close() // the child holds its own descriptor
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, "", err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = inR
	cmd.Stdout = outW
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	outW.Close()
	inR.Close()
	if err != nil {
		outR.Close()
		inW.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, stdin: inW, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	// Copy stdout to the log, and hand over the first address line.
	found := make(chan string, 1)
	go func() {
		defer outR.Close()
		lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			lf = nil
		} else {
			defer lf.Close()
		}
		sc := bufio.NewScanner(outR)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if lf != nil {
				fmt.Fprintln(lf, line)
			}
			if !sent {
				if addr, ok := addrOf(line); ok {
					found <- addr
					sent = true
				}
			}
		}
		_, _ = io.Copy(io.Discard, outR)
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case addr := <-found:
		return p, addr, nil
	case <-p.exited:
		err = fmt.Errorf("%s exited before it listened (%v)%s", name, p.waitErr, p.logTail(20))
	case <-timer.C:
		err = fmt.Errorf("%s did not say where it listens within %s%s", name, timeout, p.logTail(20))
	case <-ctx.Done():
		err = ctx.Err()
	}
	_ = p.stop()
	return nil, "", err
}

// pid is the process id, for /proc/<pid>/stat.
func (p *process) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }

// alive reports whether the process has not exited.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to stopTimeout, then kills the process,
// and waits for it. It may be called more than once.
func (p *process) stop() error {
	if p == nil {
		return nil
	}
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
	if !p.alive() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.name, stopTimeout)
}

// logTail returns the last n lines of the process's log, indented, for an
// error message; "" if the log is empty.
func (p *process) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "; its log ends:\n    " + strings.Join(lines, "\n    ")
}

// hostBanner matches the banner line of `agenthost up` that says where
// it listens: "  listening on   127.0.0.1:8420 (issuer http://127.0.0.1:8420)".
var hostBanner = regexp.MustCompile(`^\s*listening on\s+\S+\s+\(issuer (\S+)\)\s*$`)

// hostIssuer extracts the issuer URL from a banner line.
func hostIssuer(line string) (string, bool) {
	m := hostBanner.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// bareLinePrefix starts the one line the bare server prints, followed by
// its base URL.
const bareLinePrefix = "mcpbare listening on "

func parseBareURL(line string) (string, bool) {
	u, ok := strings.CutPrefix(line, bareLinePrefix)
	return strings.TrimSpace(u), ok && u != ""
}

// freePort returns a loopback TCP port nothing listens on now. The host's
// config wants a real port, so one is picked and released; another
// process could take it before the host binds it, which the host then
// reports.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls url (the host's /readyz) until it answers 200.
func waitReady(ctx context.Context, p *process, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if !p.alive() {
			return fmt.Errorf("%s exited while starting (%v)%s", p.name, p.waitErr, p.logTail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s (last answer %s)%s", url, timeout, last, p.logTail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// hostConfig is the config of the measured host: one hosted MCP server
// with the clock tool, a confidential client that may get tokens for it,
// and a Cedar policy directory permitting everything (so the policy
// engine runs on every call, as in BenchmarkHostToolsCall).
const hostConfig = `# Written by cmd/hostbench.
version: 1
trust_domain: hostbench.local
listen:
  address: 127.0.0.1:%d
storage:
  driver: sqlite
log:
  level: info
  format: text
auth:
  clients:
    - id: %s
      name: hostbench load generator
      auth_method: client_secret_post
      secret_hash: %q
      grant_types: [client_credentials]
      scopes: [clock:read]
mcp:
  servers:
    - name: clock
      tools: [clock/now]
policy:
  dir: policies
`

const basePolicy = `@id("baseline")
permit (principal, action, resource);
`

// writeHostConfig writes the host's config and policy directory into dir
// and returns the config's path.
func writeHostConfig(dir string, port int, clientID, secretHash string) (string, error) {
	pdir := filepath.Join(dir, "policies")
	if err := os.Mkdir(pdir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(pdir, "baseline.cedar"), []byte(basePolicy), 0o600); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "agenthost.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, hostConfig, port, clientID, secretHash), 0o600); err != nil {
		return "", err
	}
	return path, nil
}
