package host

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store/pgstore/pgtest"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// BenchmarkHostToolsCall measures a tools/call on a hosted MCP server of a
// whole host, over loopback HTTP with a cached access token: token
// verification, scope, Cedar policy, a durable decision record before the
// tool runs, the tool, and a durable outcome record (SQLite,
// synchronous=FULL) before the answer. "direct" is a bare mcp-go
// streamable server with the same tool and no authentication. Each
// reports its p50:
//
//	go test -run '^$' -bench HostToolsCall -benchtime 2000x ./runtime/host
func BenchmarkHostToolsCall(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"now","arguments":{}}}`)
	run := func(b *testing.B, url, token string) {
		client := &http.Client{}
		lat := make([]time.Duration, 0, 1024)
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"text":"`)) || bytes.Contains(out, []byte(`"isError":true`)) {
				b.Fatalf("status %d: %s", resp.StatusCode, out)
			}
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	}
	b.Run("direct", func(b *testing.B) {
		ms := server.NewMCPServer("bench", "1.0.0", server.WithToolCapabilities(false))
		ms.AddTool(mcp.NewTool("now", mcp.WithDescription("now")), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(time.Now().UTC().Format(time.RFC1123)), nil
		})
		srv := httptest.NewServer(server.NewStreamableHTTPServer(ms, server.WithStateLess(true)))
		defer srv.Close()
		run(b, srv.URL, "")
	})
	b.Run("host", func(b *testing.B) {
		_, dir, pdir := policyFixture(b, "p.cedar")
		hash, err := userauth.HashPassword("pep-secret")
		if err != nil {
			b.Fatal(err)
		}
		cfg := testConfig(b)
		cfg.Policy.Dir = pdir
		cfg.Auth.Clients = []config.ClientConfig{{ID: "pep", AuthMethod: config.AuthMethodClientSecretPost, SecretHash: hash,
			GrantTypes: []config.GrantType{config.GrantClientCredentials}, Scopes: []string{"clock:read"}}}
		cfg.MCP.Servers = []config.MCPServerConfig{{Name: "clock", Tools: []string{"clock/now"}}}
		h := runHost(b, cfg, filepath.Join(dir, "data"))
		endpoint := h.Issuer() + "/mcp/clock"
		token := clientToken(b, h.Issuer(), endpoint, "clock:read")
		b.Run("workers=1", func(b *testing.B) { run(b, endpoint, token) })
		// 64 concurrent callers: calls/s counts answered calls.
		b.Run("workers=64", func(b *testing.B) {
			b.SetParallelism(32) // × GOMAXPROCS 2
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				client := &http.Client{}
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					out, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"isError":true`)) {
						b.Errorf("status %d: %s", resp.StatusCode, out)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	})
}

// BenchmarkA2ADelegation: one delegation between hosted agents, the
// called agent answering at once. "a2a" is what a CallAgent does now: the
// calling agent's token for the called agent's URL (cached after the
// first), the hop's Txn-Token and WPT, the A2A server's checks, the task;
// "in-process" runs the same task directly, as delegation did before it
// went over A2A.
func BenchmarkA2ADelegation(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(b)
	cfg.Agents = []config.AgentConfig{
		{Name: "research", Path: exe, Env: map[string]string{testAgentEnv: "1"}},
		{Name: "assistant", Path: exe, Env: map[string]string{testAgentEnv: "1"}, CallAgents: []string{"research"}},
	}
	h := runHost(b, cfg, filepath.Join(b.TempDir(), "data"))
	ctx := context.Background()
	for _, a := range []string{"research", "assistant"} {
		if _, err := h.sup.WaitFor(ctx, a, func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
			b.Fatal(err)
		}
	}
	// The delegating task: assistant's, with its transaction.
	txn, err := h.beginTxn(ctx, "assistant", taskSubject{})
	if err != nil {
		b.Fatal(err)
	}
	parent := mediator.Caller{Agent: "assistant", Identity: h.agentIDs["assistant"], TaskID: "task-bench", Txn: txn.txn}
	h.taskMu.Lock()
	h.running[parent.TaskID] = runningTask{caller: parent, cancel: func(error) {}, txn: txn}
	h.taskMu.Unlock()
	b.Run("a2a", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.delegate(ctx, "research", "who am i", parent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-process", func(b *testing.B) {
		b.ReportAllocs()
		c := mediator.Caller{Txn: parent.Txn, ParentTask: parent.TaskID, Chain: []string{"assistant"}}
		for b.Loop() {
			done := false
			tok, err := (txnSource{h}).TxnToken(ctx, parent, txntoken.Object{}, mediator.TxnRequestContext(parent))
			if err != nil {
				b.Fatal(err)
			}
			claims, err := h.verifyTxnToken(ctx, tok)
			if err != nil {
				b.Fatal(err)
			}
			err = h.runTask(ctx, "research", "who am i", c, nil, h.continuedTxn("research", tok, claims), func(ev localapi.TaskEvent) error {
				done = done || ev.Type == "final"
				return nil
			})
			if err != nil || !done {
				b.Fatal(err, done)
			}
		}
	})
}

// BenchmarkTokenEndpointStores: the token endpoint (client_credentials,
// private_key_jwt with ES256, the assertion's jti kept against replay and
// the issuance audited, durably) over loopback on a host whose store is
// SQLite or PostgreSQL, with 1 and 32 clients, and PostgreSQL with two
// hosts taking the requests in turn. The figure to compare is req/s.
func BenchmarkTokenEndpointStores(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	jwks, err := jose.MarshalKeySet([]jose.SetKey{{KID: "svc-1", Key: key.Public(), Alg: "ES256"}})
	if err != nil {
		b.Fatal(err)
	}
	jwksFile := filepath.Join(b.TempDir(), "svc.jwks")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		b.Fatal(err)
	}
	assertions, err := oauth.PrivateKeyJWT("svc", key, "svc-1", nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, clients int, hosts ...*Host) {
		b.Helper()
		iss := hosts[0].Issuer()
		var next atomic.Int64
		post := func(c *http.Client) {
			h := hosts[int(next.Add(1))%len(hosts)]
			a, err := assertions(context.Background(), iss)
			if err != nil {
				b.Error(err)
				return
			}
			form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {oauth.AssertionJWTBearer},
				"client_assertion": {a}, "resource": {TaskResource(iss)}}.Encode()
			resp, err := c.Post("http://"+h.Addr()+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form))
			if err != nil {
				b.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d: %s", resp.StatusCode, body)
			}
		}
		b.ResetTimer()
		start := time.Now()
		if clients == 1 {
			c := &http.Client{}
			for b.Loop() {
				post(c)
			}
		} else {
			b.SetParallelism(max(clients/runtime.GOMAXPROCS(0), 1))
			b.RunParallel(func(pb *testing.PB) {
				c := &http.Client{}
				for pb.Next() {
					post(c)
				}
			})
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	}
	newHost := func(b *testing.B, pg bool, issuer string) *Host {
		cfg := testConfig(b)
		if issuer != "" {
			cfg = issuerConfig(b, issuer)
		}
		cfg.Auth.Clients = []config.ClientConfig{{ID: "svc", AuthMethod: config.AuthMethodPrivateKeyJWT, JWKSFile: jwksFile,
			GrantTypes: []config.GrantType{config.GrantClientCredentials}}}
		if pg {
			// Hosts of one deployment share the database and the audit
			// log's signing key.
			cfg.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: "AGENTHOST_BENCH_DSN"}
			cfg.Audit.SigningKeyEnv = "AGENTHOST_BENCH_AUDIT_KEY"
		}
		return runHost(b, cfg, filepath.Join(b.TempDir(), "data"))
	}
	for _, store := range []string{"sqlite", "postgres"} {
		b.Run("store="+store, func(b *testing.B) {
			if store == "postgres" {
				b.Setenv("AGENTHOST_BENCH_DSN", pgtest.NewDatabase(b))
				skey, _, err := audit.GenerateKey(rand.Reader, "test.local")
				if err != nil {
					b.Fatal(err)
				}
				b.Setenv("AGENTHOST_BENCH_AUDIT_KEY", skey)
			}
			h := newHost(b, store == "postgres", "")
			for _, clients := range []int{1, 32} {
				b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { run(b, clients, h) })
			}
			if store == "postgres" {
				// Both hosts answer for the first one's issuer, as
				// behind a load balancer.
				h2 := newHost(b, true, h.Issuer())
				b.Run("hosts=2/clients=32", func(b *testing.B) { run(b, 32, h, h2) })
			}
		})
	}
}
