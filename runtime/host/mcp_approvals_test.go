package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/consent/consenttest"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
)

// urlElicitation is one elicitation of a -32042 error's data (SPECS §4.3).
type urlElicitation struct {
	Mode          string `json:"mode"`
	ElicitationID string `json:"elicitationId"`
	URL           string `json:"url"`
	Message       string `json:"message"`
}

// elicitationOf returns the single URL elicitation err (of a tools/call
// with the official SDK) asks for, or nil when err is not -32042.
func elicitationOf(t *testing.T, err error) *urlElicitation {
	t.Helper()
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != mcp.CodeURLElicitationRequired {
		return nil
	}
	var data struct {
		Elicitations []urlElicitation `json:"elicitations"`
	}
	if err := json.Unmarshal(rpcErr.Data, &data); err != nil || len(data.Elicitations) != 1 {
		t.Fatalf("-32042 data %s: %v", rpcErr.Data, err)
	}
	return &data.Elicitations[0]
}

// TestHostMCPApproval: a hosted MCP tools/call that policy allows only
// with approval gets a URL-mode elicitation (-32042 under 2025-11-25)
// pointing at the approval page; retries without approval get the same
// elicitation and nothing runs, nor does bob's attempt to approve alice's
// request; approved by alice, the retry runs the call once; one more
// retry needs a new approval. A small transfer needs none.
func TestHostMCPApproval(t *testing.T) {
	cibaInterval = time.Second
	defer func() { cibaInterval = 0 }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := approvalConfig(t)
	cfg.Agents = nil
	cfg.Auth.DynamicRegistration = true
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "payments", Tools: []string{"payments/balance", "payments/transfer"}}}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	endpoint := h.Issuer() + "/mcp/payments"
	session := sdkSessionVersion(t, ctx, endpoint, "alice", "alice-test-password", []string{"payments:read", "payments:write"}, "2025-11-25")
	defer session.Close()
	alice := consenttest.NewBrowser("alice", "alice-test-password")
	bob := consenttest.NewBrowser("bob", "bob-test-password")

	transfer := func(amount int) (*mcp.CallToolResult, error) {
		return session.CallTool(ctx, &mcp.CallToolParams{Name: "transfer",
			Arguments: map[string]any{"from": "alice", "to": "bob", "amount": amount}})
	}
	mustElicit := func(what string, amount int) *urlElicitation {
		t.Helper()
		res, err := transfer(amount)
		el := elicitationOf(t, err)
		if el == nil {
			t.Fatalf("%s: no URL elicitation: %v %+v", what, err, res)
		}
		if el.Mode != "url" || el.ElicitationID == "" || !strings.HasPrefix(el.URL, h.Issuer()+"/approve/") ||
			!strings.HasSuffix(el.URL, "/"+el.ElicitationID) || !strings.Contains(el.Message, fmt.Sprintf("payments/transfer %d to bob", amount)) {
			t.Fatalf("%s: elicitation %+v", what, el)
		}
		return el
	}

	// The first call: the elicitation, nothing runs.
	el := mustElicit("first call", 500)
	// A client that just retries (as if it answered "accept" without
	// anyone approving): the same elicitation, nothing runs.
	if again := mustElicit("retry without approval", 500); again.ElicitationID != el.ElicitationID {
		t.Fatalf("the retry got another approval: %s, then %s", el.ElicitationID, again.ElicitationID)
	}
	// Bob cannot approve alice's request.
	if _, err := bob.Approve(ctx, el.URL); err == nil {
		t.Fatal("bob approved alice's request")
	}
	if again := mustElicit("retry after bob", 500); again.ElicitationID != el.ElicitationID {
		t.Fatalf("the retry after bob got another approval")
	}
	// Another amount is another call: its own approval.
	if other := mustElicit("another amount", 600); other.ElicitationID == el.ElicitationID {
		t.Fatal("a call with other arguments found the first call's approval")
	}
	if n := transfersRun(t, h, ""); n != 0 {
		t.Fatalf("%d transfers ran before any approval", n)
	}

	// Alice approves; the retry runs the call (the first retries may come
	// before the next poll is due).
	if _, err := alice.Approve(ctx, el.URL); err != nil {
		t.Fatal(err)
	}
	var res *mcp.CallToolResult
	for {
		r, err := transfer(500)
		if e := elicitationOf(t, err); e != nil && e.ElicitationID == el.ElicitationID {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("retry after approval: %v", err)
		}
		res = r
		break
	}
	if res.IsError || len(res.Content) != 1 || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "transferred 500.00 from alice to bob") {
		t.Fatalf("approved transfer: %+v", res)
	}
	if n := transfersRun(t, h, "alice"); n != 1 {
		t.Fatalf("%d approved transfers ran, want 1", n)
	}
	// The same call again: a new approval is needed, nothing runs.
	if again := mustElicit("after the approved call", 500); again.ElicitationID == el.ElicitationID {
		t.Fatal("the used approval was offered again")
	}
	if n := transfersRun(t, h, ""); n != 1 {
		t.Fatalf("%d transfers ran, want 1", n)
	}

	// A small transfer runs without approval.
	res, err := transfer(50)
	if err != nil || res.IsError {
		t.Fatalf("small transfer: %v %+v", err, res)
	}
}

// transfersRun counts the payments/transfer calls of hosted MCP servers
// that ran, those approved by approver when it is set.
func transfersRun(t *testing.T, h *Host, approver string) int {
	t.Helper()
	records, err := audit.Read(context.Background(), syncedStore(t, h), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range pairMCPRecords(t, records) {
		d := c.decision
		if d.Resource != "payments/transfer" || c.outcome == nil || c.outcome.Outcome != audit.OutcomeOK {
			continue
		}
		if approver != "" && (d.Approver != approver || d.ApprovalID == "") {
			continue
		}
		n++
	}
	return n
}

// TestHostMCPApprovalRestart: a request pending when the host restarts is
// still pending afterwards, and the call runs once it is approved.
func TestHostMCPApprovalRestart(t *testing.T) {
	cibaInterval = time.Second
	defer func() { cibaInterval = 0 }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := approvalConfig(t)
	cfg.Agents = nil
	cfg.Listen.Address = config.Address(addr)
	cfg.Auth.DynamicRegistration = true
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "payments", Tools: []string{"payments/balance", "payments/transfer"}}}
	dataDir := filepath.Join(t.TempDir(), "data")
	base, stop := startHostAt(t, dataDir, cfg)
	endpoint := base + "/mcp/payments"
	session := sdkSessionVersion(t, ctx, endpoint, "alice", "alice-test-password", []string{"payments:read", "payments:write"}, "2025-11-25")
	defer session.Close()
	transfer := func() (*mcp.CallToolResult, error) {
		return session.CallTool(ctx, &mcp.CallToolParams{Name: "transfer",
			Arguments: map[string]any{"from": "alice", "to": "bob", "amount": 500}})
	}
	_, err = transfer()
	el := elicitationOf(t, err)
	if el == nil {
		t.Fatalf("no elicitation: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	base2, stop2 := startHostAt(t, dataDir, cfg)
	defer stop2()
	if base2 != base {
		t.Fatalf("restarted at %s, not %s", base2, base)
	}
	// Still pending: the same elicitation.
	_, err = transfer()
	if again := elicitationOf(t, err); again == nil || again.ElicitationID != el.ElicitationID {
		t.Fatalf("after the restart: %v", err)
	}
	if _, err := consenttest.NewBrowser("alice", "alice-test-password").Approve(ctx, el.URL); err != nil {
		t.Fatal(err)
	}
	for {
		res, err := transfer()
		if e := elicitationOf(t, err); e != nil && e.ElicitationID == el.ElicitationID {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if err != nil || res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, "transferred 500.00 from alice to bob") {
			t.Fatalf("approved after the restart: %v %+v", err, res)
		}
		break
	}
}

// TestHostMCPApproval2026: under protocol 2026-07-28 the same call gets an
// input_required result whose input request (keyed by the approval ID) is
// the URL elicitation; the official SDK's client, which has no elicitation
// handler here, says so, and nothing runs.
func TestHostMCPApproval2026(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := approvalConfig(t)
	cfg.Agents = nil
	cfg.Auth.DynamicRegistration = true
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "payments", Tools: []string{"payments/balance", "payments/transfer"}}}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	s := sdkSessionVersion(t, ctx, h.Issuer()+"/mcp/payments", "alice", "alice-test-password", []string{"payments:read", "payments:write"}, "2026-07-28")
	defer s.Close()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "transfer", Arguments: map[string]any{"from": "alice", "to": "bob", "amount": 500}})
	pending, perr := h.PendingApprovals(ctx, "alice", "")
	if perr != nil || len(pending) != 1 {
		t.Fatalf("alice's pending approvals: %+v, %v", pending, perr)
	}
	if err == nil || !strings.Contains(err.Error(), "multi round-trip") || !strings.Contains(err.Error(), pending[0].ID) {
		t.Fatalf("transfer under 2026-07-28: %v %+v", err, res)
	}
	if n := transfersRun(t, h, ""); n != 0 {
		t.Fatalf("%d transfers ran without approval", n)
	}
}

// TestHostMCPApproval2026Retry: under protocol 2026-07-28 the client (the
// official SDK's, answering input requests itself) retries the call with
// inputResponses and the echoed requestState (SPECS §4.6). A blind retry,
// accepting the URL elicitation without anyone approving, runs nothing
// and gets the same input_required; approved by alice, the retry runs the
// call once; one more retry needs a new approval.
func TestHostMCPApproval2026Retry(t *testing.T) {
	cibaInterval = time.Second
	defer func() { cibaInterval = 0 }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := approvalConfig(t)
	cfg.Agents = nil
	cfg.Auth.DynamicRegistration = true
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "payments", Tools: []string{"payments/balance", "payments/transfer"}}}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	session := sdkSessionOptions(t, ctx, h.Issuer()+"/mcp/payments", "alice", "alice-test-password",
		[]string{"payments:read", "payments:write"}, "2026-07-28", &mcp.ClientOptions{
			Capabilities:   &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}},
			MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true}, // the test answers the input requests
		})
	defer session.Close()

	// transfer calls transfer(500), as a retry answering the input
	// requests of prev when it is set.
	transfer := func(prev *mcp.CallToolResult) (*mcp.CallToolResult, error) {
		p := &mcp.CallToolParams{Name: "transfer", Arguments: map[string]any{"from": "alice", "to": "bob", "amount": 500}}
		if prev != nil {
			p.InputResponses = mcp.InputResponseMap{}
			for id := range prev.InputRequests {
				p.InputResponses[id] = &mcp.ElicitResult{Action: "accept"}
			}
			p.RequestState = prev.RequestState
		}
		return session.CallTool(ctx, p)
	}
	// inputRequired checks res asks for the URL elicitation of one
	// approval and returns its ID and URL.
	inputRequired := func(what string, res *mcp.CallToolResult, err error) (id, url string) {
		t.Helper()
		if err != nil || !res.NeedsInput() || len(res.InputRequests) != 1 {
			t.Fatalf("%s: not input_required: %v %+v", what, err, res)
		}
		for k, ir := range res.InputRequests {
			el, ok := ir.(*mcp.ElicitParams)
			if !ok || el.Mode != "url" || !strings.HasPrefix(el.URL, h.Issuer()+"/approve/") || !strings.HasSuffix(el.URL, "/"+k) ||
				!strings.Contains(el.Message, "payments/transfer 500 to bob") || res.RequestState != k {
				t.Fatalf("%s: input request %q: %#v, requestState %q", what, k, ir, res.RequestState)
			}
			id, url = k, el.URL
		}
		return id, url
	}

	first, err := transfer(nil)
	id, url := inputRequired("first call", first, err)
	// A blind retry: "accept" without anyone approving. Nothing runs.
	again, err := transfer(first)
	if again2, _ := inputRequired("blind retry", again, err); again2 != id {
		t.Fatalf("the blind retry got another approval: %s, then %s", id, again2)
	}
	if n := transfersRun(t, h, ""); n != 0 {
		t.Fatalf("%d transfers ran before any approval", n)
	}

	// Alice approves; the retry runs the call (the first retries may come
	// before the next poll is due).
	if _, err := consenttest.NewBrowser("alice", "alice-test-password").Approve(ctx, url); err != nil {
		t.Fatal(err)
	}
	res := again
	for {
		r, err := transfer(res)
		if err == nil && r.NeedsInput() {
			if k, _ := inputRequired("retry after approval", r, err); k != id {
				t.Fatalf("the retry after approval got another approval: %s", k)
			}
			res = r
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if err != nil || r.IsError || len(r.Content) != 1 ||
			!strings.Contains(r.Content[0].(*mcp.TextContent).Text, "transferred 500.00 from alice to bob") {
			t.Fatalf("approved transfer: %v %+v", err, r)
		}
		break
	}
	if n := transfersRun(t, h, "alice"); n != 1 {
		t.Fatalf("%d approved transfers ran, want 1", n)
	}

	// Retrying once more, with the used approval's answer: a new
	// approval is needed, nothing runs.
	r, err := transfer(res)
	if k, _ := inputRequired("after the approved call", r, err); k == id {
		t.Fatal("the used approval was offered again")
	}
	if n := transfersRun(t, h, ""); n != 1 {
		t.Fatalf("%d transfers ran, want 1", n)
	}
}
