package plugins

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-plugin"

	"github.com/agenthost/agenthost/plugins/sandbox"
)

// pluginSocketDir is where a contained plugin sees its go-plugin socket
// directory.
const pluginSocketDir = sandbox.RunDir + "/plugin"

// sandboxRunner runs a plugin process for go-plugin inside its sandbox
// (go-plugin's runner.Runner). go-plugin gives each plugin a socket
// directory of its own, where both sides create their sockets; it is the
// one directory the plugin may write to, seen at pluginSocketDir inside,
// and the runner translates the socket addresses the two sides exchange.
type sandboxRunner struct {
	cfg       Config
	cmd       *exec.Cmd
	socketDir string
	bin       *os.File
	stdoutR   *os.File
	stderrR   *os.File

	mu   sync.Mutex
	proc *sandbox.Process
	// startErr is why the sandbox could not start, when it could not.
	startErr error
	// aborted: the start was abandoned; the process is killed as soon as
	// it exists.
	aborted bool
	// pinned are the descriptors of the plugin's sockets the host dials
	// (see pinSocket), closed when the process has exited.
	pinned []int
}

func newSandboxRunner(cfg Config, cmd *exec.Cmd, socketDir string, bin *os.File) *sandboxRunner {
	return &sandboxRunner{cfg: cfg, cmd: cmd, socketDir: socketDir, bin: bin}
}

// abort kills the plugin process, now or as soon as it is started.
func (r *sandboxRunner) abort() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aborted = true
	if r.proc != nil {
		r.proc.Kill()
	}
}

func (r *sandboxRunner) process() *sandbox.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

func (r *sandboxRunner) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.startErr
}

// Start starts the plugin process in its sandbox.
func (r *sandboxRunner) Start(context.Context) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	// The plugin's own environment and go-plugin's variables; the host's
	// own environment is never passed on. A contained plugin finds its
	// socket directory at pluginSocketDir.
	env := append([]string{}, r.cfg.Env...)
	for _, kv := range r.cmd.Env {
		if k, _, _ := strings.Cut(kv, "="); k == plugin.EnvUnixSocketDir && r.cfg.Sandbox.Contained() {
			kv = k + "=" + pluginSocketDir
		}
		env = append(env, kv)
	}
	proc, err := sandbox.Start(sandbox.Spec{
		Path:         r.cfg.Path,
		Binary:       r.bin,
		Args:         r.cfg.Args,
		Env:          env,
		Sockets:      r.cfg.Sockets,
		WritableDirs: []sandbox.Bind{{Source: r.socketDir, Target: pluginSocketDir}},
		Stdout:       outW,
		Stderr:       errW,
		Owner:        r.cfg.Owner,
	}, r.cfg.Sandbox)
	outW.Close()
	errW.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		outR.Close()
		errR.Close()
		r.startErr = err
		// go-plugin removes the socket directory only of a runner whose
		// process started (one with an ID).
		_ = os.RemoveAll(r.socketDir)
		return err
	}
	r.proc, r.stdoutR, r.stderrR = proc, outR, errR
	if r.aborted {
		proc.Kill()
	}
	return nil
}

func (r *sandboxRunner) Diagnose(context.Context) string {
	if err := r.err(); err != nil {
		return "the plugin's sandbox could not start: " + err.Error()
	}
	return fmt.Sprintf("plugin %s exited before completing the go-plugin handshake (is it a plugin built with the agenthost SDK?)", r.cfg.Path)
}

func (r *sandboxRunner) Stdout() io.ReadCloser { return r.stdoutR }
func (r *sandboxRunner) Stderr() io.ReadCloser { return r.stderrR }
func (r *sandboxRunner) Name() string          { return r.cfg.Path }

func (r *sandboxRunner) Wait(context.Context) error {
	proc := r.process()
	if proc == nil {
		return r.err()
	}
	err := proc.Wait()
	r.unpin()
	return err
}

func (r *sandboxRunner) Kill(context.Context) error {
	if proc := r.process(); proc != nil {
		proc.Kill()
	}
	return nil
}

func (r *sandboxRunner) ID() string {
	proc := r.process()
	if proc == nil {
		return ""
	}
	return strconv.Itoa(proc.PID())
}

// PluginToHost translates a socket address the plugin gives (in its
// socket directory as it sees it) to one the host dials. The host dials
// what a contained plugin names, so the plugin may name only a socket it
// created in its socket directory: any other address (a TCP one, a host
// path) would have the host open a connection for it. The socket is
// pinned (see pinSocket): a symbolic link the plugin plants there, or puts
// in the socket's place later, is never followed.
func (r *sandboxRunner) PluginToHost(network, addr string) (string, string, error) {
	if !r.cfg.Sandbox.Contained() {
		return network, addr, nil
	}
	name, ok := strings.CutPrefix(addr, pluginSocketDir+"/")
	if network != "unix" || !ok || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("plugins: %s: refused the address %s %q: not in the plugin's socket directory", r.cfg.Name, network, addr)
	}
	pinned, err := r.pinSocket(r.socketDir + "/" + name)
	if err != nil {
		return "", "", fmt.Errorf("plugins: %s: refused the address %q: %w", r.cfg.Name, addr, err)
	}
	return network, pinned, nil
}

// HostToPlugin translates a socket address of the host's (in the
// plugin's socket directory) to the path the plugin sees.
func (r *sandboxRunner) HostToPlugin(network, addr string) (string, string, error) {
	if network == "unix" && r.cfg.Sandbox.Contained() {
		if rest, ok := strings.CutPrefix(addr, r.socketDir+"/"); ok {
			return network, pluginSocketDir + "/" + rest, nil
		}
	}
	return network, addr, nil
}
