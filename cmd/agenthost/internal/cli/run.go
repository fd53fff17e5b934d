package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

func newRunCommand(g *globalFlags) *cobra.Command {
	var subject string
	cmd := &cobra.Command{
		Use:   "run AGENT TASK",
		Short: "Send a task to an agent of the running host and stream its events",
		Long: `run sends TASK to AGENT on the host running on --data-dir and streams what the
agent does: its thoughts and tool calls on stderr, the final answer on stdout.
It exits 0 when the agent answers and 1 when the task fails.

With --for USER the task acts for that user of the host's authorization
server: every decision records the user as subject, policy sees it, and a
revocation of the user (agenthost signals, or a CAEP event) stops the task.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("%s takes AGENT and TASK, got %d argument(s)", cmd.CommandPath(), len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := host.ReadRunInfo(g.dataDir); err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			st := newStatusLine(cmd.ErrOrStderr(), args[0])
			defer st.stop()
			var final *localapi.TaskEvent
			err := localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)).RunTask(ctx, localapi.TaskRequest{Agent: args[0], Input: args[1], Subject: subject}, func(ev localapi.TaskEvent) {
				switch ev.Type {
				case "thought":
					st.println("· " + ev.Text)
				case "tool_call":
					st.println("→ " + ev.Tool + " " + ev.Arguments)
				case "partial":
					st.println("… " + ev.Text)
				case "final", "error":
					e := ev
					final = &e
				}
			})
			st.stop()
			if err != nil {
				return err
			}
			if final == nil {
				return errors.New("the task ended without a result")
			}
			if final.Type == "error" {
				fmt.Fprintf(cmd.ErrOrStderr(), "task %s failed: %s\n", final.TaskID, final.Text)
				return silentExit{exitFailure}
			}
			fmt.Fprintln(cmd.OutOrStdout(), final.Text)
			return nil
		},
	}
	cmd.Flags().StringVar(&subject, "for", "", "the user the task acts for (a user of the authorization server)")
	return cmd
}

// statusLine prints events, and on a terminal keeps a live "running …"
// line under them with the elapsed time.
type statusLine struct {
	w     io.Writer
	tty   bool
	agent string
	start time.Time
	done  chan struct{}
	lines chan string
	ended chan struct{}
}

func newStatusLine(w io.Writer, agent string) *statusLine {
	s := &statusLine{w: w, agent: agent, start: time.Now(), done: make(chan struct{}), lines: make(chan string), ended: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			s.tty = true
		}
	}
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
				fmt.Fprintf(s.w, "\r\033[K%s %s running (%.1fs)", frames[i%len(frames)], s.agent, time.Since(s.start).Seconds())
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

func (s *statusLine) println(l string) {
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
