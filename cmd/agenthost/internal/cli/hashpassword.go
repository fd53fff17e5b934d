package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
)

// maxPasswordLen is the longest password hash-password accepts, in bytes.
const maxPasswordLen = 1024

// stdinIsTerminal reports whether r is a terminal (a character device).
var stdinIsTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newHashPasswordCommand(_ *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "Hash a password or client secret for the config (argon2id)",
		Long: `hash-password reads a password or client secret from the first line of standard
input and prints its argon2id hash, ready for auth.users[].password_hash or
auth.clients[].secret_hash. Secrets are never written in the config itself.

When standard input is a terminal it prompts on standard error; what is typed
stays visible, so pipe the secret in where that matters:

  printf '%s\n' "$SECRET" | agenthost hash-password`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := cmd.InOrStdin()
			if stdinIsTerminal(in) {
				fmt.Fprint(cmd.ErrOrStderr(), "Password (typed text is visible): ")
			}
			password, err := readPassword(in)
			if err != nil {
				return err
			}
			hash, err := userauth.HashPassword(password)
			if err != nil {
				return fmt.Errorf("hash-password: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), hash)
			return nil
		},
	}
}

// readPassword returns the first line of in without its line ending. An
// empty or overlong password is a usage error.
func readPassword(in io.Reader) (string, error) {
	// Read a little past the limit, so that a longer line is refused
	// rather than cut.
	r := bufio.NewReader(io.LimitReader(in, maxPasswordLen+3))
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("hash-password: read standard input: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	switch {
	case line == "":
		return "", usageError{errors.New("hash-password: the password is empty; give it on the first line of standard input")}
	case len(line) > maxPasswordLen:
		return "", usageError{fmt.Errorf("hash-password: the password is longer than %d bytes", maxPasswordLen)}
	}
	return line, nil
}
