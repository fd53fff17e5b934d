//go:build !linux

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// Process is a started plugin process.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts the process spec describes. Only LevelNone exists on this
// operating system: LevelStrict fails with ErrUnsupported.
func Start(spec Spec, policy Policy) (*Process, error) {
	if policy.level() != LevelNone {
		return nil, fmt.Errorf("%w: plugins cannot be contained on %s; sandbox level none is the only one", ErrUnsupported, runtime.GOOS)
	}
	if spec.Binary == nil || spec.Stdout == nil || spec.Stderr == nil {
		return nil, fmt.Errorf("%w: the open binary, stdout and stderr are required", ErrConfig)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append([]string{}, spec.Env...)
	cmd.Stdout, cmd.Stderr = spec.Stdout, spec.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sandbox: start %s: %w", spec.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Probe reports that LevelStrict is not available on this system.
func Probe() (Protections, error) {
	return Protections{}, fmt.Errorf("%w: plugins cannot be contained on %s", ErrUnsupported, runtime.GOOS)
}

// Sweep finds nothing on this system: no sandbox is ever started.
func Sweep(owner string) (int, error) { return 0, nil }

// PID is the plugin's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Protections says which protections are in force: none.
func (p *Process) Protections() Protections {
	return Protections{Level: LevelNone, Missing: []string{"not contained: no sandbox on " + runtime.GOOS}}
}

// Wait waits for the process to exit.
func (p *Process) Wait() error { <-p.done; return p.err }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill kills the process.
func (p *Process) Kill() { _ = p.cmd.Process.Kill() }

// Signal sends sig to the plugin.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }
