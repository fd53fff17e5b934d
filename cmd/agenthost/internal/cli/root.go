package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	// exitUsage is for bad flags, arguments or configuration: the command
	// could not start because of what it was given.
	exitUsage = 2
)

// version is set at build time (-ldflags -X); "dev" otherwise.
var version = "dev"

const defaultDataDir = "./.agenthost"

type globalFlags struct {
	dataDir string
	// isTerminal reports whether an output is a terminal.
	isTerminal func(io.Writer) bool
}

// commandPrefix is how to invoke agenthost on the same data directory, for
// commands suggested to the user.
func (g *globalFlags) commandPrefix() string {
	if g.dataDir == defaultDataDir {
		return invokedAs
	}
	return invokedAs + " --data-dir " + shellQuote(g.dataDir)
}

// invokedAs is how the user ran this program ("./bin/agenthost" as typed,
// or "agenthost" when found on PATH), for the commands it suggests.
var invokedAs = "agenthost"

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// usageError marks an error caused by what the user gave the command.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// silentExit carries an exit status whose message was already printed.
type silentExit struct{ code int }

func (e silentExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Execute runs the agenthost command line with args and returns the process
// exit status.
func Execute(args []string, stdout, stderr io.Writer) int {
	return execute(args, os.Stdin, stdout, stderr, isTerminal)
}

// InvokedAs records how the program was run (its argv[0]), so that the
// commands it suggests can be copied as they are: a path as typed
// ("./bin/agenthost"), or "agenthost" when it was found on PATH.
func InvokedAs(argv0 string) {
	if strings.Contains(argv0, "/") {
		invokedAs = shellQuote(argv0)
	}
}

// execute is Execute with standard input and the terminal test given.
func execute(args []string, stdin io.Reader, stdout, stderr io.Writer, isTerm func(io.Writer) bool) int {
	root := newRootWith(stdout, stderr, isTerm)
	root.SetIn(stdin)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var se silentExit
	if errors.As(err, &se) {
		return se.code
	}
	// An error may quote what a host, a server or an agent said.
	fmt.Fprintf(stderr, "agenthost: %s\n", escapeControls(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitFailure
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	return newRootWith(stdout, stderr, isTerminal)
}

// newRootWith is newRoot with the terminal test given.
func newRootWith(stdout, stderr io.Writer, isTerm func(io.Writer) bool) *cobra.Command {
	g := &globalFlags{isTerminal: isTerm}
	root := &cobra.Command{
		Use:   "agenthost",
		Short: "Run AI agents safely: workload identity, OAuth and audit for every call an agent makes",
		Long: `agenthost runs each AI agent as a separate plugin process, contained in a sandbox,
and mediates every call it makes (to a model, an MCP tool or another agent)
through workload identity, OAuth token acquisition, policy and a
tamper-evident audit log.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// The completion command is this package's own (bash, zsh and fish,
	// usage errors as every other command's).
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", defaultDataDir,
		"directory holding all of the host's state; CLI commands find the running host through it")
	root.AddCommand(
		newUpCommand(g),
		newValidateCommand(g),
		newVersionCommand(g),
		newStatusCommand(g),
		newAgentsCommand(g),
		newRunCommand(g),
		newApprovalsCommand(g),
		newLoginCommand(g),
		newLogoutCommand(g),
		newWhoamiCommand(g),
		newTokenCommand(g),
		newQuarantineCommand(g),
		newReleaseCommand(g),
		newAuditCommand(g),
		newPolicyCommand(g),
		newHashPasswordCommand(g),
		newDoctorCommand(g),
		newCompletionCommand(),
	)
	return root
}

// maxArgs is cobra.MaximumNArgs with a usage error.
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError{fmt.Errorf("%s takes at most %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}
