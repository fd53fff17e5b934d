package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
)

func newUpCommand(g *globalFlags) *cobra.Command {
	var (
		configPath, listen string
		unsafeNoSandbox    bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the host",
		Long: `up loads the config, creates or loads the trust domain and every store in the
data directory, and serves until SIGINT or SIGTERM, then shuts down cleanly.

On a terminal, a live line under the log shows the host starting and then
its agents starting, until every agent runs (or failed, or is quarantined);
in a pipe or a file there is only the log.

--listen ADDR (host:port) listens on ADDR instead of the config's
listen.address, so that several hosts run from one config file on one
machine, each on its own --data-dir; for example two hosts sharing one
PostgreSQL database (storage.driver postgres):

  agenthost up --config x.yaml --data-dir ./host-a
  agenthost up --config x.yaml --data-dir ./host-b --listen 127.0.0.1:8422

ADDR is checked as the file's address would be (one that is not loopback
needs listen.tls), and when the file sets no listen.issuer the issuer
follows ADDR.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, configPath, listen)
			if err != nil {
				return reportConfigError(cmd.ErrOrStderr(), err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// The live line is on stderr, under the log; the banner on
			// stdout goes above it too when both are the terminal.
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			p := newProgress(stderr, g.isTerminal(stderr), "starting the host")
			defer p.stop()
			hostOut := stdout
			if g.isTerminal(stdout) {
				hostOut = p.writer(stdout)
			}
			h, err := host.New(ctx, host.Options{
				Config:          cfg,
				DataDir:         g.dataDir,
				Version:         version,
				Stdout:          hostOut,
				Stderr:          p.writer(stderr),
				UnsafeNoSandbox: unsafeNoSandbox,
			})
			if err != nil {
				return err
			}
			if p.on {
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				go watchAgents(wctx, p, stderr, h.Readiness)
			}
			if err := h.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", defaultConfigFile, "config file")
	addListenFlag(cmd, &listen)
	cmd.Flags().BoolVar(&unsafeNoSandbox, "unsafe-no-sandbox", false,
		"allow plugins whose sandbox level is none to start uncontained (debugging only; audited)")
	return cmd
}

// watchAgents shows on p how many of the host's agents run, until every
// agent has started (or failed, or is quarantined) or ctx ends. It then
// removes the line and, if there are agents, writes one line to w saying
// how long they took.
func watchAgents(ctx context.Context, p *progress, w io.Writer, readiness func() host.Readiness) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		rd := readiness()
		if rd.Ready() {
			p.stop()
			if rd.Agents > 0 {
				fmt.Fprintf(p.writer(w), "ready after %.1fs: %s\n", p.elapsed().Seconds(), agentCounts(rd))
			}
			return
		}
		p.set(startingText(rd))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// agentCounts is "2 of 3 agents running" and how many will not run.
func agentCounts(rd host.Readiness) string {
	s := fmt.Sprintf("%d of %d agents running", rd.Running, rd.Agents)
	if rd.Down > 0 {
		s += fmt.Sprintf(", %d failed or quarantined (see agenthost agents)", rd.Down)
	}
	return s
}

// startingText is what the live line of up says while agents start.
func startingText(rd host.Readiness) string {
	waiting := make([]string, 0, len(rd.Starting))
	for _, a := range rd.Starting {
		waiting = append(waiting, a.Agent+" ("+a.State+")")
	}
	s := agentCounts(rd)
	if len(waiting) > 0 {
		s += "; waiting for " + strings.Join(waiting, ", ")
	}
	return s
}
