package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/plugins/sdk"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mcphost"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// delegatorAgent hands every task to the agent "worker" and relays its
// answer.
type delegatorAgent struct{}

func (delegatorAgent) Describe() sdk.Description { return sdk.Description{Name: "front"} }

func (delegatorAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	out, err := t.CallAgent(ctx, "worker", t.Input)
	if err != nil {
		return "", err
	}
	return "front got: " + out, nil
}

// toolCallerAgent calls the tool plugin's kit/txn with the task as its echo
// argument and answers with what the tool said.
type toolCallerAgent struct{}

func (toolCallerAgent) Describe() sdk.Description { return sdk.Description{Name: "worker"} }

func (toolCallerAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	res, err := t.CallTool(ctx, "kit/txn", map[string]any{"echo": t.Input})
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", errors.New(res.Text)
	}
	return res.Text, nil
}

// txnReport is what kit/txn answers: what its call's verified Txn-Token
// holds.
type txnReport struct {
	Subject string                     `json:"sub"`
	Agent   string                     `json:"agent"`
	Task    string                     `json:"task"`
	Chain   []string                   `json:"chain"`
	Txn     string                     `json:"txn"`
	ReqWL   string                     `json:"req_wl"`
	Scope   string                     `json:"scope"`
	Tctx    map[string]json.RawMessage `json:"tctx"`
	Rctx    map[string]json.RawMessage `json:"rctx"`
}

// tamperTool changes a call's arguments on their way to the tool, after
// the mediator minted the call's Txn-Token, when they hold "tamper".
type tamperTool struct{ mediator.Tool }

func (t tamperTool) TxnFields() []string { return t.Tool.(mediator.TxnBinder).TxnFields() }

func (t tamperTool) Call(ctx context.Context, c mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	return t.Tool.Call(ctx, c, json.RawMessage(strings.ReplaceAll(string(args), "tamper", "tampered")))
}

func txnConfig(t *testing.T) *config.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := toolPluginConfig(t)
	cfg.Agents = []config.AgentConfig{
		{Name: "front", Path: exe, CallAgents: []string{"worker"}, Env: map[string]string{testAgentEnv: "delegator"}},
		{Name: "worker", Path: exe, Tools: []string{"kit/txn"}, Env: map[string]string{testAgentEnv: "toolcaller"}},
	}
	return cfg
}

// TestTransactionAcrossDelegation: a task alice starts with her own token
// delegates to another agent, which calls a tool plugin. Every audit
// record of both tasks carries the one txn `agenthost run` reports, the
// delegated task names its parent, and `audit trace TXN` shows the tree.
// The tool plugin got a Txn-Token it verified: alice's, for that txn,
// requested by the calling agent, its tctx binding the tool, the digest of
// the arguments and the declared field; its rctx the caller and the chain
// of workloads host → front → worker. Arguments changed after the token
// was minted are refused by the plugin, and the refusal is the call's
// audited outcome.
func TestTransactionAcrossDelegation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := runHost(t, txnConfig(t), filepath.Join(t.TempDir(), "data"))
	for _, a := range []string{"front", "worker"} {
		if _, err := h.sup.WaitFor(ctx, a, func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
			t.Fatal(err)
		}
	}
	// Only the host's own wrapper may stand between the mediator and the
	// tool; set before any task runs.
	h.tools["kit/txn"] = tamperTool{h.tools["kit/txn"]}
	sess := signIn(t, h, "alice", "alice-test-password", TaskResource(h.Issuer()))

	run := func(input string) (final, failure, txn, task string, err error) {
		err = h.RunTask(ctx, localapi.TaskRequest{Agent: "front", Input: input, AccessToken: sess.AccessToken}, func(ev localapi.TaskEvent) error {
			if txn == "" {
				txn, task = ev.Txn, ev.TaskID
			}
			switch ev.Type {
			case "final":
				final = ev.Text
			case "error":
				failure = ev.Text
			}
			return nil
		})
		return
	}
	final, failure, txn, frontTask, err := run("hello")
	if err != nil || failure != "" || !strings.HasPrefix(final, "front got: ") || !strings.HasPrefix(txn, "txn-") {
		t.Fatalf("task: final %q, failure %q, txn %q, %v", final, failure, txn, err)
	}
	var rep txnReport
	if err := json.Unmarshal([]byte(strings.TrimPrefix(final, "front got: ")), &rep); err != nil {
		t.Fatalf("kit/txn said %q: %v", final, err)
	}
	digest, _ := txntoken.ArgsDigest(json.RawMessage(`{"echo":"hello"}`))
	if rep.Subject != "alice" || rep.Txn != txn || rep.ReqWL != "spiffe://test.local/agent/worker" || rep.Scope != ScopeTasksRun ||
		rep.Agent != "worker" || !slices.Equal(rep.Chain, []string{"front"}) || rep.Task == "" || rep.Task == frontTask {
		t.Fatalf("the plugin's token: %+v", rep)
	}
	if string(rep.Tctx["tool"]) != `"kit/txn"` || string(rep.Tctx["args_sha256"]) != `"`+digest+`"` || string(rep.Tctx["echo"]) != `"hello"` {
		t.Fatalf("tctx %v, want the tool, the digest %s and the declared field", rep.Tctx, digest)
	}
	wantChain := fmt.Sprintf(`[%q,%q,%q]`, h.hostID, "spiffe://test.local/agent/front", "spiffe://test.local/agent/worker")
	if string(rep.Rctx["req_wl_chain"]) != wantChain || string(rep.Rctx["subject_source"]) != `"token"` {
		t.Fatalf("rctx %v, want the chain %s and subject_source token", rep.Rctx, wantChain)
	}

	// Every record of both tasks carries the txn; the worker's names the
	// front task as its parent.
	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	tasks := map[string]bool{frontTask: true, rep.Task: true}
	var toolCalls, taskRuns int
	for _, e := range entries {
		r := e.Record
		if !tasks[r.Task] {
			continue
		}
		if r.Txn != txn {
			t.Errorf("record %d of task %s has txn %q, want %q: %+v", e.Index, r.Task, r.Txn, txn, r)
		}
		if r.Task == rep.Task && r.ParentTask != frontTask {
			t.Errorf("record %d of the delegated task names parent %q", e.Index, r.ParentTask)
		}
		switch r.Action {
		case audit.ActionToolCall:
			toolCalls++
		case "task.run":
			taskRuns++
		}
	}
	if toolCalls != 2 || taskRuns != 2 {
		t.Fatalf("%d tool.call and %d task.run records in the transaction", toolCalls, taskRuns)
	}
	// Every Txn-Token of the transaction is audited by its hash: the
	// task's own, the delegated task's, the tool call's.
	var issued int
	for _, e := range entries {
		r := e.Record
		if r.Action != audit.ActionTokenIssue || r.Txn != txn {
			continue
		}
		issued++
		if len(r.TokenSHA256) != 64 || r.Subject != "alice" || r.Resource != "test.local" || !strings.Contains(r.Reason, "txn-token") {
			t.Errorf("Txn-Token record %d: %+v", e.Index, r)
		}
	}
	if issued < 3 {
		t.Errorf("%d Txn-Token issue records in the transaction, want at least 3", issued)
	}
	tree, err := h.AuditTrace(ctx, txn)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Task != frontTask || tree.Agent != "front" || len(tree.Children) != 1 || tree.Children[0].Task != rep.Task ||
		!slices.ContainsFunc(tree.Children[0].Records, func(e audit.Entry) bool { return e.Record.Action == audit.ActionToolCall }) {
		var b strings.Builder
		_ = tree.Format(&b)
		t.Fatalf("trace of %s:\n%s", txn, b.String())
	}

	// The operator's task (--for) and a task for nobody begin
	// transactions too: the host vouches for the subject, or is it.
	for _, tc := range []struct{ subject, wantSub string }{{"alice", "alice"}, {"", h.hostID.String()}} {
		var final, txn string
		err := h.RunTask(ctx, localapi.TaskRequest{Agent: "worker", Input: "direct", Subject: tc.subject}, func(ev localapi.TaskEvent) error {
			txn = ev.Txn
			if ev.Type == "final" {
				final = ev.Text
			}
			return nil
		})
		var rep txnReport
		if err != nil || json.Unmarshal([]byte(final), &rep) != nil {
			t.Fatalf("task for %q: %q, %v", tc.subject, final, err)
		}
		if rep.Subject != tc.wantSub || rep.Txn != txn || string(rep.Rctx["subject_source"]) != `"operator"` || len(rep.Chain) != 0 {
			t.Fatalf("task for %q: the plugin's token %+v", tc.subject, rep)
		}
	}

	// The arguments are changed on their way to the plugin: refused.
	_, failure, txn2, _, err := run("tamper")
	if err != nil || !strings.Contains(failure, "arguments differ") {
		t.Fatalf("tampered call: failure %q, %v", failure, err)
	}
	entries, err = h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, e := range entries {
		r := e.Record
		refused = refused || r.Txn == txn2 && r.Action == audit.ActionToolCall && r.Outcome == audit.OutcomeError &&
			strings.Contains(r.Error, mediator.ErrTxnToken.Error()) && strings.Contains(r.Error, "arguments differ")
	}
	if !refused {
		t.Fatal("the refused call is not audited as its outcome")
	}
}

// TestTxnTokenIsNotAnAccessToken: a Txn-Token presented as the access
// token of a hosted MCP server is refused (401, typ) and the refusal is
// audited.
func TestTxnTokenIsNotAnAccessToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := runHost(t, toolPluginConfig(t), filepath.Join(t.TempDir(), "data"))
	tok, _, err := h.as.IssueTxnToken(ctx, authserver.TxnTokenRequest{Subject: "alice", Scope: []string{"kit:read"},
		RequestingWorkload: h.hostID.String()})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.Issuer()+"/mcp/kit",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("a Txn-Token as the access token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e audit.Entry) bool {
		r := e.Record
		return r.Action == audit.ActionMCPRequest && r.Resource == "kit" && r.Decision == audit.DecisionDeny && strings.Contains(r.Reason, "401")
	}) {
		t.Fatal("the refused request is not audited")
	}
}

// TestMCPCallCarriesTxnToken: a tools/call on a hosted MCP server begins a
// transaction of its own: the host obtains a Txn-Token on the caller's
// access token (sub the caller, scope the token's scopes), and the tool
// plugin verifies it and reads its caller from it; both audit records of
// the call carry its txn.
func TestMCPCallCarriesTxnToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := toolPluginConfig(t)
	cfg.MCP.Servers[0].Tools = append(cfg.MCP.Servers[0].Tools, "kit/txn")
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	session := sdkSession(t, ctx, h.Issuer()+"/mcp/kit", "alice", "alice-test-password", []string{"kit:read"})
	defer session.Close()
	res, err := callMCP(ctx, session, "txn", map[string]any{"echo": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	var rep txnReport
	if err := json.Unmarshal([]byte(res), &rep); err != nil {
		t.Fatalf("kit/txn said %q: %v", res, err)
	}
	digest, _ := txntoken.ArgsDigest(json.RawMessage(`{"echo":"hi"}`))
	if rep.Subject != "alice" || !strings.HasPrefix(rep.Txn, "mcp-") || rep.ReqWL != h.hostID.String() || rep.Scope != "kit:read" ||
		rep.Agent != "" || string(rep.Tctx["args_sha256"]) != `"`+digest+`"` || string(rep.Rctx["subject_source"]) != `"token"` {
		t.Fatalf("the plugin's token: %+v", rep)
	}
	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Record.Txn == rep.Txn && e.Record.Action == mcphost.ActionToolCall && e.Record.Resource == "kit/txn" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d records of the call's txn %s, want its decision and its outcome", n, rep.Txn)
	}
}

// callPluginTool calls a tool of h with a Txn-Token the host mints as the
// mediator would for c's call, alice as the subject.
func callPluginTool(ctx context.Context, t *testing.T, h *Host, name string, c mediator.Caller, args string) (mediator.ToolResult, error) {
	t.Helper()
	tool := h.tools[name]
	details, err := mediator.CallDetails(name, tool, json.RawMessage(args))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := h.as.IssueTxnToken(ctx, authserver.TxnTokenRequest{Subject: "alice", Scope: []string{ScopeTasksRun},
		RequestingWorkload: "spiffe://test.local/agent/" + c.Agent, RequestDetails: details, RequestContext: mediator.TxnRequestContext(c)})
	if err != nil {
		t.Fatal(err)
	}
	return tool.Call(mediator.WithTxnToken(ctx, tok), c, json.RawMessage(args))
}

// callMCP calls tool on session and returns its text; a tool error is an
// error.
func callMCP(ctx context.Context, session *mcp.ClientSession, tool string, args map[string]any) (string, error) {
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return "", err
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if res.IsError {
		return "", errors.New(text)
	}
	return text, nil
}

// TestTaskTxnRenewal: a task's Txn-Token is renewed once half of its
// lifetime has passed, and only then; a renewal that fails, or that names
// another transaction, is an error.
func TestTaskTxnRenewal(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	n := 0
	var fail error
	txn := "txn-1"
	tt := &taskTxn{txn: "txn-1", now: func() time.Time { return now }}
	tt.renew = func(context.Context) (string, *txntoken.Claims, error) {
		if fail != nil {
			return "", nil, fail
		}
		n++
		return fmt.Sprint("token-", n), &txntoken.Claims{Txn: txn, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix()}, nil
	}
	ctx := context.Background()
	for _, step := range []struct {
		advance time.Duration
		want    string
	}{{0, "token-1"}, {29 * time.Second, "token-1"}, {time.Second, "token-2"}, {10 * time.Second, "token-2"}} {
		now = now.Add(step.advance)
		if got, err := tt.current(ctx); err != nil || got != step.want {
			t.Fatalf("after %s: %q, %v; want %q", step.advance, got, err, step.want)
		}
	}
	now = now.Add(time.Minute)
	fail = errors.New("the authorization server is down")
	if _, err := tt.current(ctx); !errors.Is(err, fail) {
		t.Fatalf("failed renewal: %v", err)
	}
	fail, txn = nil, "txn-2"
	if _, err := tt.current(ctx); err == nil || !strings.Contains(err.Error(), "txn-2") {
		t.Fatalf("renewal into another transaction: %v", err)
	}
}
