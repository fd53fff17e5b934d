package host

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mcphost"
)

// preparedCA creates the trust-domain CA a host on dataDir will load, so
// that its bundle is known before the host starts (the bundle_file
// another domain bootstraps an https_spiffe endpoint with).
func preparedCA(t *testing.T, dataDir string, cfg *config.Config) (*ca.CA, []byte) {
	t.Helper()
	dir := filepath.Join(dataDir, caDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	j, err := ca.NewFileJournal(filepath.Join(dir, caJournalName))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.New(context.Background(), ca.Config{TrustDomain: cfg.TrustDomain, Journal: j,
		SVIDTTL: cfg.Identity.SVIDTTL, CATTL: cfg.Identity.CATTL})
	if err != nil {
		t.Fatal(err)
	}
	return c, c.BundleJSON()
}

// freeAddr is a loopback address no one listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTwoTrustDomains: two hosts, trust domains a.test and b.test,
// federate their bundles. alice, signed in at A, asks A's research agent
// for the time at bdocs, a tool of an MCP server hosted by B and
// protected by B's authorization server, which trusts A's issuer for
// ID-JAGs only and admits A's agents as clients by their JWT-SVIDs.
// research gets an ID-JAG for alice from A's server and redeems it at
// B's; the connection from A's agent to B is mutual TLS with SVIDs of
// both domains. B's audit names alice, A's agent and A's issuer. A
// workload of a trust domain B does not federate with is refused at the
// handshake.
func TestTwoTrustDomains(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	tmp := t.TempDir()
	dirA, dirB := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	addrB := freeAddr(t)
	issuerB := "https://" + addrB

	cfgB, err := config.Parse(filepath.Join(tmp, "b.yaml"), []byte("version: 1\ntrust_domain: b.test\nauth: {allow_private_fetch: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, bundleB := preparedCA(t, dirB, cfgB)

	// A: plain HTTP on loopback (its users sign in with a browser); it
	// federates with B over B's https_spiffe endpoint, bootstrapped with
	// B's bundle, and B's origin is a peer its agents reach with SVIDs.
	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfgA, err := config.Parse(filepath.Join(tmp, "a.yaml"), []byte("version: 1\ntrust_domain: a.test\nauth: {allow_private_fetch: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfgA.Listen.Address = "127.0.0.1:0"
	cfgA.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfgA.Auth.IDJAG = []config.IDJAGAudienceConfig{{Issuer: issuerB, Scopes: []string{"clock:read"}}}
	cfgA.Federation.TrustDomains = []config.FederatedDomainConfig{{
		Name: "b.test", BundleEndpoint: issuerB + PathSPIFFEBundle, Profile: config.ProfileHTTPSSPIFFE,
		EndpointSPIFFEID: "spiffe://b.test/host", BundleFile: writeFile(t, tmp, "b-bundle.json", bundleB),
		Peers: []string{issuerB},
	}}
	cfgA.Models = map[string]config.ModelConfig{"default": {Provider: config.ProviderOffline}}
	cfgA.MCP.Remotes = []config.MCPRemoteConfig{{Name: "bdocs", URL: issuerB + "/mcp/docs", Tools: []string{"now"},
		ActingAs: config.ActingAsUser, Chaining: config.ChainingIDJAG}}
	cfgA.Agents = []config.AgentConfig{{Name: "research", Path: exampleAgent(t, "research"), Model: "default",
		Tools: []string{"bdocs/now"}, Scopes: []string{"clock:read"}}}
	hA := runHost(t, cfgA, dirA)
	issuerA := hA.Issuer()

	// B: SVID TLS; A's bundle over https_web from A's loopback endpoint;
	// A's issuer trusted for ID-JAGs; A's agents admitted as clients.
	cfgB.Listen.Address = config.Address(addrB)
	cfgB.Listen.TLS = &config.TLSConfig{SVID: true}
	cfgB.Auth.TrustedIssuers = []config.TrustedIssuerConfig{{Issuer: issuerA, IDJAG: true}}
	cfgB.Federation.TrustDomains = []config.FederatedDomainConfig{{
		Name: "a.test", BundleEndpoint: issuerA + PathSPIFFEBundle,
		Clients: []config.FederatedClientConfig{{SPIFFEID: "spiffe://a.test/agent/*", Scopes: []string{"clock:read"}}},
	}}
	cfgB.MCP.Servers = []config.MCPServerConfig{{Name: "docs", Tools: []string{"clock/now"}}}
	hB := runHost(t, cfgB, dirB)
	if hB.Issuer() != issuerB {
		t.Fatalf("B's issuer %s, want %s", hB.Issuer(), issuerB)
	}
	waitFederated(ctx, t, hB, "a.test")
	waitAllRunning(ctx, t, dirA, 1)

	alice := signIn(t, hA, "alice", "alice-pw", TaskResource(issuerA)).AccessToken
	var final, failure string
	err = hA.RunTask(ctx, localapi.TaskRequest{Agent: "research", Input: "what time is it now at bdocs", AccessToken: alice},
		func(ev localapi.TaskEvent) error {
			switch ev.Type {
			case "final":
				final = ev.Text
			case "error":
				failure = ev.Text
			}
			return nil
		})
	if err != nil || failure != "" || !strings.Contains(final, "returned") {
		t.Fatalf("task: final %q, failure %q, err %v", final, failure, err)
	}

	// B's audit: the token B issued for the ID-JAG, and the tool call,
	// name alice, A's agent and A's issuer.
	entries, err := hB.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	research := "spiffe://a.test/agent/research"
	var issued, called bool
	for _, e := range entries {
		r := e.Record
		switch {
		case r.Action == audit.ActionTokenIssue && r.AgentID == research:
			issued = r.Subject == "alice" && strings.Contains(r.Reason, "jwt-bearer") &&
				strings.Contains(r.Reason, "subject alice of "+issuerA) && slices.Contains(r.Chain, research)
			if !issued {
				t.Errorf("B's token record: %+v", r)
			}
		case r.Action == mcphost.ActionToolCall:
			called = r.Subject == "alice" && r.AgentID == research && r.Decision == audit.DecisionAllow
			if !called {
				t.Errorf("B's tool call record: %+v", r)
			}
		}
	}
	if !issued || !called {
		t.Fatalf("B's audit has no token record (%v) or no tool call record (%v) naming alice and %s", issued, called, research)
	}
	// A's audit records the ID-JAG it issued, for B's issuer.
	entries, err = hA.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e audit.Entry) bool {
		return e.Record.Action == audit.ActionTokenIssue && e.Record.Resource == issuerB && strings.HasPrefix(e.Record.Reason, "id-jag")
	}) {
		t.Error("A's audit has no record of the ID-JAG for B")
	}

	// A workload of c.test, which B does not federate with, presenting
	// its SVID is refused at the handshake; without a certificate the
	// connection is accepted (OAuth clients need none).
	cCA, err := ca.New(ctx, ca.Config{TrustDomain: "c.test", Journal: &ca.MemoryJournal{}})
	if err != nil {
		t.Fatal(err)
	}
	svid, err := cCA.NewX509SVID(ctx, spiffeid.RequireFromString("spiffe://c.test/agent/intruder"))
	if err != nil {
		t.Fatal(err)
	}
	bTD := spiffeid.RequireTrustDomainFromString("b.test")
	roots := hB.ident.Bundle().X509Bundle()
	clientTLS := tlsconfig.MTLSClientConfig(svidSource{svid}, roots, tlsconfig.AuthorizeMemberOf(bTD))
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}).Get(issuerB + PathSPIFFEBundle)
	if err == nil {
		resp.Body.Close()
		t.Fatal("B accepted a client SVID of an unfederated trust domain")
	}
	entries, err = hB.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e audit.Entry) bool {
		return e.Record.Action == actionTLSPeer && e.Record.Resource == "spiffe://c.test/agent/intruder" && e.Record.Decision == audit.DecisionDeny
	}) {
		t.Error("B's audit has no record of the refused TLS peer")
	}
	plainTLS := tlsconfig.TLSClientConfig(roots, tlsconfig.AuthorizeMemberOf(bTD))
	resp, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: plainTLS}}).Get(issuerB + PathSPIFFEBundle)
	if err != nil {
		t.Fatalf("a client without a certificate: %v", err)
	}
	resp.Body.Close()

	// An assertion B cannot verify, from A's agent authenticated by its
	// JWT-SVID, is refused as invalid_grant and audited at B.
	assertion, _, err := hA.CA().NewJWTSVID(ctx, spiffeid.RequireFromString(research), []string{issuerB})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {oauth.GrantJWTBearer}, "assertion": {"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"},
		"client_id": {research}, "client_assertion_type": {oauth.AssertionJWTSPIFFE}, "client_assertion": {assertion}}
	resp, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: plainTLS}}).PostForm(issuerB+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), oauth.CodeInvalidGrant) {
		t.Fatalf("a forged grant at B: %d %s", resp.StatusCode, body)
	}
	entries, err = hB.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e audit.Entry) bool {
		r := e.Record
		return r.Action == audit.ActionTokenIssue && r.Decision == audit.DecisionDeny && r.AgentID == research &&
			strings.HasPrefix(r.Reason, "jwt-bearer grant refused: invalid_grant")
	}) {
		t.Error("B's audit has no record of the refused grant")
	}
}

// svidSource presents one X.509-SVID.
type svidSource struct{ svid *x509svid.SVID }

func (s svidSource) GetX509SVID() (*x509svid.SVID, error) { return s.svid, nil }

// waitFederated waits until h holds a bundle of trust domain td.
func waitFederated(ctx context.Context, t *testing.T, h *Host, td string) {
	t.Helper()
	for {
		if _, err := h.federation.GetBundleForTrustDomain(spiffeid.RequireTrustDomainFromString(td)); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no bundle of %s: %v", td, h.federation.Status())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
