package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// defaultRunWait is how long run waits for an agent the host is still
// starting.
const defaultRunWait = 30 * time.Second

// maxTaskRead bounds what run reads from standard input or a file. The host
// sets the real limit (localapi.MaxTaskInput) and names it when a task is
// larger; this only keeps a runaway input out of memory.
const maxTaskRead = 4 * localapi.MaxTaskInput

func newRunCommand(g *globalFlags) *cobra.Command {
	var (
		subject string
		file    string
		wait    time.Duration
		quiet   bool
		raw     bool
	)
	cmd := &cobra.Command{
		Use:   "run AGENT {TASK | - | --file PATH}",
		Short: "Send a task to an agent of the running host and stream its events",
		Long: fmt.Sprintf(`run sends a task to AGENT on the host running on --data-dir and streams what
the agent does: its thoughts and tool calls on stderr, the final answer on
stdout. It exits 0 when the agent answers and 1 when the task fails.

The task is the TASK argument, or standard input when TASK is "-", or the
file named by --file; the host takes tasks of up to %d MiB and says so when
one is larger.

The first lines on stderr (after the "waiting…" line below, if it waited)
name the task, the command that traces it through the audit log, and the
transaction it began (the txn of its Transaction Token, which every audit
record of the task, of the tasks it delegates and of their tool calls
carries): "task task-… (trace: agenthost audit trace txn-…)" and
"txn txn-…".

An agent that the host is still starting is waited for, up to --wait
(printing "waiting for agent AGENT to start…"); an agent that failed to
start or is quarantined fails the command at once, saying so.

What an agent says is untrusted. Its control characters (escape sequences
that could retitle or clear the terminal, carriage returns that could hide
text, bidirectional overrides) are written as escapes such as \x1b, on a
terminal and in a pipe alike, so that an answer cannot drive a terminal even
through tee or less -R; newlines and tabs are kept. --raw writes the answer
on stdout byte for byte instead, for programs that need it exact; the lines
on stderr are escaped always.

When you are signed in at the host's authorization server (agenthost
login), the task acts for you: run presents your access token (renewed with
the refresh token when it expired; "your sign-in has expired: run agenthost
login" when that fails), the host verifies it and takes you, the token's
subject, as the task's user; its audit record says subject_source "token".
The token stays in the host: the agent never sees it. Without a sign-in a
task acts for nobody.

With --for USER the task acts for that user of the host's authorization
server instead, as the operator says (subject_source "operator"; a sign-in is
not used). Either way every decision records the user as subject, policy sees
it, and a revocation of the user (a CAEP session-revoked or
credential-change event from a Shared Signals transmitter) stops the task.`, localapi.MaxTaskInput>>20),
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case file != "" && len(args) != 1:
				return usageError{fmt.Errorf("%s --file takes AGENT only (the file holds the task), got %d argument(s)", cmd.CommandPath(), len(args))}
			case file == "" && len(args) != 2:
				return usageError{fmt.Errorf("%s takes AGENT and TASK (or - to read the task from standard input, or --file PATH), got %d argument(s)", cmd.CommandPath(), len(args))}
			case wait < 0:
				return usageError{fmt.Errorf("--wait must not be negative, got %s", wait)}
			}
			return nil
		},
		ValidArgsFunction: completeAgent(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := host.ReadRunInfo(g.dataDir)
			if err != nil {
				return err
			}
			task, err := readTask(args, file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			agent := args[0]
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			req := localapi.TaskRequest{Agent: agent, Input: task, Subject: subject}
			if subject == "" {
				// The signed-in user's own authority, if there is one.
				if req.AccessToken, err = signedInToken(ctx, g, info.Issuer); err != nil {
					return err
				}
			}
			errw := cmd.ErrOrStderr()
			st := newStatusLine(errw, agent, g.isTerminal(errw) && !quiet, quiet)
			defer st.stop()
			var final *localapi.TaskEvent
			taskID := ""
			onEvent := func(ev localapi.TaskEvent) {
				if taskID == "" && ev.TaskID != "" {
					taskID = ev.TaskID
					st.setPhase("running")
					id, trace := escapeControls(taskID), escapeControls(taskID)
					if ev.Txn != "" {
						trace = escapeControls(ev.Txn)
					}
					st.println(fmt.Sprintf("task %s (trace: %s audit trace %s)", id, g.commandPrefix(), trace))
					if ev.Txn != "" {
						st.println("txn " + trace)
					}
				}
				switch ev.Type {
				case "thought":
					st.println("· " + escapeControls(ev.Text))
				case "tool_call":
					st.println("→ " + escapeControls(ev.Tool+" "+ev.Arguments))
				case "partial":
					st.println("… " + escapeControls(ev.Text))
				case "approval":
					// The call waits for the user: said even with
					// --quiet, since the task cannot end without it.
					st.printAlways("approval needed: " + escapeControls(ev.Text))
					st.printAlways("approve at: " + escapeControls(ev.URL))
				case "final", "error":
					e := ev
					final = &e
				}
			}
			onWait := func(*localapi.AgentStateError) {
				st.println(fmt.Sprintf("waiting for agent %s to start…", escapeControls(agent)))
			}
			err = localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)).RunTaskWait(ctx,
				req, localapi.TaskWait{Timeout: wait, OnWait: onWait}, onEvent)
			st.stop()
			if errors.Is(err, localapi.ErrTokenRefused) {
				return fmt.Errorf("%w; sign in again with %s login (or sign out with %s logout)", err, g.commandPrefix(), g.commandPrefix())
			}
			if err != nil {
				return err
			}
			if final == nil {
				return errors.New("the task ended without a result")
			}
			if final.Type == "error" {
				id := final.TaskID
				if id == "" {
					id = taskID
				}
				if id == "" {
					fmt.Fprintf(errw, "the task failed: %s\n", escapeControls(final.Text))
				} else {
					fmt.Fprintf(errw, "task %s failed: %s\n", escapeControls(id), escapeControls(final.Text))
				}
				return silentExit{exitFailure}
			}
			answer := final.Text
			if !raw {
				answer = escapeControls(answer)
			}
			fmt.Fprintln(cmd.OutOrStdout(), answer)
			return nil
		},
	}
	cmd.Flags().StringVar(&subject, "for", "", "the user the task acts for (a user of the authorization server), as the operator says; overrides your sign-in")
	cmd.Flags().StringVar(&file, "file", "", "read the task from this file (instead of the TASK argument)")
	cmd.Flags().DurationVar(&wait, "wait", defaultRunWait, "how long to wait for an agent the host is still starting (0: do not wait)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the answer (and errors): no task id, events or progress on stderr")
	cmd.Flags().BoolVar(&raw, "raw", false, "write the answer byte for byte, control characters included (stderr lines stay escaped)")
	return cmd
}

// readTask returns the task: args[1], or standard input for "-", or the
// file named by --file.
func readTask(args []string, file string, stdin io.Reader) (string, error) {
	var (
		r    io.Reader
		from string
	)
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", usageError{fmt.Errorf("task file: %w", err)}
		}
		defer f.Close()
		r, from = f, file
	case args[1] == "-":
		r, from = stdin, "standard input"
	default:
		if strings.TrimSpace(args[1]) == "" {
			return "", usageError{errors.New("the task is empty")}
		}
		return args[1], nil
	}
	b, err := io.ReadAll(io.LimitReader(r, maxTaskRead+1))
	if err != nil {
		return "", fmt.Errorf("read the task from %s: %w", from, err)
	}
	switch {
	case len(b) > maxTaskRead:
		return "", usageError{fmt.Errorf("the task in %s is larger than %d MiB; the host takes tasks of up to %d MiB",
			from, maxTaskRead>>20, localapi.MaxTaskInput>>20)}
	case strings.TrimSpace(string(b)) == "":
		return "", usageError{fmt.Errorf("the task in %s is empty", from)}
	case !utf8.Valid(b):
		return "", usageError{fmt.Errorf("the task in %s is not UTF-8 text", from)}
	}
	return string(b), nil
}

// statusLine prints event lines, and on a terminal keeps a live "running …"
// line under them with the elapsed time. A quiet one prints nothing.
type statusLine struct {
	w     io.Writer
	tty   bool
	quiet bool
	agent string
	start time.Time
	done  chan struct{}
	lines chan string
	ended chan struct{}
	mu    sync.Mutex
	phase string
}

func newStatusLine(w io.Writer, agent string, tty, quiet bool) *statusLine {
	s := &statusLine{w: w, tty: tty, quiet: quiet, agent: agent, phase: "starting", start: time.Now(),
		done: make(chan struct{}), lines: make(chan string), ended: make(chan struct{})}
	go s.loop()
	return s
}

func (s *statusLine) loop() {
	defer close(s.ended)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	i := 0
	for {
		select {
		case l := <-s.lines:
			if s.tty {
				fmt.Fprint(s.w, "\r\033[K")
			}
			fmt.Fprintln(s.w, l)
		case <-tick.C:
			if s.tty {
				s.mu.Lock()
				phase := s.phase
				s.mu.Unlock()
				fmt.Fprintf(s.w, "\r\033[K%s %s %s (%.1fs)", frames[i%len(frames)], escapeControls(s.agent), phase, time.Since(s.start).Seconds())
				i++
			}
		case <-s.done:
			if s.tty {
				fmt.Fprint(s.w, "\r\033[K")
			}
			return
		}
	}
}

// setPhase sets the word the live line shows after the agent's name.
func (s *statusLine) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

func (s *statusLine) println(l string) {
	if s.quiet {
		return
	}
	s.printAlways(l)
}

// printAlways prints l above the status line, even with --quiet.
func (s *statusLine) printAlways(l string) {
	select {
	case s.lines <- l:
	case <-s.ended:
	}
}

func (s *statusLine) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	<-s.ended
}
