package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mcphost"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
)

// probeTool wraps a host tool: when it is called it first looks in the
// audit log for the allow decision of this very call (same arguments, no
// outcome yet), and remembers what it found.
type probeTool struct {
	mediator.Tool
	log   store.Log
	fail  error // returned instead of calling the tool, when set
	mu    sync.Mutex
	found []audit.Record // the decision seen by each call; zero if none
}

func (p *probeTool) Definition() llm.Tool { return p.Tool.Definition() }

func (p *probeTool) Call(ctx context.Context, c mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	sum := sha256.Sum256(args)
	digest := hex.EncodeToString(sum[:])
	var found audit.Record
	es, err := audit.Tail(ctx, p.log, 20)
	if err != nil {
		return mediator.ToolResult{}, err
	}
	for _, e := range es {
		r := e.Record
		if r.ArgsSHA256 != digest {
			continue
		}
		if r.Outcome != "" {
			found = audit.Record{} // an outcome before the tool ran is no decision
			break
		}
		if r.Action == mcphost.ActionToolCall && r.Decision == audit.DecisionAllow {
			found = r
		}
	}
	p.mu.Lock()
	p.found = append(p.found, found)
	p.mu.Unlock()
	if p.fail != nil {
		return mediator.ToolResult{}, p.fail
	}
	return p.Tool.Call(ctx, c, args)
}

// TestMCPDecisionBeforeTool: over MCP (streamable HTTP, bearer token), a
// host tool finds its call's allow decision already in the audit log when
// it runs, and the outcome follows in the same transaction: ok, or error
// with the tool's error.
func TestMCPDecisionBeforeTool(t *testing.T) {
	cfg := testConfig(t)
	addPEP(t, cfg, "notes:write")
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "notes", Tools: []string{"notes/add"}}}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	token := clientToken(t, h.Issuer(), h.Issuer()+"/mcp/notes", "notes:write")

	for _, tc := range []struct {
		name        string
		fail        error
		wantOutcome string
		wantAnswer  string
	}{
		{name: "ok", wantOutcome: audit.OutcomeOK, wantAnswer: `"text":"saved"`},
		{name: "tool error", fail: errors.New("disk full"), wantOutcome: audit.OutcomeError, wantAnswer: `"error"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The host's own MCP mount, with notes/add behind a probe.
			probe := &probeTool{Tool: h.tools["notes/add"], log: h.Store(), fail: tc.fail}
			tools := map[string]mediator.Tool{"notes/add": probe}
			mux := http.NewServeMux()
			if err := h.mountMCP(mux, h.mcp, tools); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(mux)
			defer srv.Close()

			args := `{"text":"probe ` + tc.name + `"}`
			status, body := postToolCall(t, srv.URL+"/mcp/notes", token, "add", args)
			if status != http.StatusOK || !strings.Contains(body, tc.wantAnswer) {
				t.Fatalf("tools/call: %d %s", status, body)
			}
			if len(probe.found) != 1 {
				t.Fatalf("the tool ran %d times", len(probe.found))
			}
			decision := probe.found[0]
			if decision.Txn == "" || decision.Resource != "notes/add" || decision.Agent != "mcp:pep" || decision.TokenJTI == "" ||
				decision.Policy != "scope notes:write" {
				t.Fatalf("the tool ran before its decision was in the log (found %+v)", decision)
			}
			records, err := audit.Tail(context.Background(), syncedStore(t, h), 50)
			if err != nil {
				t.Fatal(err)
			}
			var outcome *audit.Record
			for _, c := range pairMCPRecords(t, records) {
				if c.decision.Txn == decision.Txn {
					outcome = c.outcome
				}
			}
			if outcome == nil || outcome.Outcome != tc.wantOutcome || (tc.fail != nil && outcome.Error != tc.fail.Error()) {
				t.Fatalf("outcome of txn %s: %+v, want %s", decision.Txn, outcome, tc.wantOutcome)
			}
		})
	}
}

// TestMCPAuditEveryPath: every kind of hosted MCP tool (a built-in host
// tool, a tool plugin's tool, a gateway's upstream tool) is audited as a
// decision then an outcome in a transaction of its own; a call the policy
// refuses is audited as denied, and only that.
func TestMCPAuditEveryPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type want struct {
		action, resource, policy string
	}
	for _, tc := range []struct {
		name string
		// run starts a host, makes one allowed call and returns the host
		// and what its records must name.
		run func(t *testing.T) (*Host, want)
	}{
		{"host tool", func(t *testing.T) (*Host, want) {
			_, dir, pdir := policyFixture(t, "p.cedar")
			cfg := testConfig(t)
			cfg.Policy.Dir = pdir
			addPEP(t, cfg, "notes:read", "notes:write")
			cfg.MCP.Servers = []config.MCPServerConfig{{Name: "notes", Tools: []string{"notes/search", "notes/add"}}}
			h := runHost(t, cfg, filepath.Join(dir, "data"))
			endpoint := h.Issuer() + "/mcp/notes"
			token := clientToken(t, h.Issuer(), endpoint, "notes:read notes:write")
			if status, body := postToolCall(t, endpoint, token, "add", `{"text":"hello"}`); status != 200 || !strings.Contains(body, "saved") {
				t.Fatalf("add: %d %s", status, body)
			}
			// The policy forbids notes/search: refused, audited as denied.
			status, body := postToolCall(t, endpoint, token, "search", `{"query":"hello"}`)
			if status != 200 || !strings.Contains(body, fmt.Sprint(mcpserver.CodeDenied)) {
				t.Fatalf("search under a forbid: %d %s", status, body)
			}
			records, err := audit.Read(ctx, syncedStore(t, h), 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			var denied []audit.Record
			for _, e := range records {
				if e.Record.Resource == "notes/search" && e.Record.Action == mcphost.ActionToolCall {
					denied = append(denied, e.Record)
				}
			}
			if len(denied) != 1 || denied[0].Decision != audit.DecisionDeny || denied[0].Outcome != audit.OutcomeDenied ||
				denied[0].Reason != "notes are off limits" {
				t.Fatalf("refused call audited as %+v", denied)
			}
			return h, want{mcphost.ActionToolCall, "notes/add", "scope notes:write + policy"}
		}},
		{"tool plugin", func(t *testing.T) (*Host, want) {
			cfg := toolPluginConfig(t)
			addPEP(t, cfg, "kit:read")
			h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
			endpoint := h.Issuer() + "/mcp/kit"
			token := clientToken(t, h.Issuer(), endpoint, "kit:read")
			if status, body := postToolCall(t, endpoint, token, "whoami", `{"echo":"hi"}`); status != 200 || !strings.Contains(body, `|pep|`) {
				t.Fatalf("whoami: %d %s", status, body)
			}
			return h, want{mcphost.ActionToolCall, "kit/whoami", "scope kit:read"}
		}},
		{"gateway", func(t *testing.T) (*Host, want) {
			h, calls := newGatewayHost(t, nil)
			session := sdkSession(t, ctx, h.Issuer()+"/mcp/gw", "alice", "alice-pw", []string{"docs:read"})
			defer session.Close()
			res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
			if err != nil || res.IsError || calls.Load() != 1 {
				t.Fatalf("whoami: %v %+v (%d upstream calls)", err, res, calls.Load())
			}
			return h, want{mcphost.ActionGatewayCall, "docs/whoami", "token exchange"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, w := tc.run(t)
			records, err := audit.Read(ctx, syncedStore(t, h), 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			calls := pairMCPRecords(t, records)
			if len(calls) != 1 {
				t.Fatalf("%d allowed MCP calls audited, want 1", len(calls))
			}
			c := calls[0]
			if c.decision.Action != w.action || c.decision.Resource != w.resource || c.decision.Policy != w.policy ||
				c.outcome == nil || c.outcome.Outcome != audit.OutcomeOK {
				t.Fatalf("decision %+v, outcome %+v; want %+v", c.decision, c.outcome, w)
			}
		})
	}
}

// mcpCallRecords are the records of one allowed tools/call on a hosted
// MCP server: its decision and, once the tool has run, its outcome.
type mcpCallRecords struct {
	decision audit.Record
	outcome  *audit.Record
}

// pairMCPRecords returns the allowed tools/call of hosted MCP servers in
// es, in log order. It fails t unless each call has a transaction of its
// own whose decision comes first and whose outcome, if any, follows it
// and names the same call (action, resource, arguments, token).
func pairMCPRecords(t *testing.T, es []audit.Entry) []mcpCallRecords {
	t.Helper()
	var out []mcpCallRecords
	byTxn := map[string]int{}
	for _, e := range es {
		r := e.Record
		if (r.Action != mcphost.ActionToolCall && r.Action != mcphost.ActionGatewayCall) || r.Decision != audit.DecisionAllow {
			continue
		}
		i, seen := byTxn[r.Txn]
		switch {
		case r.Txn == "" || r.Task != "":
			t.Fatalf("record %d: an MCP call outside a transaction of its own: %+v", e.Index, r)
		case r.Outcome == "" && seen:
			t.Fatalf("record %d: a second decision in txn %s", e.Index, r.Txn)
		case r.Outcome == "":
			byTxn[r.Txn] = len(out)
			out = append(out, mcpCallRecords{decision: r})
		case !seen:
			t.Fatalf("record %d: an outcome with no decision before it: %+v", e.Index, r)
		case out[i].outcome != nil:
			t.Fatalf("record %d: a second outcome in txn %s", e.Index, r.Txn)
		default:
			d := out[i].decision
			if r.Action != d.Action || r.Resource != d.Resource || r.ArgsSHA256 != d.ArgsSHA256 || r.TokenJTI != d.TokenJTI || r.Subject != d.Subject {
				t.Fatalf("record %d: outcome %+v does not match its decision %+v", e.Index, r, d)
			}
			out[i].outcome = &r
		}
	}
	return out
}

// addPEP adds the confidential client "pep" (secret "pep-secret", the
// client clientToken uses) with the client_credentials grant and scopes.
func addPEP(t testing.TB, cfg *config.Config, scopes ...string) {
	t.Helper()
	hash, err := userauth.HashPassword("pep-secret")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Clients = append(cfg.Auth.Clients, config.ClientConfig{ID: "pep", AuthMethod: config.AuthMethodClientSecretPost,
		SecretHash: hash, GrantTypes: []config.GrantType{config.GrantClientCredentials}, Scopes: scopes})
}

// postToolCall makes one tools/call over streamable HTTP with a bearer
// token and returns the status and body.
func postToolCall(t testing.TB, endpoint, token, tool, args string) (int, string) {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, tool, args)
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// syncedStore is h's store once the audit records queued so far (the
// outcomes of calls that have returned) are committed.
func syncedStore(t testing.TB, h *Host) store.Store {
	t.Helper()
	if err := h.audit.log.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h.store
}
