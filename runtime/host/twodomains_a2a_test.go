package host

import (
	"context"
	"crypto"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/a2a/a2aserver"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/wimse"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// TestFederatedWorkloadProof: an agent of host A (a.test) calls an agent
// hosted by B (b.test) over A2A with its WIT and a proof of it
// (a2a.remotes[].workload_proof). B verifies the WIT with the WIT
// authorities of A's federated bundle, and the proof with the WIT's key,
// and records the verified workload; a WIT of a domain B does not
// federate with is refused before the request reaches the agent.
func TestFederatedWorkloadProof(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dirA, dirB := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	addrB := freeAddr(t)
	issuerB := "http://" + addrB

	cfgB, err := config.Parse(filepath.Join(tmp, "b.yaml"), []byte("version: 1\ntrust_domain: b.test\nauth: {allow_private_fetch: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, bundleB := preparedCA(t, dirB, cfgB)

	// A: its agent front calls B's research agent as the remote
	// bresearch, on its own authority, with a workload proof.
	cfgA, err := config.Parse(filepath.Join(tmp, "a.yaml"), []byte("version: 1\ntrust_domain: a.test\nauth: {allow_private_fetch: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfgA.Listen.Address = "127.0.0.1:0"
	cfgA.Federation.TrustDomains = []config.FederatedDomainConfig{{Name: "b.test", BundleEndpoint: issuerB + PathSPIFFEBundle}}
	cfgA.A2A.Remotes = []config.A2ARemoteConfig{{Name: "bresearch", URL: issuerB + a2aserver.PathPrefix + "research",
		ActingAs: config.ActingAsAgent, TrustDomain: "b.test", BundleFile: writeFile(t, tmp, "b-bundle.json", bundleB),
		WorkloadProof: true}}
	cfgA.Agents = []config.AgentConfig{{Name: "front", Path: exe, CallAgents: []string{"bresearch"},
		Env: map[string]string{testAgentEnv: "caller"}}}
	hA := runHost(t, cfgA, dirA)

	// B: A's bundle from A's endpoint; A's agents admitted as clients.
	cfgB.Listen.Address = config.Address(addrB)
	cfgB.Federation.TrustDomains = []config.FederatedDomainConfig{{
		Name: "a.test", BundleEndpoint: hA.Issuer() + PathSPIFFEBundle,
		Clients: []config.FederatedClientConfig{{SPIFFEID: "spiffe://a.test/agent/*", Scopes: []string{"clock:read"}}},
	}}
	cfgB.Models = map[string]config.ModelConfig{"default": {Provider: config.ProviderOffline}}
	cfgB.Agents = []config.AgentConfig{{Name: "research", Path: exampleAgent(t, "research"), Model: "default",
		Tools: []string{"clock/now"}}}
	hB := runHost(t, cfgB, dirB)
	waitFederated(ctx, t, hB, "a.test")
	waitFederated(ctx, t, hA, "b.test")
	for _, w := range []struct {
		h     *Host
		agent string
	}{{hA, "front"}, {hB, "research"}} {
		if _, err := w.h.sup.WaitFor(ctx, w.agent, func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
			t.Fatal(err)
		}
	}

	final, failure, err := taskAnswer(ctx, hA, "front", "bresearch what time is it")
	if err != nil || failure != "" || !strings.Contains(final, "returned") {
		t.Fatalf("front's call of B's research: final %q, failure %q, err %v", final, failure, err)
	}
	front := "spiffe://a.test/agent/front"
	entries, err := hB.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	proven := false
	for _, e := range entries {
		if e.Record.Agent == "research" && strings.Contains(e.Record.Reason, "workload proof") && strings.Contains(e.Record.Reason, "by "+front+" verified") {
			proven = true
		}
	}
	if !proven {
		for _, e := range entries {
			b, _ := json.Marshal(e.Record)
			t.Log(string(b))
		}
		t.Fatalf("B's audit has no task of research reached with a workload proof by %s verified", front)
	}

	// A workload of c.test, which B does not federate with: its WIT and
	// proof are refused before the agent, whatever token it has, with 400
	// and problem details (WIMSE uses no WWW-Authenticate challenge).
	cCA, err := ca.New(ctx, ca.Config{TrustDomain: "c.test", Journal: &ca.MemoryJournal{}})
	if err != nil {
		t.Fatal(err)
	}
	wit, key, _, err := cCA.NewWITSVID(ctx, spiffeid.RequireFromString("spiffe://c.test/agent/intruder"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := wimse.NewTransport(wimse.TransportConfig{Credential: func(context.Context) (string, crypto.Signer, error) { return wit, key, nil }})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuerB+a2aserver.PathPrefix+"research",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"message/send","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid workload identity token") {
		t.Fatalf("a WIT of an unfederated domain at B: %d %s, want 400 invalid workload identity token", resp.StatusCode, body)
	}
	entries, err = hB.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, e := range entries {
		r := e.Record
		if r.Action == "a2a.request" && r.Decision == audit.DecisionDeny && strings.Contains(r.Reason, "invalid workload identity token") && strings.Contains(r.Reason, `"c.test"`) {
			refused = true
		}
	}
	if !refused {
		for _, e := range entries[max(0, len(entries)-5):] {
			b, _ := json.Marshal(e.Record)
			t.Log(string(b))
		}
		t.Error("B's audit has no refused a2a.request naming c.test")
	}
}
