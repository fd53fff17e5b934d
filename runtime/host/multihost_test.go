package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/signals"
	"github.com/agenthost/agenthost/runtime/store/pgstore/pgtest"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// twoHosts runs two hosts of one deployment: one PostgreSQL database, the
// same trust domain, issuer and audit signing key, each with its own data
// directory, listener and agent plugins (a "waiter" each).
func twoHosts(t *testing.T, ctx context.Context) (h1, h2 *Host) {
	t.Helper()
	t.Setenv("AGENTHOST_TEST_MULTI_DSN", pgtest.NewDatabase(t))
	skey, _, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGENTHOST_TEST_MULTI_AUDIT_KEY", skey)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	// Both hosts answer for one issuer (as behind a load balancer): the
	// first host's address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := l.Addr().String()
	l.Close()
	// A client that authenticates by private_key_jwt, for the replay check.
	svcKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := jose.MarshalKeySet([]jose.SetKey{{KID: "svc-1", Key: svcKey.Public(), Alg: "ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(t.TempDir(), "svc.jwks")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	multiSvcKey = svcKey
	hosts := make([]*Host, 2)
	for i := range hosts {
		cfg := issuerConfig(t, "http://"+first)
		if i == 0 {
			cfg.Listen.Address = config.Address(first)
		}
		cfg.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: "AGENTHOST_TEST_MULTI_DSN"}
		cfg.Audit.SigningKeyEnv = "AGENTHOST_TEST_MULTI_AUDIT_KEY"
		cfg.Auth.Users = []config.UserConfig{{Name: "alice", Email: "alice@example.com", PasswordHash: hash}}
		cfg.Agents = []config.AgentConfig{{Name: "waiter", Path: exe, Env: map[string]string{testAgentEnv: "wait"}}}
		cfg.Auth.Clients = []config.ClientConfig{{ID: "svc", AuthMethod: config.AuthMethodPrivateKeyJWT, JWKSFile: jwksFile,
			GrantTypes: []config.GrantType{config.GrantClientCredentials}}}
		hosts[i] = runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
		if _, err := hosts[i].sup.WaitFor(ctx, "waiter", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
			t.Fatal(err)
		}
	}
	return hosts[0], hosts[1]
}

// TestTwoHostsActAsOne: two hosts on one database are one deployment. A
// refresh token rotated through one host and replayed through the other
// revokes its family on both; a session-revoked signal acted on by one
// host stops the user's task running on the other within a second.
func TestTwoHostsActAsOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h1, h2 := twoHosts(t, ctx)

	// Refresh-token reuse across hosts.
	sess := signIn(t, h1, "alice", "alice-pw", TaskResource(h1.Issuer()))
	refresh := func(h *Host, rt string) (int, map[string]any) {
		resp, err := http.PostForm("http://"+h.Addr()+"/oauth2/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {rt}, "client_id": {CLIClientID}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	old := sess.RefreshToken
	st, rotated := refresh(h1, old)
	if st != http.StatusOK || rotated["refresh_token"] == nil {
		t.Fatalf("rotation through host 1: %d %v", st, rotated)
	}
	if st, out := refresh(h2, old); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("the old refresh token replayed through host 2: %d %v", st, out)
	}
	if st, out := refresh(h1, rotated["refresh_token"].(string)); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("the family after the replay, through host 1: %d %v", st, out)
	}

	// A client assertion used at host 1 is refused at host 2 (one replay
	// cache for the deployment).
	source, err := oauth.PrivateKeyJWT("svc", multiSvcKey, "svc-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := source(ctx, h1.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	withAssertion := func(h *Host) (int, map[string]any) {
		resp, err := http.PostForm("http://"+h.Addr()+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
			"client_assertion_type": {oauth.AssertionJWTBearer}, "client_assertion": {assertion}, "resource": {TaskResource(h1.Issuer())}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, out := withAssertion(h1); st != http.StatusOK {
		t.Fatalf("the assertion at host 1: %d %v", st, out)
	}
	if st, out := withAssertion(h2); st != http.StatusUnauthorized || out["error"] != "invalid_client" ||
		!strings.Contains(out["error_description"].(string), "already used") {
		t.Fatalf("the assertion replayed at host 2: %d %v", st, out)
	}

	// A signal on host 1 stops alice's task on host 2.
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		once := false
		done <- h2.RunTask(ctx, localapi.TaskRequest{Agent: "waiter", Input: "wait", Subject: "alice"}, func(ev localapi.TaskEvent) error {
			if !once && ev.Type == "thought" {
				once = true
				close(started)
			}
			return nil
		})
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("alice's task on host 2 did not start")
	}
	sent := time.Now()
	if err := h1.HandleSignal(ctx, "idp", signals.Event{Type: signals.EventSessionRevoked,
		Subject: signals.Subject{Format: signals.FormatEmail, Email: "alice@example.com"}, EventTimestamp: sent,
		ReasonAdmin: map[string]string{"en": "account compromised"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		latency := time.Since(sent)
		if !errors.Is(err, ErrTaskStopped) {
			t.Fatalf("alice's task on host 2 ended with %v", err)
		}
		t.Logf("a session-revoked signal on host 1 stopped alice's task on host 2 in %v", latency)
		if latency > time.Second {
			t.Errorf("fan-out took %v, want under a second", latency)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alice's task on host 2 did not stop")
	}

	// Both hosts' records are one log that verifies from either.
	for i, h := range []*Host{h1, h2} {
		v, err := h.AuditVerify(ctx)
		if err != nil || v.Report.Problem != nil {
			t.Fatalf("audit verify on host %d: %+v, %v", i+1, v.Report, err)
		}
	}
}

// multiSvcKey is the private key of twoHosts' client "svc".
var multiSvcKey *ecdsa.PrivateKey

// issuerConfig is testConfig with listen.issuer set, as a deployment's
// hosts behind one address have.
func issuerConfig(t testing.TB, issuer string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte("version: 1\ntrust_domain: test.local\nlisten:\n  address: 127.0.0.1:8420\n  issuer: "+issuer+"\n"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Listen.Address = "127.0.0.1:0" // any free port
	return cfg
}
