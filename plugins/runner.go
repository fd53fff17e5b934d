package plugins

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	"github.com/agenthost/agenthost/plugins/sandbox"
)

// sandboxRunner runs a plugin process for go-plugin inside its sandbox
// (go-plugin's runner.Runner). go-plugin gives each plugin a socket
// directory of its own, where both sides create their sockets; it is the
// one directory the plugin may write to, at the same path inside.
type sandboxRunner struct {
	cfg       Config
	cmd       *exec.Cmd
	socketDir string
	bin       *os.File
	stdoutR   *os.File
	stderrR   *os.File
	proc      *sandbox.Process
	// startErr is why the sandbox could not start, when it could not.
	startErr error
}

func newSandboxRunner(cfg Config, cmd *exec.Cmd, socketDir string, bin *os.File) (*sandboxRunner, error) {
	return &sandboxRunner{cfg: cfg, cmd: cmd, socketDir: socketDir, bin: bin}, nil
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
	proc, err := sandbox.Start(sandbox.Spec{
		Path:   r.cfg.Path,
		Binary: r.bin,
		Args:   r.cfg.Args,
		// The plugin's own environment and go-plugin's variables; the
		// host's own environment is never passed on.
		Env:          append(append([]string{}, r.cfg.Env...), r.cmd.Env...),
		Sockets:      r.cfg.Sockets,
		WritableDirs: []string{r.socketDir},
		Stdout:       outW,
		Stderr:       errW,
		Owner:        r.cfg.Owner,
	}, r.cfg.Sandbox)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		r.startErr = err
		return err
	}
	r.proc, r.stdoutR, r.stderrR = proc, outR, errR
	return nil
}

func (r *sandboxRunner) Diagnose(context.Context) string {
	if r.startErr != nil {
		return "the plugin's sandbox could not start: " + r.startErr.Error()
	}
	return fmt.Sprintf("plugin %s exited before completing the go-plugin handshake (is it a plugin built with the agenthost SDK?)", r.cfg.Path)
}

func (r *sandboxRunner) Stdout() io.ReadCloser { return r.stdoutR }
func (r *sandboxRunner) Stderr() io.ReadCloser { return r.stderrR }
func (r *sandboxRunner) Name() string          { return r.cfg.Path }

func (r *sandboxRunner) Wait(context.Context) error {
	if r.proc == nil {
		return r.startErr
	}
	return r.proc.Wait()
}

func (r *sandboxRunner) Kill(context.Context) error {
	if r.proc != nil {
		r.proc.Kill()
	}
	return nil
}

func (r *sandboxRunner) ID() string {
	if r.proc == nil {
		return ""
	}
	return strconv.Itoa(r.proc.PID())
}

// The plugin sees the host's paths at the same place: no translation.
func (r *sandboxRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *sandboxRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
