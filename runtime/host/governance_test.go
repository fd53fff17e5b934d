package host

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/signals"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// clientToken gets a client_credentials token for the static client pep.
func clientToken(t testing.TB, issuer, resource, scope string) string {
	t.Helper()
	resp, err := http.PostForm(issuer+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"pep"},
		"client_secret": {"pep-secret"}, "resource": {resource}, "scope": {scope}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 || body.AccessToken == "" {
		t.Fatalf("token for %s: %d %v", resource, resp.StatusCode, err)
	}
	return body.AccessToken
}

func call(t *testing.T, method, u, token, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestHostServesAuthZENAndSSF: other enforcement points ask the host's
// policies over AuthZEN with a token scoped authzen:evaluate, and a client
// with a token scoped ssf:manage subscribes to the host's SSF stream and
// receives a signed session-revoked SET when an agent is quarantined.
func TestHostServesAuthZENAndSSF(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exe, dir, pdir := policyFixture(t, "p.cedar")
	hash, err := userauth.HashPassword("pep-secret")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Policy = config.PolicyConfig{Dir: pdir, ServeAuthZEN: true}
	cfg.Signals.Transmitter = true
	cfg.Auth.Clients = []config.ClientConfig{{ID: "pep", AuthMethod: config.AuthMethodClientSecretPost, SecretHash: hash,
		GrantTypes: []config.GrantType{config.GrantClientCredentials}, Scopes: []string{ScopeAuthZEN, ScopeSSFManage}}}
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}}}
	h := runHost(t, cfg, filepath.Join(dir, "data"))
	iss := h.Issuer()

	// AuthZEN: no token → 401 with a challenge; the right token → decisions.
	eval := `{"subject":{"type":"agent","id":"research"},"action":{"name":"tool.call"},"resource":{"type":"tool","id":"%s"}}`
	if st, _, hdr := call(t, http.MethodPost, iss+"/access/v1/evaluation", "", strings.Replace(eval, "%s", "clock/now", 1)); st != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), `resource_metadata="`+iss+`/.well-known/oauth-protected-resource/access/v1"`) {
		t.Fatalf("evaluation without a token: %d %v", st, hdr)
	}
	pdpTok := clientToken(t, iss, h.pdpResource(), ScopeAuthZEN)
	for tool, want := range map[string]string{"clock/now": `"decision":true`, "notes/search": `"decision":false`} {
		st, body, _ := call(t, http.MethodPost, iss+"/access/v1/evaluation", pdpTok, strings.Replace(eval, "%s", tool, 1))
		if st != 200 || !strings.Contains(body, want) {
			t.Fatalf("evaluation of %s: %d %s", tool, st, body)
		}
	}
	// A token for another API does not work here.
	ssfTok := clientToken(t, iss, h.ssfResource(), ScopeSSFManage)
	if st, _, _ := call(t, http.MethodPost, iss+"/access/v1/evaluation", ssfTok, strings.Replace(eval, "%s", "clock/now", 1)); st != 401 {
		t.Fatalf("evaluation with the SSF token: %d", st)
	}

	// SSF: metadata, a poll stream, a quarantine, the SET.
	md, err := signals.DiscoverTransmitter(ctx, fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true}), iss)
	if err != nil {
		t.Fatal(err)
	}
	st, body, _ := call(t, http.MethodPost, md.ConfigurationEndpoint, ssfTok,
		`{"delivery":{"method":"`+signals.DeliveryPoll+`"},"events_requested":["`+signals.EventSessionRevoked+`","`+signals.EventCredentialChange+`"]}`)
	if st != 201 && st != 200 {
		t.Fatalf("create stream: %d %s", st, body)
	}
	var stream signals.StreamConfig
	if err := json.Unmarshal([]byte(body), &stream); err != nil || stream.Delivery == nil || stream.Delivery.EndpointURL == "" {
		t.Fatalf("stream %s: %v", body, err)
	}
	// The stream is in the store, so it outlives a restart.
	if _, err := h.store.Get(ctx, nsStreams, stream.StreamID); err != nil {
		t.Fatalf("the stream is not in the store: %v", err)
	}
	if st, _, hdr := call(t, http.MethodPost, md.ConfigurationEndpoint, pdpTok, `{}`); st != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("stream creation with the AuthZEN token: %d %v", st, hdr)
	}
	if st, _, hdr := call(t, http.MethodGet, md.ConfigurationEndpoint, "", ""); st != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), "/.well-known/oauth-protected-resource/ssf") {
		t.Fatalf("stream listing without a token: %d %v", st, hdr)
	}
	if st, body, _ := call(t, http.MethodGet, md.JWKSURI, "", ""); st != 200 || !strings.Contains(body, `"keys"`) {
		t.Fatalf("the transmitter's keys are not public: %d %s", st, body)
	}
	if _, err := h.sup.WaitFor(ctx, "whoami", func(s supervisor.AgentStatus) bool { return s.State == supervisor.StateRunning }); err != nil {
		t.Fatal(err)
	}
	if err := h.Quarantine(ctx, "whoami", "compromised in a test"); err != nil {
		t.Fatal(err)
	}
	st, body, _ = call(t, http.MethodPost, stream.Delivery.EndpointURL, ssfTok, `{"returnImmediately":true}`)
	var polled signals.PollResponse
	if st != 200 || json.Unmarshal([]byte(body), &polled) != nil || len(polled.Sets) == 0 {
		t.Fatalf("poll: %d %s", st, body)
	}
	keys, err := signals.NewKeySet(signals.KeySetConfig{Fetcher: fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true}), URL: md.JWKSURI})
	if err != nil {
		t.Fatal(err)
	}
	v, err := signals.NewVerifier(signals.VerifierConfig{Issuer: iss, Audience: "pep", Keys: keys.Key,
		EventTypes: []string{signals.EventSessionRevoked, signals.EventCredentialChange}})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, set := range polled.Sets {
		ev, err := v.Verify(ctx, set)
		if err != nil {
			t.Fatalf("SET from the host: %v", err)
		}
		if ev.Subject.URI == "spiffe://test.local/agent/whoami" && ev.ReasonAdmin["en"] == "compromised in a test" {
			found[ev.Type] = true
		}
	}
	if !found[signals.EventSessionRevoked] || !found[signals.EventCredentialChange] {
		t.Fatalf("SETs about the quarantined agent: %v, want session-revoked and credential-change", found)
	}
}
