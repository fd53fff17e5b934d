package authserver

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
)

const homeTasks = "https://home.example.org/tasks"

// homeAndRemote are two servers: home issues the users' tokens (and knows
// the task resource), remote trusts home's issuer and home's trust domain,
// and knows the agents as clients.
func homeAndRemote(t *testing.T, trust func(home *testEnv) []TrustedIssuer) (home, remote *testEnv) {
	t.Helper()
	home = newTestEnv(t, func(c *Config) {
		c.Resources = append(c.Resources, Resource{URI: homeTasks, Scopes: []string{"tasks:run"}})
	})
	remote = newTestEnv(t, func(c *Config) {
		c.SVIDs = home.ca
		if trust != nil {
			c.TrustedIssuers = trust(home)
		}
	})
	return home, remote
}

func trustHome(home *testEnv) []TrustedIssuer {
	return []TrustedIssuer{{Issuer: home.issuer, Keys: home.srv.Keys()}}
}

// taskToken is alice's token for home's task resource, as agenthost login
// gets it.
func (e *testEnv) taskToken() string {
	e.t.Helper()
	return e.userToken(homeTasks, "openid", "tasks:run")
}

// exchangeAt runs a token exchange at e as agent (client and actor, its
// JWT-SVIDs minted by authority's CA).
func exchangeAt(e *testEnv, authority *testEnv, agent spiffeid.ID, subject, resource string, extra url.Values) (int, map[string]any) {
	e.t.Helper()
	svid := func() string {
		tok, _, err := authority.ca.NewJWTSVID(e.ctx, agent, []string{e.issuer})
		if err != nil {
			e.t.Fatal(err)
		}
		return tok
	}
	form := url.Values{
		"grant_type":            {oauth.GrantTokenExchange},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {svid()},
		"subject_token":         {subject},
		"subject_token_type":    {oauth.TokenTypeAccessToken},
		"actor_token":           {svid()},
		"actor_token_type":      {oauth.TokenTypeJWT},
		"resource":              {resource},
	}
	for k, v := range extra {
		form[k] = v
	}
	status, body, _ := e.post(PathToken, form, nil)
	return status, body
}

func TestIssueAgentToken(t *testing.T) {
	home, _ := homeAndRemote(t, nil)
	task := home.taskToken()
	research := credentials.MustParseIdentity(researchID.String())

	tok, exp, err := home.srv.IssueAgentToken(home.ctx, AgentTokenRequest{SubjectToken: task, Resource: homeTasks, Scope: "tasks:run", Agent: research})
	if err != nil {
		t.Fatal(err)
	}
	c := home.verify(tok, researchID.String())
	taskClaims := home.verify(task, homeTasks)
	if c.Subject != "alice" || c.ClientID != researchID.String() || c.Actor != nil || c.Scope != "notes:read notes:write" ||
		c.AuthTime == 0 || c.ExpiresAt > taskClaims.ExpiresAt || !exp.Equal(time.Unix(c.ExpiresAt, 0)) {
		t.Fatalf("agent token %+v (task token expires %d)", c, taskClaims.ExpiresAt)
	}
	// Revoking the user's task token revokes the agent token (lineage).
	if err := home.srv.revokeAccessToken(home.ctx, taskClaims.ID, time.Unix(taskClaims.ExpiresAt, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := home.srv.VerifyAccessToken(home.ctx, tok, ""); err == nil {
		t.Fatal("the agent token outlived the revoked task token")
	}

	noAuthTime, err := home.srv.issueAccessToken(home.ctx, nil, accessGrant{Subject: "alice", ClientID: "webapp",
		Scopes: []string{"tasks:run"}, Audience: []string{homeTasks}})
	if err != nil {
		t.Fatal(err)
	}
	acting, err := home.srv.issueAccessToken(home.ctx, nil, accessGrant{Subject: "alice", ClientID: "webapp", AuthTime: home.clock.Now(),
		Scopes: []string{"tasks:run"}, Audience: []string{homeTasks}, Actor: &oauth.Actor{Subject: "someone"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		req  AgentTokenRequest
		want string
	}{
		{"another audience", AgentTokenRequest{SubjectToken: home.userToken(notesURI, "tasks:run"), Resource: homeTasks, Scope: "tasks:run", Agent: research}, "aud"},
		{"without the task scope", AgentTokenRequest{SubjectToken: home.userToken(homeTasks, "openid"), Resource: homeTasks, Scope: "tasks:run", Agent: research}, "lacks the scope tasks:run"},
		{"not a signed-in user", AgentTokenRequest{SubjectToken: noAuthTime.Token, Resource: homeTasks, Scope: "tasks:run", Agent: research}, "signed-in user"},
		{"someone acting for the user", AgentTokenRequest{SubjectToken: acting.Token, Resource: homeTasks, Scope: "tasks:run", Agent: research}, "acting for the user"},
		{"not an agent", AgentTokenRequest{SubjectToken: home.taskToken(), Resource: homeTasks, Scope: "tasks:run",
			Agent: credentials.MustParseIdentity("spiffe://example.org/agent/nobody")}, "not a hosted agent"},
		{"garbage", AgentTokenRequest{SubjectToken: "x.y.z", Resource: homeTasks, Scope: "tasks:run", Agent: research}, "invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := home.srv.IssueAgentToken(home.ctx, tt.req); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("IssueAgentToken = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestTrustedIssuerDelegationChain: payments acts for alice and delegates
// to research at home; research exchanges the delegation's token at the
// remote server, which trusts home: the remote token keeps alice as sub
// and nests act (research, then payments); its scope is capped by the
// subject token's.
func TestTrustedIssuerDelegationChain(t *testing.T) {
	home, remote := homeAndRemote(t, trustHome)
	payments := credentials.MustParseIdentity(paymentsID.String())
	research := credentials.MustParseIdentity(researchID.String())

	forPayments, _, err := home.srv.IssueAgentToken(home.ctx, AgentTokenRequest{SubjectToken: home.taskToken(), Resource: homeTasks,
		Scope: "tasks:run", Agent: payments})
	if err != nil {
		t.Fatal(err)
	}
	status, body := exchangeAt(home, home, paymentsID, forPayments, researchID.String(), nil)
	if status != 200 {
		t.Fatalf("delegation at home: %d %v", status, body)
	}
	delegated := body["access_token"].(string)
	if c := home.verify(delegated, researchID.String()); c.Actor.Subject != paymentsID.String() || c.Scope != "notes:read" {
		t.Fatalf("delegation token %+v", c)
	}

	status, body = exchangeAt(remote, home, researchID, delegated, notesURI, nil)
	if status != 200 {
		t.Fatalf("exchange at the remote: %d %v", status, body)
	}
	c := remote.verify(body["access_token"].(string), notesURI)
	if c.Issuer != remote.issuer || c.Subject != "alice" || c.ClientID != researchID.String() || c.Actor.Depth() != 2 ||
		c.Actor.Subject != researchID.String() || c.Actor.Actor.Subject != paymentsID.String() || c.Scope != "notes:read" {
		t.Fatalf("remote token %+v act %+v", c, c.Actor)
	}

	// Not delegated: research's own token for alice, straight to the
	// remote: act is research alone.
	forResearch, _, err := home.srv.IssueAgentToken(home.ctx, AgentTokenRequest{SubjectToken: home.taskToken(), Resource: homeTasks,
		Scope: "tasks:run", Agent: research})
	if err != nil {
		t.Fatal(err)
	}
	status, body = exchangeAt(remote, home, researchID, forResearch, notesURI, nil)
	if status != 200 {
		t.Fatalf("root exchange at the remote: %d %v", status, body)
	}
	if c := remote.verify(body["access_token"].(string), notesURI); c.Subject != "alice" || c.Actor.Depth() != 1 ||
		c.Actor.Subject != researchID.String() || c.Scope != "notes:read notes:write" {
		t.Fatalf("root remote token %+v", c)
	}
	// More than the subject token carried: refused.
	status, body = exchangeAt(remote, home, researchID, delegated, notesURI, url.Values{"scope": {"notes:write"}})
	if status != 400 || body["error"] != oauth.CodeInvalidScope {
		t.Fatalf("widening scope: %d %v", status, body)
	}
}

func TestTrustedIssuerRefusals(t *testing.T) {
	home, remote := homeAndRemote(t, trustHome)
	untrusting := newTestEnv(t, func(c *Config) { c.SVIDs = home.ca })
	research := credentials.MustParseIdentity(researchID.String())
	forResearch, _, err := home.srv.IssueAgentToken(home.ctx, AgentTokenRequest{SubjectToken: home.taskToken(), Resource: homeTasks,
		Scope: "tasks:run", Agent: research})
	if err != nil {
		t.Fatal(err)
	}
	forPayments, _, err := home.srv.IssueAgentToken(home.ctx, AgentTokenRequest{SubjectToken: home.taskToken(), Resource: homeTasks,
		Scope: "tasks:run", Agent: credentials.MustParseIdentity(paymentsID.String())})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		at      *testEnv
		subject string
		want    string
	}{
		{"issuer not trusted", untrusting, forResearch, "an issuer this server does not trust"},
		{"addressed to another client", remote, forPayments, "issued neither for this server nor for this client"},
		{"addressed to another resource", remote, home.taskToken(), "issued neither"},
		{"not an access token", remote, home.svid(researchID), "subject_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := exchangeAt(tt.at, home, researchID, tt.subject, notesURI, nil)
			if status != 400 || body["error"] != oauth.CodeInvalidRequest || !strings.Contains(body["error_description"].(string), tt.want) {
				t.Fatalf("%d %v, want invalid_request with %q", status, body, tt.want)
			}
		})
	}
	// Addressed to the remote server itself: accepted.
	toRemote, err := home.srv.issueAccessToken(home.ctx, nil, accessGrant{Subject: "alice", ClientID: "webapp", AuthTime: home.clock.Now(),
		Scopes: []string{"notes:read"}, Audience: []string{remote.issuer}})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := exchangeAt(remote, home, researchID, toRemote.Token, notesURI, nil); status != 200 {
		t.Fatalf("a token for the remote server: %d %v", status, body)
	}
	// The same token bound to a DPoP key: exchanging it would shed the
	// binding.
	agent, err := home.srv.clients.lookup(home.ctx, researchID.String())
	if err != nil {
		t.Fatal(err)
	}
	bound, err := home.srv.issueAccessToken(home.ctx, &tokenRequest{client: &authenticated{client: agent}, jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
		accessGrant{Subject: "alice", ClientID: "webapp", AuthTime: home.clock.Now(), Scopes: []string{"notes:read"}, Audience: []string{remote.issuer}})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := exchangeAt(remote, home, researchID, bound.Token, notesURI, nil); status != 400 ||
		!strings.Contains(body["error_description"].(string), "sender-constrained") {
		t.Fatalf("a sender-constrained subject token: %d %v", status, body)
	}
	// Expired on the remote's clock.
	remote.clock.Advance(10 * time.Minute)
	status, body := exchangeAt(remote, home, researchID, forResearch, notesURI, nil)
	if status != 400 || !strings.Contains(body["error_description"].(string), "expired") {
		t.Fatalf("expired subject token: %d %v", status, body)
	}
	remote.clock.Advance(-10 * time.Minute)
	// A subject the remote revoked stays revoked, whoever vouches for it.
	if err := remote.srv.RevokeSubject(remote.ctx, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	remote.clock.Advance(time.Second)
	if status, body := exchangeAt(remote, home, researchID, forResearch, notesURI, nil); status != 400 ||
		!strings.Contains(body["error_description"].(string), "revoked") {
		t.Fatalf("revoked subject: %d %v", status, body)
	}
}

func TestTrustedIssuerConfig(t *testing.T) {
	home, _ := homeAndRemote(t, nil)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		list []TrustedIssuer
		want string
	}{
		{"no issuer", []TrustedIssuer{{Keys: home.srv.Keys()}}, "has no issuer"},
		{"no keys", []TrustedIssuer{{Issuer: home.issuer}}, "exactly one of Keys and JWKS"},
		{"both", []TrustedIssuer{{Issuer: home.issuer, Keys: home.srv.Keys(), JWKS: home.srv.JWKS()}}, "exactly one of Keys and JWKS"},
		{"twice", []TrustedIssuer{{Issuer: home.issuer, Keys: home.srv.Keys()}, {Issuer: home.issuer, JWKS: home.srv.JWKS()}}, "listed twice"},
		{"bad JWKS", []TrustedIssuer{{Issuer: home.issuer, JWKS: []byte(`{"keys":[{"kty":"oct","k":"AA"}]}`)}}, "JWKS"},
		{"itself", []TrustedIssuer{{Issuer: "https://as.example.org", Keys: home.srv.Keys()}}, "is this server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(ctx, Config{Issuer: "https://as.example.org", Store: NewMemoryStore(nil), TrustedIssuers: tt.list})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want %q", err, tt.want)
			}
		})
	}
	// The issuer's published JWK Set works as Keys does.
	remote := newTestEnv(t, func(c *Config) {
		c.SVIDs = home.ca
		c.TrustedIssuers = []TrustedIssuer{{Issuer: home.issuer, JWKS: home.srv.JWKS()}}
	})
	tok, _, err := home.srv.IssueAgentToken(home.ctx, AgentTokenRequest{SubjectToken: home.taskToken(), Resource: homeTasks,
		Scope: "tasks:run", Agent: credentials.MustParseIdentity(researchID.String())})
	if err != nil {
		t.Fatal(err)
	}
	if status, body := exchangeAt(remote, home, researchID, tok, notesURI, nil); status != 200 {
		t.Fatalf("with the JWKS: %d %v", status, body)
	}
}
