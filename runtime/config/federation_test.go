package config_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

func TestFederation(t *testing.T) {
	dir := a2aDir(t)
	src := "version: 1\ntrust_domain: a.test\n" +
		"identity: {workload_api: 'unix:///run/spire/agent.sock'}\n" +
		"auth:\n  trusted_issuers:\n" +
		"    - {issuer: https://idp.example, access_tokens: true, audiences: ['api://agenthost'], scope_claim: scp, accept_jwt_typ: true}\n" +
		"    - {issuer: https://as.b.example, id_jag: true}\n" +
		"  id_jag:\n    - {issuer: https://as.b.example, scopes: [docs.read]}\n" +
		"federation:\n  trust_domains:\n" +
		"    - name: b.test\n      bundle_endpoint: https://b.example/spiffe/bundle\n      profile: https_spiffe\n" +
		"      endpoint_spiffe_id: spiffe://b.test/host\n      bundle_file: bundle.json\n" +
		"      peers: ['https://b.example:8443']\n" +
		"      clients:\n        - {spiffe_id: 'spiffe://b.test/agent/*', scopes: [docs.read]}\n" +
		"    - {name: c.test, bundle_endpoint: https://c.example/spiffe/bundle}\n" +
		"mcp:\n  remotes:\n    - {name: docs, url: https://docs.b.example/mcp, tools: [search], chaining: id_jag, client: {method: spiffe}}\n"
	c, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, ok := c.FederatedDomain("b.test")
	if !ok || b.EffectiveProfile() != config.ProfileHTTPSSPIFFE || b.BundleFile != filepath.Join(dir, "bundle.json") ||
		len(b.Clients) != 1 || b.Peers[0] != "https://b.example:8443" {
		t.Errorf("b.test: %+v", b)
	}
	if cd, _ := c.FederatedDomain("c.test"); cd.EffectiveProfile() != config.ProfileHTTPSWeb {
		t.Errorf("c.test profile %q", cd.EffectiveProfile())
	}
	if c.Identity.WorkloadAPI != "unix:///run/spire/agent.sock" || len(c.Auth.TrustedIssuers) != 2 || c.Auth.IDJAG[0].Issuer != "https://as.b.example" {
		t.Errorf("identity/auth: %+v %+v", c.Identity, c.Auth.TrustedIssuers)
	}
	if r := c.MCP.Remotes[0]; r.Chaining != config.ChainingIDJAG || r.Client.Method != config.ClientMethodSPIFFE {
		t.Errorf("remote: %+v", r)
	}

	plain, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte("version: 1\nfederation: {trust_domains: []}\n"))
	if err != nil || empty.Digest() != plain.Digest() {
		t.Errorf("an empty federation section changed the digest: %v", err)
	}
}

func TestFederationProblems(t *testing.T) {
	dir := a2aDir(t)
	tests := []struct{ name, src, want string }{
		{"own domain", "federation: {trust_domains: [{name: agenthost.local, bundle_endpoint: https://x.example/b}]}", "own trust domain"},
		{"bad name", "federation: {trust_domains: [{name: B.test, bundle_endpoint: https://x.example/b}]}", "not a trust domain name"},
		{"no endpoint", "federation: {trust_domains: [{name: b.test}]}", "bundle_endpoint: is required"},
		{"http endpoint", "federation: {trust_domains: [{name: b.test, bundle_endpoint: http://x.example/b}]}", "must be https"},
		{"duplicate", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b}, {name: b.test, bundle_endpoint: https://y.example/b}]}", "already federated"},
		{"spiffe without id", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, profile: https_spiffe, bundle_file: bundle.json}]}", "endpoint_spiffe_id: is required"},
		{"spiffe id of other domain", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, profile: https_spiffe, endpoint_spiffe_id: 'spiffe://c.test/host', bundle_file: bundle.json}]}", "endpoint_spiffe_id"},
		{"spiffe without bundle", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, profile: https_spiffe, endpoint_spiffe_id: 'spiffe://b.test/host'}]}", "bundle_file: is required"},
		{"not a bundle", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, bundle_file: notes.txt}]}", "not a SPIFFE trust bundle"},
		{"bad profile", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, profile: https_plain}]}", "profile"},
		{"http peer", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, peers: ['http://b.example']}]}", "must be https"},
		{"client of other domain", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, clients: [{spiffe_id: 'spiffe://c.test/agent/x', scopes: [a]}]}]}", "not a SPIFFE ID"},
		{"client prefix without slash", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, clients: [{spiffe_id: 'spiffe://b.test/agent*', scopes: [a]}]}]}", "not a SPIFFE ID"},
		{"client without scopes", "federation: {trust_domains: [{name: b.test, bundle_endpoint: https://x.example/b, clients: [{spiffe_id: 'spiffe://b.test/agent/x'}]}]}", "lists no scopes"},
		{"workload api relative", "identity: {workload_api: 'unix://agent.sock'}", "unix:///absolute/path"},
		{"workload api name", "identity: {workload_api: 'tcp://spire:8081'}", "tcp://ip:port"},
		{"workload api scheme", "identity: {workload_api: '/run/agent.sock'}", "not unix:///path"},
		{"issuer trusted for nothing", "auth: {trusted_issuers: [{issuer: https://idp.example}]}", "trusts the issuer for nothing"},
		{"issuer http", "auth: {trusted_issuers: [{issuer: http://idp.example, access_tokens: true}]}", "must be https"},
		{"scope claim", "auth: {trusted_issuers: [{issuer: https://idp.example, access_tokens: true, scope_claim: roles}]}", "neither scope nor scp"},
		{"audiences without access tokens", "auth: {trusted_issuers: [{issuer: https://idp.example, id_jag: true, audiences: [x]}]}", "apply to access_tokens only"},
		{"chaining without id_jag", "mcp: {remotes: [{name: d, url: https://d.example/mcp, tools: [t], chaining: id_jag}]}", "auth.id_jag"},
		{"id_jag without scopes", "auth: {id_jag: [{issuer: https://as.example}]}", "lists no scopes"},
		{"chaining as agent", "auth: {id_jag: [{issuer: https://as.example, scopes: [a]}]}\nmcp: {remotes: [{name: d, url: https://d.example/mcp, tools: [t], chaining: id_jag, acting_as: agent}]}", "acting_as: agent"},
		{"static without key", "mcp: {remotes: [{name: d, url: https://d.example/mcp, tools: [t], client: {method: static, id: x}}]}", "needs id and key_file"},
		{"cimd on http issuer", "mcp: {remotes: [{name: d, url: https://d.example/mcp, tools: [t], client: {method: cimd}}]}", "must be https"},
		{"svid and files", "listen: {tls: {svid: true, cert_file: bundle.json, key_file: bundle.json}}", "remove cert_file"},
		{"peers without svid", "listen: {tls: {cert_file: bundle.json, key_file: bundle.json, peers: ['spiffe://b.test']}}", "svid: true only"},
		{"bad peer", "listen: {tls: {svid: true, peers: ['https://b.test']}}", "neither a SPIFFE ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte("version: 1\n"+tt.src+"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, config.ErrInvalid) && !strings.Contains(err.Error(), "profile") {
				t.Errorf("%v is not ErrInvalid", err)
			}
		})
	}
	for _, ok := range []string{
		"identity: {workload_api: 'tcp://127.0.0.1:8081'}",
		"listen: {tls: {svid: true, peers: ['spiffe://b.test', 'spiffe://b.test/host']}}",
	} {
		if _, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte("version: 1\n"+ok+"\n")); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}
