package mediator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/llm"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// Actions, as policy and audit name them.
const (
	ActionComplete  = "llm.complete"
	ActionListTools = "tool.list"
	ActionCallTool  = "tool.call"
	ActionCallAgent = "agent.call"
)

// Caller is who makes a Host call: derived from the plugin connection and
// the host's own task table, never from the request.
type Caller struct {
	Agent    string
	Identity credentials.Identity
	TaskID   string
	// Chain lists the agents that delegated to this task, outermost first.
	Chain []string
	// Subject is the user the call is made for, when the host knows one
	// (an MCP client's token subject).
	Subject string
	// SubjectSource says how the host learned the subject of a task:
	// "token" (the user's own access token, verified) or "operator"
	// (named by the operator); a delegated task keeps its parent's.
	SubjectSource string
	// ClientID is the OAuth client of an MCP caller.
	ClientID string
	// Scopes are the OAuth scopes an MCP caller's token carries.
	Scopes []string
	// Txn is the transaction the call belongs to: the txn of the Txn-Token
	// the host obtained where the transaction began (the user's or
	// operator's request), shared by every task delegated from it; the
	// task's own id when the task has no Txn-Token.
	Txn string
	// ParentTask is the task that delegated this one, if any.
	ParentTask string
	// Attestation is the state of the caller's attestation: "verified"
	// for a plugin whose running process was measured and matched its
	// pinned binary digest, "unverified" when it could not be, "" for a
	// caller that is no plugin.
	Attestation string
	// BinarySHA256 is the measured SHA-256 of the caller's running
	// executable (hex), when it was measured.
	BinarySHA256 string
	// Via says how a task reached the host when it came over a protocol
	// (A2A: the calling client and the workload proof verified), for the
	// task's record.
	Via string
}

// MaxDelegationDepth bounds agent → agent delegation chains.
const MaxDelegationDepth = 4

// AgentRunner runs a task on another agent for a delegating caller and
// returns its final output. The new task carries parent's subject and
// transaction, and parent's chain followed by parent's agent; its own
// Txn-Token, minted for the delegation, is in ctx ([TxnTokenFromContext]).
type AgentRunner func(ctx context.Context, agent, input string, parent Caller) (output string, err error)

// Request is what policy decides on.
type Request struct {
	Caller   Caller
	Action   string
	Resource string
	// Args are a tool call's arguments (a JSON object), for policy to
	// read; nil for other actions.
	Args json.RawMessage
}

// Decision is a policy outcome.
type Decision struct {
	Allow bool
	// ApprovalRequired (with Allow false) says the call may be made only
	// once the subject approves it; it is recorded as approval_required.
	ApprovalRequired bool
	Reason           string
	// Policy names the rule or policy set that decided.
	Policy string
	// NotGranted (with Allow false) says the caller's grants do not name
	// the resource at all. A tool the grants name but a policy forbids is
	// hidden from the caller's tool list, and that is audited; a tool
	// outside the grants was never the caller's, and is left out silently.
	NotGranted bool
}

// Policy decides whether a caller may perform an action on a resource.
type Policy interface {
	Decide(ctx context.Context, r Request) (Decision, error)
}

// Record is one audited decision and its outcome. It never holds a token
// or a tool's arguments in clear: ArgsSHA256 is their digest.
type Record struct {
	Time       time.Time `json:"time"`
	TaskID     string    `json:"task_id"`
	Txn        string    `json:"txn,omitempty"`
	ParentTask string    `json:"parent_task,omitempty"`
	Agent      string    `json:"agent"`
	Identity   string    `json:"identity"`
	Subject    string    `json:"subject,omitempty"`
	// SubjectSource is the task's Caller.SubjectSource, on a task's
	// record.
	SubjectSource string   `json:"subject_source,omitempty"`
	Chain         []string `json:"chain,omitempty"`
	Action        string   `json:"action"`
	Resource      string   `json:"resource"`
	ArgsSHA256    string   `json:"args_sha256,omitempty"`
	Decision      string   `json:"decision"` // allow | deny
	Policy        string   `json:"policy"`
	Reason        string   `json:"reason,omitempty"`
	Outcome       string   `json:"outcome"` // ok | error | denied
	Error         string   `json:"error,omitempty"`
	// TokenSHA256 and TokenJTI refer to the access token a call was made
	// with; the token itself is never recorded.
	TokenSHA256 string `json:"token_sha256,omitempty"`
	TokenJTI    string `json:"token_jti,omitempty"`
	// Attestation and Risk are the caller's states when decided, and
	// BinarySHA256 the caller's measured executable digest.
	Attestation  string `json:"attestation,omitempty"`
	BinarySHA256 string `json:"binary_sha256,omitempty"`
	Risk         string `json:"risk,omitempty"`
	// ApprovalID names the CIBA approval a call needed (the SHA-256 of
	// its auth_req_id), and Approver the user who approved it.
	ApprovalID string `json:"approval_id,omitempty"`
	Approver   string `json:"approver,omitempty"`
}

// Auditor records decisions. Record must be durable when it returns.
type Auditor interface {
	Record(ctx context.Context, r Record) error
}

// Queuer is an Auditor that can also take a record without waiting for it
// to be durable (the record follows every record taken before it). The
// outcome of an allowed call is queued when the Auditor is a Queuer: its
// decision is already durable, so a crash can lose what became of the
// call, never that it was allowed to run.
type Queuer interface {
	Queue(ctx context.Context, r Record) error
}

// ToolResult is what a tool returns.
type ToolResult struct {
	Text    string
	IsError bool
}

// Tool is a tool the host implements. Call receives the verified caller and
// the arguments; it never receives an access token. Its ctx carries the
// call's Txn-Token ([TxnTokenFromContext]), whose tctx binds the tool and
// the arguments, for a tool that checks its calls ([CheckTxnToken]).
type Tool interface {
	Definition() llm.Tool
	Call(ctx context.Context, c Caller, args json.RawMessage) (ToolResult, error)
}

// Config configures [New].
type Config struct {
	// Models by alias; Complete with an empty model uses the agent's
	// default (AgentModels) or "default".
	Models map[string]llm.Model
	// AgentModels maps an agent to its default model alias.
	AgentModels map[string]string
	// Tools by name ("server/tool").
	Tools   map[string]Tool
	Policy  Policy
	Auditor Auditor
	// Agents runs delegated tasks; nil refuses CallAgent.
	Agents AgentRunner
	// Tokens acquires tokens for remote tools; nil refuses them.
	Tokens TokenSource
	// TxnTokens mints the Txn-Token each call into a host tool, a tool
	// plugin or a delegated task carries; nil mints none (a tool that
	// checks its calls then refuses them).
	TxnTokens TxnTokenSource
	Now       func() time.Time
	Logger    *slog.Logger
	// Risk, when set, gives the risk level of a subject at decision time,
	// for the audit record.
	Risk func(subject string) string
	// Approvals asks the task's user to approve a tool call that policy
	// says needs approval (CIBA, through the authorization server); nil
	// refuses such calls.
	Approvals Approvals
	// OnApproval, when set, is told of each approval request once the
	// server accepted it, to surface it to the user (the task's event
	// stream). It must not block.
	OnApproval func(ctx context.Context, c Caller, p PendingApproval)
	// Observer, when set, is told of every Host call and policy
	// evaluation (observe.go); nil observes nothing.
	Observer Observer
}

// Mediator routes and guards Host calls.
type Mediator struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	tasks map[string]Caller // running tasks by id
}

// New returns a mediator. Policy and Auditor are required: there is no
// unguarded or unaudited path.
func New(cfg Config) (*Mediator, error) {
	if cfg.Policy == nil || cfg.Auditor == nil {
		return nil, errors.New("mediator: policy and auditor are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Mediator{cfg: cfg, log: cfg.Logger, tasks: map[string]Caller{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// BeginTask registers a task the host starts: Host calls naming c.TaskID
// are accepted only from c.Agent's plugin until the returned end function
// is called, and are made as c. An empty Txn is the task's own id.
func (m *Mediator) BeginTask(c Caller) (end func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	taskID := c.TaskID
	if taskID == "" || c.Agent == "" {
		return nil, errors.New("mediator: a task needs an id and an agent")
	}
	if _, dup := m.tasks[taskID]; dup {
		return nil, fmt.Errorf("mediator: task %s is already running", taskID)
	}
	c.Chain = append([]string(nil), c.Chain...)
	if c.Txn == "" {
		c.Txn = taskID
	}
	m.tasks[taskID] = c
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.tasks, taskID)
	}, nil
}

// HostFor returns the Host service for one agent's plugin connection.
func (m *Mediator) HostFor(agent string) pluginpb.HostServer {
	h := &hostServer{m: m, agent: agent}
	if m.cfg.Observer != nil {
		return observedHost{HostServer: h, h: h}
	}
	return h
}

type hostServer struct {
	pluginpb.UnimplementedHostServer
	m     *Mediator
	agent string
}

var _ pluginpb.HostServer = (*hostServer)(nil)

// who resolves the caller of a Host call: the task must be running and
// belong to this connection's agent.
func (h *hostServer) who(taskID string) (Caller, error) {
	h.m.mu.Lock()
	c, ok := h.m.tasks[taskID]
	h.m.mu.Unlock()
	if !ok || c.Agent != h.agent {
		return Caller{}, fmt.Errorf("%w: task %q is not a running task of agent %s", pluginpb.ErrPermissionDenied, taskID, h.agent)
	}
	return c, nil
}

// guard runs the who/decide steps and returns a function that audits the
// outcome. On denial it audits and returns the gRPC error.
func (h *hostServer) guard(ctx context.Context, taskID, action, resource string, args []byte) (Caller, func(error), error) {
	c, err := h.who(taskID)
	if err != nil {
		h.m.noteCall(ctx, Caller{Agent: h.agent, TaskID: taskID}, resource, DecisionDeny)
		h.m.audit(ctx, Record{TaskID: taskID, Agent: h.agent, Action: action, Resource: resource,
			Decision: "deny", Policy: "task-ownership", Reason: "task not owned by caller", Outcome: "denied"}, args)
		return Caller{}, nil, err
	}
	req := Request{Caller: c, Action: action, Resource: resource}
	if action == ActionCallTool {
		req.Args = args
	}
	d := h.m.decide(ctx, req)
	h.m.noteCall(ctx, c, resource, decisionOf(d))
	base := h.m.record(c, action, resource, d)
	if !d.Allow && d.ApprovalRequired && action == ActionCallTool && h.m.cfg.Approvals != nil {
		// Approve step: the call runs only with an approval the
		// authorization server granted for exactly it.
		if base, err = h.m.approve(ctx, c, base, resource, args); err != nil {
			return Caller{}, nil, err
		}
		d.Allow = true
	}
	if !d.Allow {
		if err := h.m.audit(ctx, base, args); err != nil {
			h.m.noteDecision(ctx, DecisionError)
			return Caller{}, nil, fmt.Errorf("%w: audit unavailable; call refused", pluginpb.ErrUnavailable)
		}
		return Caller{}, nil, fmt.Errorf("%w: %s on %s denied: %s", pluginpb.ErrPermissionDenied, action, resource, d.Reason)
	}
	record, err := RecordAllowed(ctx, h.m.cfg.Auditor, h.m.cfg.Now, base, args)
	if err != nil {
		h.m.log.ErrorContext(ctx, "audit record failed", slog.Any("error", err))
		h.m.noteDecision(ctx, DecisionError)
		return Caller{}, nil, fmt.Errorf("%w: audit unavailable; call refused", pluginpb.ErrUnavailable)
	}
	done := func(callErr error) {
		if err := record(callErr); err != nil {
			h.m.log.ErrorContext(ctx, "audit record failed", slog.Any("error", err))
		}
	}
	return c, done, nil
}

// RecordAllowed is the order of every mediated call, for the mediator's own
// Host calls and for any other path that runs a call for a caller (the
// hosted MCP servers): it makes the allow decision base durable, with its
// outcome not known yet, and returns the function that records the outcome
// once the call has run. An error means the decision is not recorded: the
// call must not run, so no effect is ever left without its record. The
// outcome is recorded even if ctx has ended by then; an Auditor that is a
// [Queuer] takes it without the caller waiting for its commit, so a call
// costs one durable write, not two.
func RecordAllowed(ctx context.Context, a Auditor, now func() time.Time, base Record, args []byte) (outcome func(error) error, err error) {
	base.Decision, base.Outcome = "allow", ""
	if len(args) > 0 {
		base.ArgsSHA256 = argsSHA256(args)
	}
	decided := base
	decided.Time = now().UTC()
	if err := a.Record(ctx, decided); err != nil {
		return nil, err
	}
	return func(callErr error) error {
		r := base
		r.Time, r.Outcome = now().UTC(), "ok"
		if callErr != nil {
			r.Outcome, r.Error = "error", callErr.Error()
		}
		if q, ok := a.(Queuer); ok {
			return q.Queue(context.WithoutCancel(ctx), r)
		}
		return a.Record(context.WithoutCancel(ctx), r)
	}, nil
}

// argsSHA256 is a record's ArgsSHA256: the hex SHA-256 of args as
// received.
func argsSHA256(args []byte) string {
	sum := sha256.Sum256(args)
	return hex.EncodeToString(sum[:])
}

// decide asks the policy; a failed evaluation is a denial.
func (m *Mediator) decide(ctx context.Context, r Request) Decision {
	began := m.policyBegins()
	d, err := m.cfg.Policy.Decide(ctx, r)
	m.policyEvaluated(ctx, r.Action, began)
	if err != nil {
		m.log.ErrorContext(ctx, "policy evaluation failed", slog.Any("error", err))
		return Decision{Allow: false, Reason: "policy evaluation failed", Policy: policyError}
	}
	return d
}

// record is the audit record of decision d on c's action; a denial has its
// outcome (denied), an allowed call's outcome is set when known.
func (m *Mediator) record(c Caller, action, resource string, d Decision) Record {
	r := Record{TaskID: c.TaskID, Txn: c.Txn, ParentTask: c.ParentTask, Agent: c.Agent, Identity: c.Identity.String(),
		Subject: c.Subject, Chain: c.Chain, Action: action, Resource: resource, Policy: d.Policy, Reason: d.Reason,
		Attestation: c.Attestation, BinarySHA256: c.BinarySHA256}
	if m.cfg.Risk != nil {
		r.Risk = m.cfg.Risk(c.Subject)
	}
	if !d.Allow {
		r.Decision, r.Outcome = "deny", "denied"
		if d.ApprovalRequired {
			r.Decision = "approval_required"
		}
	}
	return r
}

func (m *Mediator) audit(ctx context.Context, r Record, args []byte) error {
	r.Time = m.cfg.Now().UTC()
	if len(args) > 0 {
		r.ArgsSHA256 = argsSHA256(args)
	}
	if err := m.cfg.Auditor.Record(ctx, r); err != nil {
		m.log.ErrorContext(ctx, "audit record failed", slog.Any("error", err))
		return err
	}
	return nil
}

func (h *hostServer) ListTools(ctx context.Context, req *pluginpb.ListToolsRequest) (*pluginpb.ListToolsResponse, error) {
	c, done, err := h.guard(ctx, req.GetTaskId(), ActionListTools, "*", nil)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(h.m.cfg.Tools))
	for n := range h.m.cfg.Tools {
		names = append(names, n)
	}
	sort.Strings(names)
	resp := &pluginpb.ListToolsResponse{}
	for _, n := range names {
		// Only the tools this caller may call are listed. A granted tool
		// that policy forbids is hidden, and each one hidden is a record
		// of its own: action tool.list, the tool as resource, the decision
		// that hid it.
		d := h.m.decide(ctx, Request{Caller: c, Action: ActionCallTool, Resource: n})
		if d.NotGranted {
			continue
		}
		if !d.Allow {
			r := h.m.record(c, ActionListTools, n, d)
			r.Reason = strings.TrimSpace("hidden from the tool list: " + d.Reason)
			if err := h.m.audit(ctx, r, nil); err != nil {
				err = fmt.Errorf("%w: audit unavailable; tool list refused", pluginpb.ErrUnavailable)
				done(err)
				return nil, err
			}
			continue
		}
		def := h.m.cfg.Tools[n].Definition()
		resp.Tools = append(resp.Tools, &pluginpb.ToolDefinition{Name: n, Description: def.Description, InputSchemaJson: string(def.Parameters)})
	}
	done(nil)
	return resp, nil
}

func (h *hostServer) CallTool(ctx context.Context, req *pluginpb.CallToolRequest) (*pluginpb.CallToolResponse, error) {
	args := []byte(req.GetArgumentsJson())
	if len(args) == 0 {
		args = []byte("{}")
	}
	if !json.Valid(args) {
		return nil, fmt.Errorf("%w: arguments_json is not valid JSON", pluginpb.ErrInvalidArgument)
	}
	c, done, err := h.guard(ctx, req.GetTaskId(), ActionCallTool, req.GetTool(), args)
	if err != nil {
		return nil, err
	}
	tool, ok := h.m.cfg.Tools[req.GetTool()]
	if !ok {
		err := fmt.Errorf("%w: no tool %q", pluginpb.ErrNotFound, req.GetTool())
		done(err)
		return nil, err
	}
	var res ToolResult
	if rt, remote := tool.(RemoteTool); remote {
		res, err = h.m.callRemote(ctx, c, rt, args)
	} else {
		// The call's Txn-Token is minted when the tool takes it.
		mint := func() (string, error) { return h.m.callTxnToken(ctx, c, req.GetTool(), tool, args) }
		res, err = tool.Call(WithTxnTokenFunc(ctx, mint), c, args)
	}
	done(err)
	if err != nil {
		return nil, fmt.Errorf("mediator: tool %s: %w", req.GetTool(), err)
	}
	return &pluginpb.CallToolResponse{Content: []*pluginpb.Content{{Text: res.Text, MimeType: "text/plain"}}, IsError: res.IsError}, nil
}

func (h *hostServer) CallAgent(ctx context.Context, req *pluginpb.CallAgentRequest) (*pluginpb.CallAgentResponse, error) {
	if req.GetAgent() == "" || req.GetInput() == "" {
		return nil, fmt.Errorf("%w: agent and input are required", pluginpb.ErrInvalidArgument)
	}
	c, done, err := h.guard(ctx, req.GetTaskId(), ActionCallAgent, req.GetAgent(), []byte(req.GetInput()))
	if err != nil {
		return nil, err
	}
	chain := append(append([]string(nil), c.Chain...), c.Agent)
	switch {
	case h.m.cfg.Agents == nil:
		err = fmt.Errorf("%w: delegation is not available", pluginpb.ErrUnimplemented)
	case len(chain) >= MaxDelegationDepth:
		err = fmt.Errorf("%w: delegation chain %v is at its limit of %d", pluginpb.ErrPermissionDenied, chain, MaxDelegationDepth)
	case contains(chain, req.GetAgent()):
		err = fmt.Errorf("%w: delegation to %s would loop (chain %v)", pluginpb.ErrPermissionDenied, req.GetAgent(), chain)
	}
	if err != nil {
		done(err)
		return nil, err
	}
	// The delegated task runs on a Txn-Token of its own: a replacement
	// of this task's, in the same transaction, naming this agent as the
	// requesting workload.
	var tok string
	if h.m.cfg.TxnTokens != nil {
		if tok, err = h.m.cfg.TxnTokens.TxnToken(ctx, c, txntoken.Object{}, TxnRequestContext(c)); err != nil {
			err = fmt.Errorf("%w: no Txn-Token for the delegated task: %v", pluginpb.ErrUnavailable, err)
			done(err)
			return nil, err
		}
	}
	out, err := h.m.cfg.Agents(WithTxnToken(ctx, tok), req.GetAgent(), req.GetInput(), c)
	done(err)
	if err != nil {
		// A delegation that failed or was refused reaches the calling
		// agent as an error, never as an answer it might relay.
		return nil, delegationError(req.GetAgent(), err)
	}
	return &pluginpb.CallAgentResponse{State: "completed", Output: out}, nil
}

// delegationError is the error the delegating plugin gets when the task it
// delegated to agent did not complete: err as is when it carries a Host
// error kind (refused, not found, …), else unavailable with the reason.
func delegationError(agent string, err error) error {
	for _, kind := range []error{pluginpb.ErrPermissionDenied, pluginpb.ErrNotFound, pluginpb.ErrInvalidArgument,
		pluginpb.ErrUnavailable, pluginpb.ErrUnimplemented} {
		if errors.Is(err, kind) {
			return fmt.Errorf("mediator: delegation to %s: %w", agent, err)
		}
	}
	return fmt.Errorf("%w: the task delegated to %s failed: %v", pluginpb.ErrUnavailable, agent, err)
}

// callRemote is the token step: acquire a token for the remote tool's
// resource, for this caller, and make the call with it.
func (m *Mediator) callRemote(ctx context.Context, c Caller, rt RemoteTool, args json.RawMessage) (ToolResult, error) {
	if m.cfg.Tokens == nil {
		return ToolResult{}, fmt.Errorf("%w: no token source for remote resource %s", pluginpb.ErrUnavailable, rt.Resource())
	}
	tok, err := m.cfg.Tokens.Token(ctx, c, rt.Resource())
	if err != nil {
		return ToolResult{}, fmt.Errorf("%w: token for %s: %v", pluginpb.ErrUnavailable, rt.Resource(), err)
	}
	return rt.CallWithToken(ctx, c, tok, args)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (h *hostServer) Complete(ctx context.Context, req *pluginpb.CompleteRequest) (*pluginpb.CompleteResponse, error) {
	alias := req.GetModel()
	if alias == "" {
		alias = h.m.cfg.AgentModels[h.agent]
	}
	if alias == "" {
		alias = "default"
	}
	lreq, err := toLLMRequest(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", pluginpb.ErrInvalidArgument, err)
	}
	raw, _ := json.Marshal(lreq)
	_, done, err := h.guard(ctx, req.GetTaskId(), ActionComplete, "model:"+alias, raw)
	if err != nil {
		return nil, err
	}
	model, ok := h.m.cfg.Models[alias]
	if !ok {
		err := fmt.Errorf("%w: no model %q", pluginpb.ErrNotFound, alias)
		done(err)
		return nil, err
	}
	resp, err := model.Complete(ctx, lreq)
	done(err)
	if err != nil {
		var apiErr *llm.APIError
		if errors.As(err, &apiErr) {
			return nil, fmt.Errorf("%w: model %s: %s", pluginpb.ErrUnavailable, alias, apiErr.Message)
		}
		return nil, fmt.Errorf("mediator: model %s: %w", alias, err)
	}
	return fromLLMResponse(resp), nil
}

func toLLMRequest(req *pluginpb.CompleteRequest) (*llm.Request, error) {
	out := &llm.Request{MaxTokens: int(req.GetMaxTokens())}
	for _, m := range req.GetMessages() {
		msg := llm.Message{Content: m.GetText(), ToolCallID: m.GetToolCallId()}
		switch m.GetRole() {
		case pluginpb.Role_ROLE_SYSTEM:
			msg.Role = llm.RoleSystem
		case pluginpb.Role_ROLE_USER:
			msg.Role = llm.RoleUser
		case pluginpb.Role_ROLE_ASSISTANT:
			msg.Role = llm.RoleAssistant
		case pluginpb.Role_ROLE_TOOL:
			msg.Role = llm.RoleTool
		default:
			return nil, fmt.Errorf("message with role %v", m.GetRole())
		}
		for _, tc := range m.GetToolCalls() {
			args := tc.GetArgumentsJson()
			if strings.TrimSpace(args) == "" {
				args = "{}"
			}
			if !json.Valid([]byte(args)) {
				return nil, fmt.Errorf("tool call %s has invalid JSON arguments", tc.GetId())
			}
			msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: tc.GetId(), Name: tc.GetName(), Arguments: json.RawMessage(args)})
		}
		out.Messages = append(out.Messages, msg)
	}
	for _, t := range req.GetTools() {
		schema := t.GetInputSchemaJson()
		if schema == "" {
			schema = `{"type":"object"}`
		}
		if !json.Valid([]byte(schema)) {
			return nil, fmt.Errorf("tool %s has an invalid JSON schema", t.GetName())
		}
		out.Tools = append(out.Tools, llm.Tool{Name: t.GetName(), Description: t.GetDescription(), Parameters: json.RawMessage(schema)})
	}
	if len(out.Messages) == 0 {
		return nil, errors.New("no messages")
	}
	return out, nil
}

func fromLLMResponse(r *llm.Response) *pluginpb.CompleteResponse {
	msg := &pluginpb.Message{Role: pluginpb.Role_ROLE_ASSISTANT, Text: r.Message.Content}
	for _, tc := range r.Message.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, &pluginpb.ToolCall{Id: tc.ID, Name: tc.Name, ArgumentsJson: string(tc.Arguments)})
	}
	return &pluginpb.CompleteResponse{
		Message:    msg,
		StopReason: string(r.StopReason),
		Usage:      &pluginpb.Usage{InputTokens: uint32(r.Usage.InputTokens), OutputTokens: uint32(r.Usage.OutputTokens)},
	}
}
