package mcpserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// BenchmarkMediatedVsDirect measures what the auth layer adds to a
// tools/call over loopback HTTP: "direct" is a bare mcp-go streamable
// server with no authentication; "mediated" is this package's server with
// token verification (ES256, at+jwt, aud, exp), the scope check, a policy
// hook and an audit record (JSON with the arguments' SHA-256, appended in
// memory: a durable store adds its own commit, see runtime/store's
// benchmarks). Both run the same tool. Each reports its p50:
//
//	go test -run '^$' -bench MediatedVsDirect ./mcp/mcpserver
func BenchmarkMediatedVsDirect(b *testing.B) {
	handler := func(context.Context, json.RawMessage) string { return "ok" }

	direct := func(b *testing.B) (*httptest.Server, string) {
		ms := server.NewMCPServer("bench", "1.0.0", server.WithToolCapabilities(false))
		ms.AddTool(mcp.NewTool("echo", mcp.WithDescription("echo")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(handler(ctx, nil)), nil
		})
		return httptest.NewServer(server.NewStreamableHTTPServer(ms, server.WithStateLess(true))), ""
	}
	mediated := func(b *testing.B) (*httptest.Server, string) {
		f := newFixture(b, fixtureOpts{tools: func(f *fixture) []Tool {
			var mu sync.Mutex
			var log [][]byte
			return []Tool{{Name: "echo", Scope: "notes:read", Handler: func(ctx context.Context, c *resource.Caller, args json.RawMessage) (Result, error) {
				sum := sha256.Sum256(args)
				rec, _ := json.Marshal(map[string]any{"time": time.Now(), "subject": c.Subject, "client": c.ClientID,
					"action": "tools/call", "tool": "echo", "args_sha256": sum, "decision": "allow"})
				mu.Lock()
				log = append(log, rec)
				mu.Unlock()
				return Result{Text: handler(ctx, args)}, nil
			}}}
		}})
		return f.srv, f.token("notes:read")
	}
	for _, bc := range []struct {
		name  string
		setup func(*testing.B) (*httptest.Server, string)
		path  string
	}{{"direct", direct, ""}, {"mediated", mediated, "/mcp/" + serverName}} {
		b.Run(bc.name, func(b *testing.B) {
			srv, tok := bc.setup(b)
			defer srv.Close()
			client := srv.Client()
			body := []byte(callBody("echo"))
			lat := make([]time.Duration, 0, 1024)
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+bc.path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", legacyHdr)
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"text":"ok"`)) {
					b.Fatalf("status %d: %s", resp.StatusCode, out)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		})
	}
}
