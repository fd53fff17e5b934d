package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/attest"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/fanout"
	"github.com/agenthost/agenthost/runtime/hosttools"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// newAgents gives each configured agent its identity, its own Workload API
// socket (usable only by that agent's plugin process), and a supervisor
// entry pinned to the binary's measured SHA-256.
func (h *Host) newAgents(ctx context.Context) error {
	h.tools = hosttools.New(hosttools.Config{Store: h.store, Now: h.now, VerifyTxnToken: h.verifyTxnToken})
	h.readOnly = map[string]bool{}
	for _, t := range hosttools.ReadOnly() {
		h.readOnly[t] = true
	}
	if err := h.addRemoteTools(h.tools); err != nil {
		return err
	}
	if err := h.addPluginTools(ctx, h.tools); err != nil {
		return err
	}
	if err := checkGrants(h.cfg.Agents, h.tools); err != nil {
		return err
	}
	quarantined, err := h.loadQuarantines(ctx)
	if err != nil {
		return err
	}
	models, err := h.newModels()
	if err != nil {
		return err
	}
	grants := mediator.AllowList{}
	agentModels := map[string]string{}
	for _, a := range h.cfg.Agents {
		model := a.Model
		if model == "" {
			model = "default"
		}
		agentModels[a.Name] = model
		grants[a.Name] = mediator.Grants{Tools: a.Tools, Models: []string{model}, Agents: a.CallAgents}
	}
	h.med, err = mediator.New(mediator.Config{
		Models:      models,
		AgentModels: agentModels,
		Tools:       h.tools,
		Policy:      gatedPolicy{grants: grants, h: h},
		Risk:        h.signals.riskOf,
		Auditor:     h.audit,
		Agents:      h.delegate,
		TxnTokens:   txnSource{h},
		Approvals:   hostApprovals{h},
		OnApproval:  h.onApproval,
		Observer:    h.mediatorObserver(),
		Now:         h.now,
		Logger:      h.log.With("component", "mediator"),
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	var specs []supervisor.AgentSpec
	paths := map[string]string{}
	for _, a := range h.cfg.Agents {
		// The launcher takes absolute paths only (no PATH lookup, no
		// dependence on the working directory later).
		path, err := filepath.Abs(a.Path)
		if err != nil {
			return fmt.Errorf("host: agent %s: %w", a.Name, err)
		}
		a.Path = path
		paths[a.Name] = path
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
		w, err := h.agentWorkload(a.Name, id)
		if err != nil {
			return err
		}
		sock := w.SocketPath
		// A quarantined agent gets no Workload API socket (no credential)
		// until it is released.
		q, isQuarantined := quarantined[a.Name]
		if !isQuarantined {
			if err := h.wl.AddWorkload(ctx, w); err != nil {
				return fmt.Errorf("host: agent %s: %w", a.Name, err)
			}
		}
		sc, _ := h.cfg.AgentSandbox(a.Name)
		policy := sandboxPolicy(sc)
		// A contained plugin sees its socket at a fixed path of its own.
		bind := sandbox.Bind{Source: sock, Target: sock}
		if policy.Contained() {
			bind.Target = workloadSocketInside
		}
		env := []string{"SPIFFE_ENDPOINT_SOCKET=unix://" + bind.Target}
		keys := make([]string, 0, len(a.Env))
		for k := range a.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+a.Env[k])
		}
		specs = append(specs, supervisor.AgentSpec{
			Name: a.Name, Path: a.Path, SHA256: digest, Env: env, Host: h.med.HostFor(a.Name),
			TaskDeadline: a.TaskTimeout, Sandbox: policy, Sockets: []sandbox.Bind{bind}, Owner: h.sandboxOwner,
			Quarantined: q.Reason,
		})
		h.agentIDs[a.Name] = id
		h.agentDigests[a.Name] = digest
	}
	h.logQuarantines(ctx, quarantined)
	sup, err := supervisor.New(supervisor.Config{
		Logger: h.log.With("component", "supervisor"),
		OnDescribe: func(agent string, d *pluginpb.DescribeResponse) {
			h.checkWants(agent, d, grants[agent])
			h.describedForA2A(agent, d)
		},
		OnStart: func(agent string, pid int, prot sandbox.Protections) {
			h.recordPluginStart("agent", agent, paths[agent], pid, prot)
		},
		OnRestart: h.telemetry.PluginRestarted,
	}, specs...)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.sup = sup
	return nil
}

// agentWorkload is the Workload API registration of an agent: its SPIFFE
// ID on a socket of its own that only its plugin process may use.
func (h *Host) agentWorkload(name string, id credentials.Identity) (workloadapi.Workload, error) {
	sid, err := workloadapi.IDFromIdentity(id)
	if err != nil {
		return workloadapi.Workload{}, fmt.Errorf("host: agent %s: %w", name, err)
	}
	return workloadapi.Workload{
		ID:         sid,
		SocketPath: filepath.Join(h.dataDir, workloadDirName, name+".sock"),
		PeerCheck:  func(p workloadapi.Peer) error { return h.checkAgentPeer(name, p) },
	}, nil
}

// agentNamed is the name of the host's agent whose identity is id, or ""
// when id is no agent of this host.
func (h *Host) agentNamed(id credentials.Identity) string {
	for name, aid := range h.agentIDs {
		if aid == id {
			return name
		}
	}
	return ""
}

// isUser reports whether name is a user of the authorization server.
func (h *Host) isUser(name string) bool {
	return slices.ContainsFunc(h.cfg.Auth.Users, func(u config.UserConfig) bool { return u.Name == name })
}

// checkWants logs the tools and models a plugin says it wants that its
// grants do not give it: those calls will be refused.
func (h *Host) checkWants(agent string, d *pluginpb.DescribeResponse, g mediator.Grants) {
	h.log.Info("agent described itself", slog.String("agent", agent), slog.String("name", d.GetName()),
		slog.String("version", d.GetVersion()), slog.Int("skills", len(d.GetSkills())))
	for _, tool := range d.GetTools() {
		if d, _ := (mediator.AllowList{agent: g}).Decide(context.Background(), mediator.Request{
			Caller: mediator.Caller{Agent: agent}, Action: mediator.ActionCallTool, Resource: tool}); !d.Allow {
			h.log.Warn("agent wants a tool it is not granted", slog.String("agent", agent), slog.String("tool", tool))
		}
	}
	for _, m := range d.GetModels() {
		if !slices.Contains(g.Models, m) {
			h.log.Warn("agent wants a model it is not granted", slog.String("agent", agent), slog.String("model", m))
		}
	}
}

// checkAgentPeer admits to an agent's Workload API socket only the
// agent's current plugin process (the process the supervisor started, which
// may be a sandbox's init) and its descendants.
func (h *Host) checkAgentPeer(name string, p workloadapi.Peer) error {
	for _, st := range h.sup.Status() {
		if st.Name == name {
			if st.PID == 0 {
				return fmt.Errorf("agent %s has no plugin process running", name)
			}
			_, ok, err := attest.DescendsFrom(p.PID, st.PID)
			if err != nil {
				return fmt.Errorf("pid %d is not known to descend from the plugin process of agent %s: %w", p.PID, name, err)
			}
			if !ok {
				return fmt.Errorf("pid %d is neither the plugin process of agent %s (pid %d) nor a descendant of it", p.PID, name, st.PID)
			}
			return h.checkPeerBinary(name, p.PID)
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
		if st.Sandbox.Level != "" {
			info.Sandbox, info.SandboxMissing = st.Sandbox.String(), st.Sandbox.Missing
		}
		if d := st.Description; d != nil {
			info.Description, info.Version = d.GetDescription(), d.GetVersion()
			for _, sk := range d.GetSkills() {
				info.Skills = append(info.Skills, sk.GetId())
			}
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

// MaxTaskEvents caps the events one task may stream; an agent that sends
// more fails the task.
const MaxTaskEvents = 10000

// ErrTaskFlood reports a task whose agent sent more than MaxTaskEvents.
var ErrTaskFlood = errors.New("host: task event flood")

// RunTask implements localapi.Backend: it runs the task on its agent and
// emits the agent's events. The task is registered with the mediator for
// its duration, so the agent's Host calls for it are accepted.
//
// A task acts for a user in one of two ways, and its audit record says
// which (subject_source): the user's own access token (req.AccessToken,
// what `agenthost login` stored), which the host verifies (taskCaller) and
// whose sub becomes the subject ("token"); or the operator naming a user
// of the authorization server (req.Subject, `agenthost run --for`;
// "operator"). The token stays here: the plugin gets the task's input
// only. Either way the request begins a transaction: the host obtains its
// Txn-Token (beginTxn), whose txn every record of the task and of the
// tasks it delegates carries.
func (h *Host) RunTask(ctx context.Context, req localapi.TaskRequest, emit func(localapi.TaskEvent) error) error {
	var (
		c   mediator.Caller
		tok *taskToken
		sub taskSubject
	)
	switch {
	case req.Subject != "" && req.AccessToken != "":
		return errors.New("host: a task names its user by subject or by access token, not both")
	case req.Subject != "":
		if !h.isUser(req.Subject) {
			return fmt.Errorf("host: %q is not a user of the authorization server", req.Subject)
		}
		c.Subject, c.SubjectSource = req.Subject, audit.SubjectSourceOperator
		sub.name = req.Subject
	case req.AccessToken != "":
		user, err := h.taskCaller(ctx, req.Agent, req.AccessToken)
		if err != nil {
			return err
		}
		c.Subject, c.SubjectSource = user.Subject, audit.SubjectSourceToken
		tok = &taskToken{jti: user.TokenID, ref: audit.TokenRef(req.AccessToken)}
		sub = taskSubject{name: user.Subject, accessToken: req.AccessToken, expires: user.ExpiresAt}
	}
	if _, ok := h.agentIDs[req.Agent]; !ok {
		return fmt.Errorf("%w: %q", supervisor.ErrUnknownAgent, req.Agent)
	}
	txn, err := h.beginTxn(ctx, req.Agent, sub)
	if err != nil {
		return err
	}
	c.Txn = txn.txn
	// Approval requests of the transaction (its delegated tasks
	// included) are surfaced on this stream.
	emit = syncEmit(emit)
	defer h.approvalSinks.add(c.Txn, emit)()
	// The user's token stays in the host while the task runs, for the
	// task's remote calls (delegation.go).
	defer h.holdUserToken(c.Txn, c.Subject, sub.accessToken)()
	return h.runTask(ctx, req.Agent, req.Input, c, tok, txn, emit)
}

// delegatedError gives a refused delegation the Host error kind the
// delegating plugin gets: a quarantined agent refuses, an unknown one is not
// found, one not running is unavailable.
func delegatedError(err error) error {
	switch {
	case errors.Is(err, supervisor.ErrQuarantined):
		return fmt.Errorf("%w: %w", pluginpb.ErrPermissionDenied, err)
	case errors.Is(err, supervisor.ErrUnknownAgent):
		return fmt.Errorf("%w: %w", pluginpb.ErrNotFound, err)
	case errors.Is(err, supervisor.ErrNotRunning):
		return fmt.Errorf("%w: %w", pluginpb.ErrUnavailable, err)
	}
	return err
}

// delegateStartWait bounds how long a delegation waits for an agent that
// is still starting.
const delegateStartWait = 30 * time.Second

// waitStarting returns once agent is no longer starting or restarting (it
// runs, failed, or is quarantined), max has passed, or ctx is done.
func (h *Host) waitStarting(ctx context.Context, agent string, max time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	_, _ = h.sup.WaitFor(ctx, agent, func(st supervisor.AgentStatus) bool {
		return localapi.AgentSettled(string(st.State))
	})
}

// ErrTaskStopped: the host stopped the task (its user was revoked, its
// agent quarantined).
var ErrTaskStopped = errors.New("host: task stopped")

// runningTask is a task in progress, for stopping it.
type runningTask struct {
	caller mediator.Caller
	cancel context.CancelCauseFunc
	// txn is the task's Txn-Token (nil: none), for the calls it makes.
	txn *taskTxn
}

// StopTasks stops every running task acting for subject, with cause as the
// reason, and returns how many it stopped.
func (h *Host) StopTasks(subject, cause string) int {
	h.taskMu.Lock()
	defer h.taskMu.Unlock()
	n := 0
	for _, t := range h.running {
		if subject != "" && t.caller.Subject == subject {
			t.cancel(fmt.Errorf("%w: %s", ErrTaskStopped, cause))
			n++
		}
	}
	return n
}

// runTask runs input on agent as a new task made as c (the subject,
// transaction and delegation chain it inherits); tok refers to the user's
// token the task was started with, if any, and txn holds the task's
// Txn-Token.
func (h *Host) runTask(ctx context.Context, agent, input string, c mediator.Caller, tok *taskToken, txn *taskTxn, emit func(localapi.TaskEvent) error) error {
	id, ok := h.agentIDs[agent]
	if !ok {
		return fmt.Errorf("%w: %q", supervisor.ErrUnknownAgent, agent)
	}
	taskID, err := newID("task-")
	if err != nil {
		return err
	}
	c.Agent, c.Identity, c.TaskID = agent, id, taskID
	c.Attestation, c.BinarySHA256 = h.attestAgent(ctx, agent)
	if c.Txn == "" {
		c.Txn = taskID
	}
	chain := c.Chain
	end, err := h.med.BeginTask(c)
	if err != nil {
		return err
	}
	defer end()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h.taskMu.Lock()
	h.running[taskID] = runningTask{caller: c, cancel: cancel, txn: txn}
	h.taskMu.Unlock()
	defer func() {
		h.taskMu.Lock()
		delete(h.running, taskID)
		h.taskMu.Unlock()
	}()
	emit = h.consoleTask(taskID, c, input, emit)
	defer func() { h.consoleTasks.End(taskID, err) }()
	h.log.InfoContext(ctx, "task started", slog.String("agent", agent), slog.String("task", taskID), slog.String("txn", c.Txn))
	events, failure := 0, ""
	err = h.sup.RunTask(ctx, agent, taskID, input, func(ev *pluginpb.RunEvent) error {
		if events++; events > MaxTaskEvents {
			// Ending the stream cancels the task on the plugin side.
			return fmt.Errorf("%w: agent %s sent more than %d events in task %s", ErrTaskFlood, agent, MaxTaskEvents, taskID)
		}
		te := localapi.TaskEvent{TaskID: taskID, Txn: c.Txn}
		switch e := ev.GetEvent().(type) {
		case *pluginpb.RunEvent_Thought:
			te.Type, te.Text = "thought", e.Thought.GetText()
		case *pluginpb.RunEvent_ToolCall:
			te.Type, te.Tool, te.Arguments = "tool_call", e.ToolCall.GetTool(), e.ToolCall.GetArgumentsJson()
		case *pluginpb.RunEvent_Partial:
			te.Type, te.Text = "partial", e.Partial.GetText()
		case *pluginpb.RunEvent_Final:
			te.Type, te.Text = "final", e.Final.GetText()
		case *pluginpb.RunEvent_Error:
			te.Type, te.Text = "error", e.Error.GetMessage()
			failure = te.Text
		default:
			return nil // an event kind this host does not know: skipped
		}
		return emit(te)
	})
	if cause := context.Cause(ctx); errors.Is(cause, ErrTaskStopped) {
		err = cause
	}
	h.log.InfoContext(ctx, "task ended", slog.String("agent", agent), slog.String("task", taskID), slog.Any("error", err))
	// The task's outcome is recorded, with the reason when it failed
	// (crash, hang, flood, refusal). A task refused because its agent is
	// quarantined is a denial: nothing of the agent ran.
	rec := mediator.Record{Time: h.now().UTC(), TaskID: taskID, Txn: c.Txn, ParentTask: c.ParentTask, Agent: agent,
		Identity: id.String(), Subject: c.Subject, SubjectSource: c.SubjectSource, Chain: chain, Action: "task.run",
		Resource: id.String(), Decision: "allow", Policy: "operator", Outcome: "ok",
		Attestation: c.Attestation, BinarySHA256: c.BinarySHA256, Reason: c.Via}
	switch {
	case len(chain) > 0:
		rec.Policy = "delegated by " + strings.Join(chain, " > ")
	case tok != nil:
		// Started on the user's verified token: the token is the
		// authority, referred to by its jti and SHA-256.
		rec.Policy, rec.TokenJTI, rec.TokenSHA256 = "token", tok.jti, tok.ref
	}
	switch {
	case errors.Is(err, supervisor.ErrQuarantined):
		rec.Decision, rec.Outcome, rec.Policy, rec.Reason = "deny", "denied", "quarantine", "quarantined"
	case err != nil:
		rec.Outcome, rec.Error = "error", err.Error()
	case failure != "":
		rec.Outcome, rec.Error = "error", failure
	}
	if aerr := h.audit.Record(context.WithoutCancel(ctx), rec); aerr != nil {
		h.log.ErrorContext(ctx, "could not record a task outcome", slog.String("task", taskID), slog.Any("error", aerr))
	}
	return err
}

// Quarantine implements localapi.Backend: the agent's plugin is stopped and
// not started again, also by a host started later on the same store, until
// the agent is released ([Host.Release]); its tasks and delegations to it
// are refused, its Workload API socket is removed (no new SVID is issued to
// it), its credentials are revoked at once (revokeWorkload), and the
// remediation is audited.
func (h *Host) Quarantine(ctx context.Context, agent, reason string) error {
	id, ok := h.agentIDs[agent]
	if !ok {
		return fmt.Errorf("%w: %q", localapi.ErrUnknownAgent, agent)
	}
	sid, err := workloadapi.IDFromIdentity(id)
	if err != nil {
		return err
	}
	// A quarantine and a release of the same agent must not interleave:
	// each leaves the supervisor, the store and the Workload API agreeing.
	h.remedyMu.Lock()
	if err := h.sup.Quarantine(agent, reason); err != nil {
		h.remedyMu.Unlock()
		return err
	}
	// Kept in the store before it is audited: a host started again keeps
	// the agent quarantined (see nsQuarantine). Should that fail, the rest
	// still happens, and the error says the quarantine lasts only until the
	// host stops.
	keepErr := h.keepQuarantine(ctx, quarantineEntry{Agent: agent, Identity: id.String(), Reason: reason,
		Cause: "operator", Since: h.now().UTC()})
	err = h.wl.RemoveWorkload(ctx, sid)
	if err == nil || errors.Is(err, workloadapi.ErrUnknownWorkload) {
		err = h.revokeWorkload(ctx, agent, id, reason)
	}
	h.remedyMu.Unlock()
	if err != nil && !errors.Is(err, workloadapi.ErrUnknownWorkload) {
		return errors.Join(fmt.Errorf("host: revoke credentials of %s: %w", agent, err), keepErr)
	}
	h.log.WarnContext(ctx, "agent quarantined", slog.String("agent", agent), slog.String("reason", reason))
	h.publish(ctx, fanout.Event{Kind: fanout.KindQuarantine, Agent: agent, Reason: reason})
	h.transmitAgentRevoked(ctx, agent, reason)
	rec := audit.Record{
		Time: h.now().UTC(), Agent: agent, AgentID: id.String(), Action: audit.ActionRemediation, Resource: id.String(),
		Remedy: audit.RemedyQuarantine, Cause: "operator", Policy: "operator", Reason: reason, Outcome: audit.OutcomeOK,
	}
	if keepErr != nil {
		rec.Outcome, rec.Error = audit.OutcomeError, keepErr.Error()
	}
	return errors.Join(keepErr, h.audit.Append(ctx, rec))
}
