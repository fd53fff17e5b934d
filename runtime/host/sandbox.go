package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
)

// workloadSocketInside is where a contained agent plugin finds its
// Workload API socket.
const workloadSocketInside = sandbox.RunDir + "/workload.sock"

// sandboxOwner tags the sandboxes of the host holding dataDir, so that the
// next host on the same data directory finds those a crashed one left.
func sandboxOwner(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "data-" + hex.EncodeToString(sum[:8])
}

// sandboxPolicy is the sandbox.Policy of an effective sandbox section.
func sandboxPolicy(c config.SandboxConfig) sandbox.Policy {
	p := sandbox.Policy{
		Level:         sandbox.LevelStrict,
		ReadOnlyPaths: append([]string(nil), c.ReadOnlyPaths...),
		Memory:        int64(c.Memory),
		Processes:     c.Processes,
		CPU:           c.CPU,
		TmpSize:       int64(c.TmpSize),
	}
	if c.Level == config.SandboxNone {
		p.Level = sandbox.LevelNone
	}
	for _, port := range c.LoopbackPorts {
		p.LoopbackPorts = append(p.LoopbackPorts, uint16(port))
	}
	return p
}

// sandboxedPlugin is one configured plugin and its effective sandbox.
type sandboxedPlugin struct {
	kind, name string // "agent" or "tool plugin"
	policy     sandbox.Policy
}

func (h *Host) sandboxedPlugins() []sandboxedPlugin {
	var out []sandboxedPlugin
	for _, a := range h.cfg.Agents {
		sc, _ := h.cfg.AgentSandbox(a.Name)
		out = append(out, sandboxedPlugin{"agent", a.Name, sandboxPolicy(sc)})
	}
	for _, p := range h.cfg.MCP.Plugins {
		sc, _ := h.cfg.PluginSandbox(p.Name)
		out = append(out, sandboxedPlugin{"tool plugin", p.Name, sandboxPolicy(sc)})
	}
	return out
}

// prepareSandboxes ends the plugin processes a crashed host left on this
// data directory, and checks before anything starts that every plugin can
// have the sandbox its config requires: a plugin at level none needs
// Options.UnsafeNoSandbox, and a strict one a kernel that gives it.
func (h *Host) prepareSandboxes() error {
	h.sandboxOwner = sandboxOwner(h.dataDir)
	n, err := sandbox.Sweep(h.sandboxOwner)
	if err != nil {
		h.log.Warn("could not look for plugin processes left by an earlier run", slog.Any("error", err))
	} else if n > 0 {
		h.log.Warn("ended plugin processes left by an earlier run of the host", slog.Int("count", n))
	}
	var strict []sandboxedPlugin
	for _, p := range h.sandboxedPlugins() {
		// The host's own listener is never one of them: a plugin reaching
		// it could present its own credentials and bypass the mediator.
		if own := h.cfg.Listen.Address.Port(); own != 0 && slices.Contains(p.policy.LoopbackPorts, own) {
			return fmt.Errorf("host: %s %s may not reach port %d on loopback: it is the host's own listener, "+
				"and every call of a plugin goes through the host", p.kind, p.name, own)
		}
		switch p.policy.Level {
		case sandbox.LevelNone:
			if !h.opts.UnsafeNoSandbox {
				return fmt.Errorf("host: %s %s has sandbox level none, which runs it uncontained; "+
					"start the host with --unsafe-no-sandbox to allow that (debugging only)", p.kind, p.name)
			}
		default:
			strict = append(strict, p)
		}
	}
	if len(strict) == 0 {
		return nil
	}
	prot, err := sandbox.Probe()
	if err != nil {
		return fmt.Errorf("host: %s %s requires sandbox level strict, which this host cannot give: %w; "+
			"to run it uncontained for debugging, set its sandbox level to none and start with --unsafe-no-sandbox",
			strict[0].kind, strict[0].name, err)
	}
	h.sandboxProt = prot
	for _, m := range prot.Missing {
		h.log.Warn("plugin sandbox: a protection is missing on this host", slog.String("missing", m))
	}
	return nil
}

// sandboxExtras describes what a policy lets a plugin reach beyond the
// minimum, for the start banner.
func sandboxExtras(p sandbox.Policy) string {
	if p.Level == sandbox.LevelNone {
		return "NOT CONTAINED (sandbox level none)"
	}
	var parts []string
	if len(p.ReadOnlyPaths) > 0 {
		parts = append(parts, "reads "+strings.Join(p.ReadOnlyPaths, ", "))
	}
	if len(p.LoopbackPorts) > 0 {
		ports := make([]string, len(p.LoopbackPorts))
		for i, port := range p.LoopbackPorts {
			ports[i] = "127.0.0.1:" + strconv.Itoa(int(port))
		}
		parts = append(parts, "connects to "+strings.Join(ports, ", "))
	}
	if len(parts) == 0 {
		return "sandboxed"
	}
	return "sandboxed; " + strings.Join(parts, "; ")
}

// recordPluginStart audits the start of a plugin process with the
// protections that contain it; an uncontained one is recorded as such.
func (h *Host) recordPluginStart(kind, name, path string, pid int, prot sandbox.Protections) {
	rec := audit.Record{
		Time:     h.now().UTC(),
		Action:   audit.ActionPluginStart,
		Resource: path,
		Decision: audit.DecisionAllow,
		Policy:   "sandbox " + string(prot.Level),
		Reason:   fmt.Sprintf("%s %s, pid %d, %s", kind, name, pid, prot),
		Outcome:  audit.OutcomeOK,
	}
	if len(prot.Missing) > 0 {
		rec.Reason += "; missing: " + strings.Join(prot.Missing, "; ")
	}
	if kind == "agent" {
		rec.Agent, rec.AgentID = name, h.agentIDs[name].String()
	}
	if prot.Level == sandbox.LevelNone {
		rec.Policy = "sandbox none (--unsafe-no-sandbox)"
		h.log.Warn("plugin started uncontained", slog.String("plugin", name), slog.Int("pid", pid))
	}
	if err := h.audit.Append(context.Background(), rec); err != nil {
		h.log.Error("could not record a plugin start", slog.String("plugin", name), slog.Any("error", err))
	}
}
