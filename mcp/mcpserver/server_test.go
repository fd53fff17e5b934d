package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	sdkjsonrpc "github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// bearerTransport adds a static bearer token to every request.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestSDKClient drives the server with the official MCP Go SDK client under
// both protocol versions.
func TestSDKClient(t *testing.T) {
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			tok := f.token("notes:read")
			f.secrets = []string{tok}
			ctx := t.Context()
			client := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil)
			cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{
				Endpoint: f.resource, HTTPClient: &http.Client{Transport: bearerTransport{tok}}, DisableStandaloneSSE: true,
			}, &sdk.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			t.Cleanup(func() { _ = cs.Close() })
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Errorf("negotiated %q, want %q", got, version)
			}
			if got := cs.InitializeResult().ServerInfo; got.Name != serverName || got.Version != "1.0.0" {
				t.Errorf("server info %+v", got)
			}

			lr, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("ListTools: %v", err)
			}
			var names []string
			for _, tl := range lr.Tools {
				names = append(names, tl.Name)
				if tl.Name == "notes.read" && (tl.Annotations == nil || !tl.Annotations.ReadOnlyHint) {
					t.Errorf("notes.read annotations %+v, want readOnlyHint", tl.Annotations)
				}
			}
			slices.Sort(names)
			if want := []string{"notes.fail", "notes.read"}; !slices.Equal(names, want) {
				t.Errorf("tools %q, want %q (no notes.write: scope; no notes.purge: policy)", names, want)
			}

			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "notes.read", Arguments: map[string]any{"id": "n1"}})
			if err != nil {
				t.Fatalf("CallTool: %v", err)
			}
			if res.IsError || len(res.Content) != 1 {
				t.Fatalf("result %+v", res)
			}
			if tc, ok := res.Content[0].(*sdk.TextContent); !ok || tc.Text != "note for alice" {
				t.Errorf("content %#v", res.Content[0])
			}
			sc, _ := json.Marshal(res.StructuredContent)
			if string(sc) != `{"args":{"id":"n1"},"subject":"alice"}` {
				t.Errorf("structuredContent %s", sc)
			}
			f.seen.mu.Lock()
			if f.seen.subject != "alice" || f.seen.args != `{"id":"n1"}` || len(f.seen.leaks) != 0 {
				t.Errorf("handler saw subject %q args %q token at %q", f.seen.subject, f.seen.args, f.seen.leaks)
			}
			f.seen.mu.Unlock()

			// Policy refusal: a JSON-RPC error, not a tool result.
			_, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "notes.purge"})
			if werr, ok := errors.AsType[*sdkjsonrpc.Error](err); !ok || werr.Code != CodeDenied {
				t.Errorf("notes.purge: %v, want JSON-RPC error %d", err, CodeDenied)
			}
			f.seen.mu.Lock()
			if n := len(f.seen.deniedCalls); n == 0 || !strings.HasPrefix(f.seen.deniedCalls[n-1], "alice notes.purge: ") {
				t.Errorf("OnDenied was told %q", f.seen.deniedCalls)
			}
			f.seen.mu.Unlock()
			// Unknown tool: the usual not-found error.
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "nope"}); err == nil || !strings.Contains(err.Error(), "not found") {
				t.Errorf("unknown tool: %v, want not found", err)
			}
			// Handler error: reported without its text.
			_, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "notes.fail"})
			if err == nil || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("notes.fail: %v, want an error without the cause", err)
			}
			// Scope missing: the HTTP exchange fails with 403
			// Forbidden, which ends the SDK session, so it goes last.
			if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "notes.write"}); err == nil || !strings.Contains(err.Error(), "Forbidden") {
				t.Errorf("notes.write without scope: %v, want a 403", err)
			}
		})
	}
}

// TestSDKClientNoToken checks that the SDK client without a token cannot
// connect.
func TestSDKClientNoToken(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	client := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "v0"}, nil)
	cs, err := client.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: f.resource, DisableStandaloneSSE: true}, nil)
	if err == nil {
		_ = cs.Close()
		t.Fatal("Connect without a token succeeded")
	}
}

const (
	listBody  = `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	initBody  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`
	legacyHdr = "2025-11-25"
)

func callBody(tool string) string {
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
}

// TestHTTP checks the answers at the HTTP level.
func TestHTTP(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxBody: 4096})
	read, write := f.token("notes:read"), f.token("notes:read notes:write")
	hdr := map[string]string{"Mcp-Protocol-Version": legacyHdr}
	tests := []struct {
		name       string
		tok, body  string
		status     int
		wwwAuth    []string // substrings of WWW-Authenticate
		rpcCode    int      // expected JSON-RPC error code; 0 = success
		resultHas  string   // substring of the result
		rpcMessage string   // substring of the error message
	}{
		{name: "initialize 2025-11-25", tok: read, body: initBody, status: 200, resultHas: `"protocolVersion":"2025-11-25"`},
		{name: "list with read scope", tok: read, body: listBody, status: 200, resultHas: `"notes.read"`},
		{name: "call with read scope", tok: read, body: callBody("notes.read"), status: 200, resultHas: `"structuredContent":{"args":{},"subject":"alice"}`},
		{name: "call with write scope", tok: write, body: callBody("notes.write"), status: 200, resultHas: `"text":"written"`},
		{
			name: "no token", body: listBody, status: 401,
			wwwAuth: []string{"Bearer", `resource_metadata="` + f.mdURL + `"`},
		},
		{
			name: "invalid token", tok: "not-a-jwt", body: listBody, status: 401,
			wwwAuth: []string{`error="invalid_token"`, `resource_metadata="` + f.mdURL + `"`},
		},
		{
			name: "call needing more scope", tok: read, body: callBody("notes.write"), status: 403,
			wwwAuth: []string{`error="insufficient_scope"`, `scope="notes:read notes:write"`, `resource_metadata="` + f.mdURL + `"`},
		},
		{
			name: "duplicate name keys, last one needs more scope", tok: read, status: 403,
			body:    `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"notes.read","Name":"notes.write"}}`,
			wwwAuth: []string{`scope="notes:read notes:write"`},
		},
		{
			name: "upper-case member names", tok: read, status: 403,
			body:    `{"jsonrpc":"2.0","id":7,"METHOD":"tools/call","PARAMS":{"NAME":"notes.write"}}`,
			wwwAuth: []string{`scope="notes:read notes:write"`},
		},
		{name: "call denied by policy", tok: write, body: callBody("notes.purge"), status: 200, rpcCode: CodeDenied},
		{name: "call unknown tool", tok: read, body: callBody("nope"), status: 200, rpcCode: -32602, rpcMessage: "not found"},
		{name: "call failing tool", tok: read, body: callBody("notes.fail"), status: 200, rpcCode: -32603, rpcMessage: ErrToolFailed.Error()},
		{name: "malformed JSON", tok: read, body: `{"jsonrpc":"2.0",`, status: 400, rpcCode: -32700},
		{name: "empty body", tok: read, body: ``, status: 400, rpcCode: -32700},
		{name: "not an object", tok: read, body: `"tools/list"`, status: 400, rpcCode: -32600},
		{name: "batch", tok: read, body: `[` + callBody("notes.write") + `]`, status: 400, rpcCode: -32600},
		{name: "method not a string", tok: read, body: `{"jsonrpc":"2.0","id":1,"method":7}`, status: 400, rpcCode: -32600},
		{name: "oversized", tok: read, body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":"` + strings.Repeat("a", 5000) + `"}}`, status: 413, rpcCode: -32600},
		{name: "oversized without token", body: strings.Repeat(" ", 5000), status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.post(tc.tok, tc.body, hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			wa := resp.Header.Get("WWW-Authenticate")
			for _, s := range tc.wwwAuth {
				if !strings.Contains(wa, s) {
					t.Errorf("WWW-Authenticate %q lacks %q", wa, s)
				}
			}
			if tc.status == 401 || tc.status == 403 {
				return
			}
			r := readRPC(t, resp)
			switch {
			case tc.rpcCode == 0 && r.Error != nil:
				t.Fatalf("error %+v", *r.Error)
			case tc.rpcCode == 0 && !strings.Contains(string(r.Result), tc.resultHas):
				t.Errorf("result %s lacks %s", r.Result, tc.resultHas)
			case tc.rpcCode != 0 && r.Error == nil:
				t.Fatalf("result %s, want error %d", r.Result, tc.rpcCode)
			case tc.rpcCode != 0 && (r.Error.Code != tc.rpcCode || !strings.Contains(r.Error.Message, tc.rpcMessage)):
				t.Errorf("error %+v, want code %d with %q", *r.Error, tc.rpcCode, tc.rpcMessage)
			}
			if tc.rpcCode == CodeDenied && string(r.ID) != "7" {
				t.Errorf("denial id %s, want 7", r.ID)
			}
		})
	}
}

// TestStepUpChallenge: a tools/call the token's scopes do not allow gets
// 403 insufficient_scope whose scope is exactly the tool's scope plus the
// token's scopes of this server (MCP 2025-11-25 step-up: a client that
// authorizes again with the challenged scope keeps what it had), never
// scopes of other resources; the description names the missing scope.
func TestStepUpChallenge(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	tests := []struct {
		name, scope, tool string
		missing, want     string
	}{
		{name: "read token calls a write tool", scope: "notes:read", tool: "notes.write", missing: "notes:write", want: "notes:read notes:write"},
		{name: "token without scopes", scope: "", tool: "notes.write", missing: "notes:write", want: "notes:write"},
		{name: "write token calls a read tool", scope: "notes:write", tool: "notes.read", missing: "notes:read", want: "notes:read notes:write"},
		{name: "other resources' scopes are not named", scope: "calendar:read offline_access", tool: "notes.write",
			missing: "notes:write", want: "notes:write"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.post(f.token(tc.scope), callBody(tc.tool), map[string]string{"Mcp-Protocol-Version": legacyHdr})
			resp.Body.Close()
			cs, err := oauth.ParseChallenges(resp.Header.Values("WWW-Authenticate"))
			if err != nil || len(cs) == 0 {
				t.Fatalf("WWW-Authenticate %q: %v", resp.Header.Values("WWW-Authenticate"), err)
			}
			bearer := cs[0]
			if resp.StatusCode != http.StatusForbidden || bearer.Param("error") != oauth.CodeInsufficientScope {
				t.Fatalf("%d %q, want 403 insufficient_scope", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
			}
			if got := bearer.Param("scope"); got != tc.want {
				t.Errorf("scope %q, want exactly %q", got, tc.want)
			}
			if got := bearer.Param("error_description"); got != "the request needs scope "+tc.missing {
				t.Errorf("description %q, want it to name %s", got, tc.missing)
			}
		})
	}
}

// TestListFiltering checks tools/list per scope and policy.
func TestListFiltering(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	tests := []struct {
		name   string
		scope  string
		denied []string
		want   []string
	}{
		{name: "read", scope: "notes:read", denied: []string{"notes.purge"}, want: []string{"notes.fail", "notes.read"}},
		{name: "read write", scope: "notes:read notes:write", denied: []string{"notes.purge"}, want: []string{"notes.fail", "notes.read", "notes.write"}},
		{name: "read write no policy denial", scope: "notes:read notes:write", want: []string{"notes.fail", "notes.purge", "notes.read", "notes.write"}},
		{name: "unrelated scope", scope: "other", want: nil},
		{name: "policy denies all", scope: "notes:read notes:write", denied: []string{"notes.fail", "notes.purge", "notes.read", "notes.write"}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.denied = tc.denied
			r := readRPC(t, f.post(f.token(tc.scope), listBody, map[string]string{"Mcp-Protocol-Version": legacyHdr}))
			var lr struct {
				Tools []struct {
					Name string `json:"name"`
				} `json:"tools"`
			}
			if err := json.Unmarshal(r.Result, &lr); err != nil {
				t.Fatalf("%s: %v", r.Result, err)
			}
			var got []string
			for _, tl := range lr.Tools {
				got = append(got, tl.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("tools %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNoTokenInHandler checks that the token and DPoP proof never reach a
// handler, and that the search would find them if they did.
func TestNoTokenInHandler(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	tok := f.token("notes:read")
	const proof = "eyJ0eXAiOiJkcG9wK2p3dCJ9.cHJvb2YtbWFya2Vy.c2ln"
	f.secrets = []string{tok, proof}
	r := readRPC(t, f.post(tok, callBody("notes.read"), map[string]string{"Mcp-Protocol-Version": legacyHdr, "DPoP": proof}))
	if r.Error != nil {
		t.Fatalf("call failed: %+v", *r.Error)
	}
	f.seen.mu.Lock()
	if f.seen.subject != "alice" {
		t.Fatal("the handler did not run")
	}
	if len(f.seen.leaks) != 0 {
		t.Errorf("credentials reachable from the handler's context at %q", f.seen.leaks)
	}
	f.seen.mu.Unlock()

	// Positive control: a marker in an ordinary header is found, so the
	// search reaches the request headers the MCP layer keeps in the context.
	const marker = "control-marker-5f1c"
	f.secrets = []string{marker}
	readRPC(t, f.post(tok, callBody("notes.read"), map[string]string{"Mcp-Protocol-Version": legacyHdr, "X-Control": marker}))
	f.seen.mu.Lock()
	if len(f.seen.leaks) == 0 {
		t.Error("the search did not find a marker header; it cannot vouch for the token's absence")
	}
	f.seen.mu.Unlock()

	// The search finds a token placed where a careless server would put it.
	req, _ := http.NewRequest(http.MethodPost, f.resource, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, req)
	if got := findSecrets(ctx, []string{tok}); len(got) == 0 {
		t.Error("findSecrets missed a token in a request in the context")
	}
	if got := findSecrets(context.WithValue(t.Context(), key{}, map[string][]byte{"x": []byte(proof)}), []string{proof}); len(got) == 0 {
		t.Error("findSecrets missed a proof in a byte slice")
	}
}

// TestNewInvalid is the negative table for Config.
func TestNewInvalid(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ok := func(context.Context, *resource.Caller, json.RawMessage) (Result, error) { return Result{}, nil }
	good := Tool{Name: "t", Handler: ok}
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no verifier", cfg: Config{Name: "x"}},
		{name: "empty name", cfg: Config{Verifier: f.v}},
		{name: "slash in name", cfg: Config{Name: "a/b", Verifier: f.v}},
		{name: "dot-dot name", cfg: Config{Name: "..", Verifier: f.v}},
		{name: "space in name", cfg: Config{Name: "a b", Verifier: f.v}},
		{name: "long name", cfg: Config{Name: strings.Repeat("a", 65), Verifier: f.v}},
		{name: "negative body limit", cfg: Config{Name: "x", Verifier: f.v, MaxBodyBytes: -1}},
		{name: "empty tool name", cfg: Config{Name: "x", Verifier: f.v, Tools: []Tool{{Handler: ok}}}},
		{name: "bad tool name", cfg: Config{Name: "x", Verifier: f.v, Tools: []Tool{{Name: "a/b", Handler: ok}}}},
		{name: "long tool name", cfg: Config{Name: "x", Verifier: f.v, Tools: []Tool{{Name: strings.Repeat("t", 129), Handler: ok}}}},
		{name: "duplicate tool", cfg: Config{Name: "x", Verifier: f.v, Tools: []Tool{good, good}}},
		{name: "no handler", cfg: Config{Name: "x", Verifier: f.v, Tools: []Tool{{Name: "t"}}}},
		{name: "schema array", cfg: Config{Name: "x", Verifier: f.v, Tools: []Tool{{Name: "t", Handler: ok, InputSchema: json.RawMessage(`[]`)}}}},
		{name: "schema null", cfg: Config{Name: "x", Verifier: f.v, Tools: []Tool{{Name: "t", Handler: ok, InputSchema: json.RawMessage(`null`)}}}},
		{name: "schema not JSON", cfg: Config{Name: "x", Verifier: f.v, Tools: []Tool{{Name: "t", Handler: ok, InputSchema: json.RawMessage(`{`)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) || s != nil {
				t.Fatalf("New: %v, %v; want ErrInvalidConfig", s, err)
			}
		})
	}
	if _, err := New(Config{Name: "ok.name-1", Verifier: f.v, Tools: []Tool{good}}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestCallToolResult(t *testing.T) {
	tests := []struct {
		name     string
		in       Result
		wantJSON string
		wantErr  bool
	}{
		{name: "text", in: Result{Text: "hi"}, wantJSON: `{"content":[{"type":"text","text":"hi"}]}`},
		{name: "empty", in: Result{}, wantJSON: `{"content":[]}`},
		{name: "structured only", in: Result{Structured: map[string]int{"n": 1}}, wantJSON: `{"content":[{"type":"text","text":"{\"n\":1}"}],"structuredContent":{"n":1}}`},
		{name: "both", in: Result{Text: "one", Structured: struct {
			N int `json:"n"`
		}{1}}, wantJSON: `{"content":[{"type":"text","text":"one"}],"structuredContent":{"n":1}}`},
		{name: "error", in: Result{Text: "bad input", IsError: true}, wantJSON: `{"content":[{"type":"text","text":"bad input"}],"isError":true}`},
		{name: "structured array", in: Result{Structured: []int{1}}, wantErr: true},
		{name: "structured nil pointer", in: Result{Structured: (*struct{})(nil)}, wantErr: true},
		{name: "structured string", in: Result{Structured: "x"}, wantErr: true},
		{name: "structured unmarshalable", in: Result{Structured: map[string]any{"c": make(chan int)}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := callToolResult(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %+v, want an error", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.wantJSON {
				t.Errorf("got %s\nwant %s", b, tc.wantJSON)
			}
		})
	}
}

func TestArguments(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		parsed  any
		want    string
		wantErr bool
	}{
		{name: "absent", want: `{}`},
		{name: "null", raw: `null`, want: `{}`},
		{name: "object", raw: ` {"a":1}`, want: `{"a":1}`},
		{name: "big integer kept", raw: `{"n":9007199254740993}`, want: `{"n":9007199254740993}`},
		{name: "parsed only", parsed: map[string]any{"a": "b"}, want: `{"a":"b"}`},
		{name: "array", raw: `[1]`, wantErr: true},
		{name: "string", raw: `"x"`, wantErr: true},
		{name: "number", raw: `1`, wantErr: true},
		{name: "parsed unmarshalable", parsed: func() {}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req mcpCallToolRequest
			req.Params.RawArguments = json.RawMessage(tc.raw)
			req.Params.Arguments = tc.parsed
			got, err := arguments(req)
			if tc.wantErr != (err != nil) {
				t.Fatalf("arguments: %s, %v", got, err)
			}
			if !tc.wantErr && string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestToolFailures checks that handler failures reach the client as errors
// that carry no internal detail, and bad arguments as a tool error result.
func TestToolFailures(t *testing.T) {
	f := newFixture(t, fixtureOpts{tools: func(*fixture) []Tool {
		return []Tool{
			{Name: "panics", Handler: func(context.Context, *resource.Caller, json.RawMessage) (Result, error) {
				panic("secret panic detail")
			}},
			{Name: "bad.result", Handler: func(context.Context, *resource.Caller, json.RawMessage) (Result, error) {
				return Result{Structured: []string{"secret list"}}, nil
			}},
			{Name: "echo", Handler: func(_ context.Context, _ *resource.Caller, args json.RawMessage) (Result, error) {
				return Result{Text: string(args)}, nil
			}},
		}
	}})
	tok := f.token("any")
	tests := []struct {
		name       string
		body       string
		rpcCode    int
		resultHas  string
		notInReply string
	}{
		{name: "panic", body: callBody("panics"), rpcCode: -32603, notInReply: "secret"},
		{name: "non-object structured result", body: callBody("bad.result"), rpcCode: -32603, notInReply: "secret"},
		{
			name:      "array arguments",
			body:      `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":[1,2]}}`,
			resultHas: `"isError":true`,
		},
		{
			name:      "no arguments",
			body:      `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}`,
			resultHas: `"text":"{}"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.post(tok, tc.body, map[string]string{"Mcp-Protocol-Version": legacyHdr})
			r := readRPC(t, resp)
			if tc.rpcCode != 0 {
				if r.Error == nil || r.Error.Code != tc.rpcCode {
					t.Fatalf("reply %s %+v, want error %d", r.Result, r.Error, tc.rpcCode)
				}
				if strings.Contains(r.Error.Message, tc.notInReply) {
					t.Errorf("error message %q leaks %q", r.Error.Message, tc.notInReply)
				}
				return
			}
			if r.Error != nil || !strings.Contains(string(r.Result), tc.resultHas) {
				t.Errorf("reply %s %+v, want a result with %s", r.Result, r.Error, tc.resultHas)
			}
		})
	}
}
