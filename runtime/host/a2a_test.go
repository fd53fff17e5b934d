package host

import (
	"context"
	"crypto"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/a2a/a2aremote"
	"github.com/agenthost/agenthost/consent/consenttest"
	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/wimse"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// TestA2AServesHostedAgents: a hosted agent is called from outside over
// A2A with the official a2a-go client (inside a2aremote) and a user's
// token for the agent: its card is signed with the agent's X.509-SVID key
// and verifies against the trust domain; a task runs for the token's
// user; a call that needs the user's approval reports auth-required with
// the approval page, and runs once when approved. Without a token, with a
// token for another resource, or with a hosted agent's own token but no
// workload proof, the call is refused with 401.
func TestA2AServesHostedAgents(t *testing.T) {
	cibaInterval = time.Second
	defer func() { cibaInterval = 0 }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := runHost(t, approvalConfig(t), filepath.Join(t.TempDir(), "data"))
	if _, err := h.sup.WaitFor(ctx, "payer", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
		t.Fatal(err)
	}
	agentURL := h.agentA2AURL("payer")

	// The card, as served, verifies against the trust domain's bundle.
	resp, err := http.Get(agentURL + a2aremote.CardPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := a2acard.VerifyJSON(ctx, raw, h.CardVerifyOptions("payer")); err != nil {
		t.Fatalf("the card does not verify: %v\n%s", err, raw)
	}
	if _, err := a2acard.VerifyJSON(ctx, raw, h.CardVerifyOptions("nobody")); err == nil {
		t.Fatal("the card verified as another agent's")
	}

	client, err := a2aremote.New(a2aremote.Config{AllowHTTP: true, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	card, err := client.FetchCard(ctx, agentURL)
	if err != nil {
		t.Fatal(err)
	}
	alice := signInWith(t, h, "alice", "alice-test-password", agentURL, []string{"openid"}).AccessToken
	tokens := func(string) a2aremote.TokenSource {
		return func(context.Context, string) (string, error) { return alice, nil }
	}

	// A small transfer runs for alice.
	res, err := client.Send(ctx, card, tokens(""), a2aremote.NewTextMessage(`{"from":"alice","to":"carol","amount":5}`))
	if err != nil || !strings.Contains(res.Text, "transferred 5.00 from alice to carol") {
		t.Fatalf("small transfer over A2A: %+v, %v", res, err)
	}

	// A big one needs alice's approval: auth-required with the page,
	// then done once approved.
	var approvalURL string
	res, err = client.Stream(ctx, card, tokens(""), a2aremote.NewTextMessage(`{"from":"alice","to":"bob","amount":500}`),
		func(u a2aremote.Update) error {
			if u.Kind == a2aremote.UpdateApproval && approvalURL == "" {
				approvalURL = u.URL
				go func() {
					if _, err := consenttest.NewBrowser("alice", "alice-test-password").Approve(ctx, u.URL); err != nil {
						t.Errorf("approve: %v", err)
					}
				}()
			}
			return nil
		})
	if err != nil || !strings.Contains(res.Text, "transferred 500.00 from alice to bob") {
		t.Fatalf("approved transfer over A2A: %+v, %v", res, err)
	}
	if !strings.HasPrefix(approvalURL, h.Issuer()+"/approve/") {
		t.Fatalf("approval URL %q", approvalURL)
	}
	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, e := range entries {
		r := e.Record
		if r.Resource == "payments/transfer" && r.Decision == audit.DecisionAllow && r.Outcome == audit.OutcomeOK && r.Approver == "alice" {
			ran++
			if r.Subject != "alice" || r.Agent != "payer" {
				t.Errorf("the approved call's record: %+v", r)
			}
		}
	}
	if ran != 1 {
		t.Fatalf("%d approved transfers ran, want 1", ran)
	}

	// Refusals.
	post := func(auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, agentURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"x"}}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	if st, ch := post(""); st != http.StatusUnauthorized || !strings.Contains(ch, "resource_metadata=") {
		t.Errorf("no token: %d %q", st, ch)
	}
	other := signIn(t, h, "alice", "alice-test-password", TaskResource(h.Issuer())).AccessToken
	if st, ch := post("Bearer " + other); st != http.StatusUnauthorized || !strings.Contains(ch, "invalid_token") {
		t.Errorf("a token for another resource: %d %q", st, ch)
	}
	// The payer agent's own token for itself, without its WIT and WPT.
	id := h.agentIDs["payer"]
	sid, err := workloadapi.IDFromIdentity(id)
	if err != nil {
		t.Fatal(err)
	}
	svid, _, err := h.CA().NewJWTSVID(ctx, sid, []string{h.Issuer()})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion": {svid}, "resource": {agentURL}}
	tr, err := http.PostForm(h.Issuer()+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(tr.Body).Decode(&tok)
	tr.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("no agent token: %d", tr.StatusCode)
	}
	if st, ch := post("Bearer " + tok.AccessToken); st != http.StatusUnauthorized || !strings.Contains(ch, "workload proof") {
		t.Errorf("an agent's token without its proof: %d %q", st, ch)
	}
	// With a proof: by the token's client it is taken; by another
	// workload of the trust domain it is refused.
	withProof := func(id string) int {
		wsid, err := workloadapi.IDFromIdentity(credentials.MustParseIdentity(id))
		if err != nil {
			t.Fatal(err)
		}
		wit, key, _, err := h.CA().NewWITSVID(ctx, wsid)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := wimse.NewTransport(wimse.TransportConfig{Credential: func(context.Context) (string, crypto.Signer, error) {
			return wit, key, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, agentURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"x"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := withProof(id.String()); st != http.StatusOK {
		t.Errorf("the agent's token with its own proof: %d", st)
	}
	if st := withProof("spiffe://test.local/agent/mallory"); st != http.StatusUnauthorized {
		t.Errorf("the agent's token with another workload's proof: %d", st)
	}
	// Malformed JSON-RPC from an authenticated caller: a JSON-RPC error,
	// audited too.
	bad, _ := http.NewRequest(http.MethodPost, agentURL, strings.NewReader(`{"jsonrpc":"2.0","id":1,`))
	bad.Header.Set("Content-Type", "application/json")
	bad.Header.Set("Authorization", "Bearer "+alice)
	br, err := http.DefaultClient.Do(bad)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := io.ReadAll(br.Body)
	br.Body.Close()
	if !strings.Contains(string(bb), "-32700") {
		t.Errorf("malformed JSON-RPC: %d %s", br.StatusCode, bb)
	}
	// Each refusal is audited.
	entries, err = h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range entries {
		if e.Record.Action == "a2a.request" && e.Record.Resource == "payer" && e.Record.Decision == audit.DecisionDeny {
			denied++
		}
	}
	if denied != 5 {
		t.Errorf("%d refused A2A requests audited, want 5", denied)
	}
}

// TestA2AHopProofs: a delegation between hosted agents carries the calling
// agent's WIT with the proof a2a.proof names, and the called task's record
// says which proof was verified.
func TestA2AHopProofs(t *testing.T) {
	for proof, want := range map[config.WorkloadProof]string{config.ProofWPT: "wpt", config.ProofHTTPSignature: "http-sig"} {
		t.Run(string(proof), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t)
			cfg.A2A.Proof = proof
			cfg.Agents = []config.AgentConfig{
				{Name: "research", Path: exe, Env: map[string]string{testAgentEnv: "1"}},
				{Name: "front", Path: exe, CallAgents: []string{"research"}, Env: map[string]string{testAgentEnv: "caller"}},
			}
			h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
			for _, a := range []string{"research", "front"} {
				if _, err := h.sup.WaitFor(ctx, a, func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
					t.Fatal(err)
				}
			}
			final, failure, err := taskAnswer(ctx, h, "front", "research who am i")
			if err != nil || failure != "" || !strings.HasPrefix(final, "research said: ") {
				t.Fatalf("delegation: %q %q %v", final, failure, err)
			}
			entries, err := h.AuditRead(ctx, 0, 10000)
			if err != nil {
				t.Fatal(err)
			}
			wantReason := "a2a from spiffe://test.local/agent/front, workload proof (" + want + ") by spiffe://test.local/agent/front verified"
			found := false
			for _, e := range entries {
				found = found || e.Record.Agent == "research" && e.Record.Action == "task.run" && e.Record.Reason == wantReason
			}
			if !found {
				t.Fatalf("no task.run record of research with reason %q", wantReason)
			}
		})
	}
}
