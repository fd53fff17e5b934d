package host

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/attest"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// agentHost is the Host service an agent plugin reaches. Every method
// answers codes.Unimplemented until the mediator serves them; nothing
// leaves the host on a plugin's behalf.
type agentHost struct {
	pluginpb.UnimplementedHostServer
}

// newAgents gives each configured agent its identity, its own Workload API
// socket (usable only by that agent's plugin process), and a supervisor
// entry pinned to the binary's measured SHA-256.
func (h *Host) newAgents(ctx context.Context) error {
	var specs []supervisor.AgentSpec
	for _, a := range h.cfg.Agents {
		digest, err := attest.HashFile(ctx, a.Path)
		if err != nil {
			return fmt.Errorf("host: agent %s: %w", a.Name, err)
		}
		if a.SHA256 != "" && digest != a.SHA256 {
			return fmt.Errorf("host: agent %s: %s has SHA-256 %s, the config pins %s", a.Name, a.Path, digest, a.SHA256)
		}
		id, err := credentials.AgentIdentity(h.cfg.TrustDomain, a.Name)
		if err != nil {
			return fmt.Errorf("host: agent %s: %w", a.Name, err)
		}
		sid, err := workloadapi.IDFromIdentity(id)
		if err != nil {
			return fmt.Errorf("host: agent %s: %w", a.Name, err)
		}
		sock := filepath.Join(h.dataDir, workloadDirName, a.Name+".sock")
		name := a.Name
		if err := h.wl.AddWorkload(ctx, workloadapi.Workload{
			ID:         sid,
			SocketPath: sock,
			PeerCheck:  func(p workloadapi.Peer) error { return h.checkAgentPeer(name, p) },
		}); err != nil {
			return fmt.Errorf("host: agent %s: %w", a.Name, err)
		}
		env := []string{"SPIFFE_ENDPOINT_SOCKET=unix://" + sock}
		keys := make([]string, 0, len(a.Env))
		for k := range a.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+a.Env[k])
		}
		specs = append(specs, supervisor.AgentSpec{
			Name: a.Name, Path: a.Path, SHA256: digest, Env: env, Host: &agentHost{},
		})
		h.agentIDs[a.Name] = id
	}
	sup, err := supervisor.New(supervisor.Config{Logger: h.log.With("component", "supervisor")}, specs...)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.sup = sup
	return nil
}

// checkAgentPeer admits to an agent's Workload API socket only the
// agent's current plugin process.
func (h *Host) checkAgentPeer(name string, p workloadapi.Peer) error {
	for _, st := range h.sup.Status() {
		if st.Name == name {
			if st.PID == 0 || st.PID != p.PID {
				return fmt.Errorf("pid %d is not the plugin process of agent %s", p.PID, name)
			}
			return nil
		}
	}
	return fmt.Errorf("agent %s is not supervised", name)
}

// Agents implements localapi.Backend.
func (h *Host) Agents(context.Context) []localapi.AgentInfo {
	var out []localapi.AgentInfo
	for _, st := range h.sup.Status() {
		id := h.agentIDs[st.Name]
		info := localapi.AgentInfo{
			Name: st.Name, Identity: id.String(), State: string(st.State), PID: st.PID,
			Restarts: st.Restarts, LastError: st.LastError, Since: st.Since,
		}
		if sid, err := workloadapi.IDFromIdentity(id); err == nil {
			if exp, ok := h.wl.X509SVIDExpiry(sid); ok {
				exp = exp.UTC()
				info.SVIDExpiresAt = &exp
			}
		}
		out = append(out, info)
	}
	return out
}

// RunTask runs a task on a configured agent and calls onEvent for each
// event the agent streams.
func (h *Host) RunTask(ctx context.Context, agent, taskID, input string, onEvent func(*pluginpb.RunEvent) error) error {
	return h.sup.RunTask(ctx, agent, taskID, input, onEvent)
}
