package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

const (
	remoteTD  = "b.test"
	strangeTD = "c.test"
	filesURI  = "https://files.b.test/api"
)

var (
	strangerID = spiffeid.RequireFromString("spiffe://c.test/agent/x")
	localID    = spiffeid.RequireFromString("spiffe://b.test/agent/local")
	serviceID  = spiffeid.RequireFromString("spiffe://example.org/service/x")
	agentxID   = spiffeid.RequireFromString("spiffe://example.org/agentx")
)

// domainValidators validates JWT-SVIDs with the CA of the subject's trust
// domain, as a validator over federated bundles does.
type domainValidators map[string]*ca.CA

func (v domainValidators) ValidateJWTSVID(ctx context.Context, token, audience string) (spiffeid.ID, map[string]any, error) {
	_, _, sub, err := peekJWT(token)
	if err != nil {
		return spiffeid.ID{}, nil, err
	}
	id, err := spiffeid.FromString(sub)
	if err != nil {
		return spiffeid.ID{}, nil, err
	}
	authority, ok := v[id.TrustDomain().Name()]
	if !ok {
		return spiffeid.ID{}, nil, credentials.ErrUntrustedDomain
	}
	return authority.ValidateJWTSVID(ctx, token, audience)
}

// issueRecorder records what OnIssue is told.
type issueRecorder struct {
	mu  sync.Mutex
	got []Issued
}

func (r *issueRecorder) record(_ context.Context, it Issued) error {
	r.mu.Lock()
	r.got = append(r.got, it)
	r.mu.Unlock()
	return nil
}

func (r *issueRecorder) ofType(typ string) []Issued {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Issued
	for _, it := range r.got {
		if it.TokenType == typ {
			out = append(out, it)
		}
	}
	return out
}

// chain is two hosts' authorization servers in two trust domains: home
// (example.org, the IdP, issuing ID-JAGs for remote) and remote (b.test,
// trusting home for ID-JAGs only and admitting home's agents as federated
// clients); stranger is a third trust domain's CA, whose SVIDs remote can
// validate but whose workloads it does not admit.
type chain struct {
	home, remote *testEnv
	// remoteCA is remote's trust domain's CA.
	remoteCA     *ca.CA
	stranger     *ca.CA
	homeIssued   *issueRecorder
	remoteIssued *issueRecorder
}

func newChain(t *testing.T, remoteOpts ...envOption) *chain {
	t.Helper()
	ctx := context.Background()
	homeL, remoteL := newLateServer(t), newLateServer(t)
	c := &chain{homeIssued: &issueRecorder{}, remoteIssued: &issueRecorder{}}
	c.home = newTestEnvOn(t, homeL, func(cfg *Config) {
		cfg.Resources = append(cfg.Resources, Resource{URI: homeTasks, Scopes: []string{"tasks:run"}})
		cfg.IDJAGAudiences = []IDJAGAudience{{Issuer: remoteL.URL, Scopes: []string{"files:read", "files:write"}}}
		cfg.Clients = append(cfg.Clients, StaticClient{ID: "cli", AuthMethod: oauth.AuthNone, GrantTypes: []string{oauth.GrantTokenExchange}})
		cfg.OnIssue = c.homeIssued.record
	})
	var err error
	if c.stranger, err = ca.New(ctx, ca.Config{TrustDomain: "spiffe://" + strangeTD, Journal: &ca.MemoryJournal{}, Now: c.home.clock.Now}); err != nil {
		t.Fatal(err)
	}
	c.remoteCA, err = ca.New(ctx, ca.Config{TrustDomain: "spiffe://" + remoteTD, Journal: &ca.MemoryJournal{}, Now: c.home.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]envOption{func(cfg *Config) {
		cfg.TrustDomain = remoteTD
		cfg.SVIDs = c.remoteCA
		cfg.Agents = []AgentClient{{ID: credentials.MustParseIdentity(localID.String()), Scopes: []string{"files:read"}}}
		cfg.Resources = append(cfg.Resources, Resource{URI: filesURI, Scopes: []string{"files:read", "files:write"}})
		cfg.TrustedIssuers = []TrustedIssuer{{Issuer: c.home.issuer, Keys: c.home.srv.Keys(), IDJAG: true, NoSubjectTokens: true}}
		cfg.FederatedSVIDs = domainValidators{testTD: c.home.ca, strangeTD: c.stranger}
		cfg.FederatedClients = []FederatedClient{
			{SPIFFEID: "spiffe://example.org/agent/*", Scopes: []string{"files:read", "files:write"}},
			{SPIFFEID: "spiffe://example.org/agent/payments", Scopes: []string{"files:read"}, Grants: []string{oauth.GrantJWTBearer}},
		}
		cfg.OnIssue = c.remoteIssued.record
	}}, remoteOpts...)
	c.remote = newTestEnvOn(t, remoteL, opts...)
	return c
}

// agentToken is alice's token at home for agent, as the host's delegation
// chain starts it (IssueAgentToken).
func (c *chain) agentToken(agent spiffeid.ID) string {
	c.home.t.Helper()
	tok, _, err := c.home.srv.IssueAgentToken(c.home.ctx, AgentTokenRequest{SubjectToken: c.home.taskToken(),
		Resource: homeTasks, Scope: "tasks:run", Agent: credentials.MustParseIdentity(agent.String())})
	if err != nil {
		c.home.t.Fatal(err)
	}
	return tok
}

// svidFor mints a JWT-SVID of home's trust domain (or authority's) for
// id, addressed to e.
func svidFor(t testing.TB, authority *ca.CA, id spiffeid.ID, e *testEnv) string {
	t.Helper()
	tok, _, err := authority.NewJWTSVID(context.Background(), id, []string{e.issuer})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// requestIDJAG asks home for an ID-JAG as agent; extra replaces or adds
// parameters (an empty value deletes one).
func (c *chain) requestIDJAG(agent spiffeid.ID, subject string, extra url.Values, header http.Header) (int, map[string]any) {
	c.home.t.Helper()
	form := url.Values{
		"grant_type":            {oauth.GrantTokenExchange},
		"requested_token_type":  {oauth.TokenTypeIDJAG},
		"audience":              {c.remote.issuer},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {svidFor(c.home.t, c.home.ca, agent, c.home)},
		"subject_token":         {subject},
		"subject_token_type":    {oauth.TokenTypeAccessToken},
		"scope":                 {"files:read"},
		"resource":              {filesURI},
	}
	for k, v := range extra {
		if len(v) == 1 && v[0] == "" {
			delete(form, k)
			continue
		}
		form[k] = v
	}
	status, body, _ := c.home.post(PathToken, form, header)
	return status, body
}

// idjag gets an ID-JAG from home for agent acting for alice.
func (c *chain) idjag(agent spiffeid.ID, extra url.Values) string {
	c.home.t.Helper()
	status, body := c.requestIDJAG(agent, c.agentToken(agent), extra, nil)
	if status != http.StatusOK {
		c.home.t.Fatalf("ID-JAG request: %d %v", status, body)
	}
	return body["access_token"].(string)
}

// redeem presents assertion at remote with the jwt-bearer grant, the
// client authenticated by a JWT-SVID of authority for client.
func (c *chain) redeem(authority *ca.CA, client spiffeid.ID, assertion string, extra url.Values, header http.Header) (int, map[string]any) {
	c.remote.t.Helper()
	form := url.Values{
		"grant_type":            {oauth.GrantJWTBearer},
		"assertion":             {assertion},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {svidFor(c.remote.t, authority, client, c.remote)},
	}
	for k, v := range extra {
		form[k] = v
	}
	status, body, _ := c.remote.post(PathToken, form, header)
	return status, body
}

// signAs signs claims as e's server would, with typ.
func signAs(t testing.TB, e *testEnv, typ jose.Typ, claims any) string {
	t.Helper()
	tok, err := e.srv.keys.sign(e.ctx, typ, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forgedIDJAG is an ID-JAG for research acting for alice, as home would
// sign it, with mutate applied to its claims.
func (c *chain) forgedIDJAG(mutate func(map[string]any)) map[string]any {
	now := c.home.clock.Now()
	jti, _ := randomToken(12)
	claims := map[string]any{"iss": c.home.issuer, "sub": "alice", "aud": c.remote.issuer, "client_id": researchID.String(),
		"jti": jti, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "scope": "files:read",
		"act": map[string]any{"sub": researchID.String()}}
	if mutate != nil {
		mutate(claims)
	}
	return claims
}

func decodeIDJAG(t testing.TB, e *testEnv, token string) *oauth.IDJAGClaims {
	t.Helper()
	v, err := jose.Verify(e.ctx, token, jose.VerifyOptions{Types: []jose.Typ{jose.TypIDJAG}, Keys: e.srv.Keys(), RequireKID: true,
		Issuer: e.issuer, RequireSubject: true, Now: e.clock.Now})
	if err != nil {
		t.Fatalf("the ID-JAG does not verify: %v", err)
	}
	var c oauth.IDJAGClaims
	if err := v.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestIDJAGChain: home issues an ID-JAG for alice acting through
// research; remote, trusting home for ID-JAGs and admitting research as a
// federated client, issues an access token with sub alice and act
// research.
func TestIDJAGChain(t *testing.T) {
	c := newChain(t)
	u := c.agentToken(researchID)
	uClaims := c.home.verify(u, researchID.String())

	status, body := c.requestIDJAG(researchID, u, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("ID-JAG request: %d %v", status, body)
	}
	if body["issued_token_type"] != oauth.TokenTypeIDJAG || body["token_type"] != oauth.TokenTypeNA ||
		body["refresh_token"] != nil || body["scope"] != "files:read" {
		t.Fatalf("ID-JAG response %v", body)
	}
	if exp, _ := body["expires_in"].(float64); exp <= 0 || exp > IDJAGLifetime.Seconds() {
		t.Fatalf("expires_in %v", body["expires_in"])
	}
	grant := body["access_token"].(string)
	g := decodeIDJAG(t, c.home, grant)
	if g.Subject != "alice" || len(g.Audience) != 1 || g.Audience[0] != c.remote.issuer || g.ClientID != researchID.String() ||
		g.ID == "" || g.Scope != "files:read" || len(g.Resource) != 1 || g.Resource[0] != filesURI ||
		g.Actor == nil || g.Actor.Subject != researchID.String() || g.Actor.Actor != nil || g.Confirmation != nil ||
		g.ExpiresAt-g.IssuedAt > int64(IDJAGLifetime.Seconds()) || g.ExpiresAt > uClaims.ExpiresAt || g.AuthTime == 0 {
		t.Fatalf("ID-JAG claims %+v", g)
	}
	// aud is written as a string, not an array.
	if !strings.Contains(decodePayload(t, grant), `"aud":"`+c.remote.issuer+`"`) {
		t.Fatalf("aud is not a single string: %s", decodePayload(t, grant))
	}
	if issued := c.homeIssued.ofType(oauth.TokenTypeIDJAG); len(issued) != 1 || issued[0].Claims.ID != g.ID ||
		issued[0].GrantType != oauth.GrantTokenExchange || issued[0].Claims.Audience[0] != c.remote.issuer {
		t.Fatalf("OnIssue was told %+v", issued)
	}
	// An ID-JAG is not an access token of home's.
	if _, err := c.home.srv.VerifyAccessToken(c.home.ctx, grant, ""); err == nil {
		t.Fatal("the ID-JAG verified as an access token")
	}

	status, body = c.redeem(c.home.ca, researchID, grant, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("jwt-bearer at remote: %d %v", status, body)
	}
	if body["refresh_token"] != nil || body["token_type"] != oauth.TokenTypeBearer || body["scope"] != "files:read" {
		t.Fatalf("remote's response %v", body)
	}
	at := c.remote.verify(body["access_token"].(string), filesURI)
	if at.Subject != "alice" || at.ClientID != researchID.String() || at.Actor == nil || at.Actor.Subject != researchID.String() ||
		at.Issuer != c.remote.issuer || at.Scope != "files:read" || at.SubjectID == nil ||
		*at.SubjectID != (oauth.SubjectID{Format: oauth.SubjectFormatIssSub, Issuer: c.home.issuer, Subject: "alice"}) {
		t.Fatalf("remote's access token %+v", at)
	}
	if issued := c.remoteIssued.ofType(oauth.TokenTypeAccessToken); len(issued) != 1 || issued[0].GrantType != oauth.GrantJWTBearer {
		t.Fatalf("remote's OnIssue was told %+v", issued)
	}
	// Introspection at remote shows where the subject came from.
	status, intro, _ := c.remote.post(PathIntrospect, url.Values{"token": {body["access_token"].(string)},
		"client_assertion_type": {oauth.AssertionJWTBearer}, "client_assertion": {c.remote.clientAssertion(nil)}}, nil)
	if sid, _ := intro["sub_id"].(map[string]any); status != http.StatusOK || intro["active"] != true || sid["iss"] != c.home.issuer {
		t.Fatalf("introspection: %d %v", status, intro)
	}
}

func decodePayload(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestIDJAGNestsDelegation: the ID-JAG's act is built by home from
// verified tokens, the requesting agent over the subject token's chain,
// and remote keeps it.
func TestIDJAGNestsDelegation(t *testing.T) {
	c := newChain(t)
	// payments delegates alice's task to research (a token exchange at
	// home), and research asks for an ID-JAG with that token.
	status, body := exchangeAt(c.home, c.home, paymentsID, c.agentToken(paymentsID), researchID.String(), nil)
	if status != http.StatusOK {
		t.Fatalf("delegation: %d %v", status, body)
	}
	d := body["access_token"].(string)
	status, body = c.requestIDJAG(researchID, d, url.Values{
		"actor_token": {svidFor(t, c.home.ca, researchID, c.home)}, "actor_token_type": {oauth.TokenTypeJWT},
	}, nil)
	if status != http.StatusOK {
		t.Fatalf("ID-JAG request: %d %v", status, body)
	}
	grant := body["access_token"].(string)
	g := decodeIDJAG(t, c.home, grant)
	if g.Actor.Depth() != 2 || g.Actor.Subject != researchID.String() || g.Actor.Actor.Subject != paymentsID.String() {
		t.Fatalf("ID-JAG act %+v", g.Actor)
	}
	status, body = c.redeem(c.home.ca, researchID, grant, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("jwt-bearer at remote: %d %v", status, body)
	}
	at := c.remote.verify(body["access_token"].(string), filesURI)
	if at.Subject != "alice" || at.Actor.Depth() != 2 || at.Actor.Subject != researchID.String() || at.Actor.Actor.Subject != paymentsID.String() {
		t.Fatalf("remote's token %+v act %+v", at, at.Actor)
	}

	// An actor_token of another agent is refused.
	status, body = c.requestIDJAG(researchID, d, url.Values{
		"actor_token": {svidFor(t, c.home.ca, paymentsID, c.home)}, "actor_token_type": {oauth.TokenTypeJWT},
	}, nil)
	if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidRequest {
		t.Fatalf("another agent's actor_token: %d %v", status, body)
	}
}

// TestIDJAGWithIDToken: an ID token of home addressed to the client is a
// subject token; its email reaches the ID-JAG.
func TestIDJAGWithIDToken(t *testing.T) {
	c := newChain(t)
	now := c.home.clock.Now()
	idToken := func(aud string) string {
		return signAs(t, c.home, jose.TypJWT, idTokenClaims{Issuer: c.home.issuer, Subject: "alice", Audience: oauth.Audience{aud},
			IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), AuthTime: now.Unix(), Email: "alice@example.org"})
	}
	status, body := c.requestIDJAG(researchID, idToken(researchID.String()), url.Values{"subject_token_type": {oauth.TokenTypeIDToken}}, nil)
	if status != http.StatusOK {
		t.Fatalf("ID-JAG for an ID token: %d %v", status, body)
	}
	g := decodeIDJAG(t, c.home, body["access_token"].(string))
	if g.Subject != "alice" || g.Email != "alice@example.org" || g.ExpiresAt > now.Add(time.Minute).Unix() {
		t.Fatalf("ID-JAG %+v", g)
	}
	// SPECS.md §12.2: an ID token for another client is refused.
	status, body = c.requestIDJAG(researchID, idToken(paymentsID.String()), url.Values{"subject_token_type": {oauth.TokenTypeIDToken}}, nil)
	if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidRequest {
		t.Fatalf("ID token of another client: %d %v", status, body)
	}
}

// TestIDJAGIssueRefusals: what home refuses to issue an ID-JAG for.
func TestIDJAGIssueRefusals(t *testing.T) {
	c := newChain(t)
	other := newTestEnv(t)
	refresh := func(tb testing.TB) string {
		// A refresh token of home's, as the code flow stores one.
		tok, err := randomToken(32)
		if err != nil {
			tb.Fatal(err)
		}
		return tok
	}
	for _, tt := range []struct {
		name    string
		agent   spiffeid.ID
		subject func(testing.TB) string
		extra   url.Values
		status  int
		code    string
		reason  string
	}{
		{"audience not configured", researchID, nil, url.Values{"audience": {"https://other.example"}}, http.StatusBadRequest, oauth.CodeInvalidTarget, "is not an authorization server this server issues ID-JAGs for"},
		{"audience is home itself", researchID, nil, url.Values{"audience": {c.home.issuer}}, http.StatusBadRequest, oauth.CodeInvalidTarget, "is not an authorization server this server issues ID-JAGs for"},
		{"two audiences", researchID, nil, url.Values{"audience": {c.remote.issuer, "https://other.example"}}, http.StatusBadRequest, oauth.CodeInvalidTarget, "one authorization server"},
		{"no audience", researchID, nil, url.Values{"audience": {""}}, http.StatusBadRequest, oauth.CodeInvalidRequest, "audience is missing"},
		{"scope wider than allowed", researchID, nil, url.Values{"scope": {"files:read files:delete"}}, http.StatusBadRequest, oauth.CodeInvalidScope, "may not be requested at"},
		{"resource not absolute", researchID, nil, url.Values{"resource": {"files"}}, http.StatusBadRequest, oauth.CodeInvalidTarget, "not an absolute URI"},
		{"authorization_details", researchID, nil, url.Values{"authorization_details": {`[{"type":"x"}]`}}, http.StatusBadRequest, oauth.CodeInvalidRequest, "not carried"},
		{"refresh token as subject token", researchID, refresh,
			url.Values{"subject_token_type": {oauth.TokenTypeRefreshToken}}, http.StatusBadRequest, oauth.CodeInvalidRequest, "a refresh token is not accepted"},
		{"another issuer's access token", researchID, func(testing.TB) string { return other.userToken(researchID.String(), "notes:read") },
			nil, http.StatusBadRequest, oauth.CodeInvalidRequest, "not issued by this server"},
		{"a token for another agent", researchID, func(testing.TB) string { return c.agentToken(paymentsID) },
			nil, http.StatusBadRequest, oauth.CodeInvalidRequest, "not issued for this client"},
		{"a JWT-SVID as subject token", researchID, func(tb testing.TB) string { return svidFor(tb, c.home.ca, researchID, c.home) },
			url.Values{"subject_token_type": {oauth.TokenTypeJWT}}, http.StatusBadRequest, oauth.CodeInvalidRequest, "is not accepted for ID-JAGs"},
		{"an ID-JAG as subject token", researchID, func(testing.TB) string { return c.idjag(researchID, nil) },
			nil, http.StatusBadRequest, oauth.CodeInvalidRequest, "wrong typ"},
		{"an expired subject token", researchID, func(tb testing.TB) string {
			it, err := c.home.srv.issueAccessToken(c.home.ctx, nil, accessGrant{Subject: "alice", ClientID: researchID.String(),
				Audience: []string{researchID.String()}, NotAfter: c.home.clock.Now().Add(-time.Second)})
			if err != nil {
				tb.Fatal(err)
			}
			return it.Token
		}, nil, http.StatusBadRequest, oauth.CodeInvalidRequest, "expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			subject := c.agentToken(tt.agent)
			if tt.subject != nil {
				subject = tt.subject(t)
			}
			before := len(c.homeIssued.ofType(oauth.TokenTypeIDJAG))
			status, body := c.requestIDJAG(tt.agent, subject, tt.extra, nil)
			if d, _ := body["error_description"].(string); status != tt.status || body["error"] != tt.code ||
				body["access_token"] != nil || !strings.Contains(d, tt.reason) {
				t.Fatalf("got %d %v, want %d %s (%s)", status, body, tt.status, tt.code, tt.reason)
			}
			if after := len(c.homeIssued.ofType(oauth.TokenTypeIDJAG)); after != before {
				t.Fatal("a refused request was reported as issued")
			}
		})
	}

	t.Run("public client", func(t *testing.T) {
		status, body, _ := c.home.post(PathToken, url.Values{
			"grant_type": {oauth.GrantTokenExchange}, "requested_token_type": {oauth.TokenTypeIDJAG}, "client_id": {"cli"},
			"audience": {c.remote.issuer}, "subject_token": {c.home.userToken("cli", "openid")},
			"subject_token_type": {oauth.TokenTypeAccessToken},
		}, nil)
		if status != http.StatusBadRequest || body["error"] != oauth.CodeUnauthorizedClient {
			t.Fatalf("public client: %d %v", status, body)
		}
	})
}

// TestIDJAGRedeemRefusals: what remote refuses at its jwt-bearer grant.
// Every grant problem is invalid_grant.
func TestIDJAGRedeemRefusals(t *testing.T) {
	c := newChain(t)
	third := newTestEnv(t)
	// ID-JAGs signed with home's key, with one claim wrong.
	forged := func(mutate func(map[string]any)) func(testing.TB) string {
		return func(tb testing.TB) string { return signAs(tb, c.home, jose.TypIDJAG, c.forgedIDJAG(mutate)) }
	}
	for _, tt := range []struct {
		name   string
		grant  func(testing.TB) string
		extra  url.Values
		status int
		code   string
		reason string
	}{
		{"aud array of two", forged(func(m map[string]any) { m["aud"] = []string{c.remote.issuer, "https://other.example"} }),
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "audience must be this server's issuer alone"},
		{"aud is another authorization server", forged(func(m map[string]any) { m["aud"] = "https://other.example" }),
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "audience must be this server's issuer alone"},
		{"aud is the token endpoint", forged(func(m map[string]any) { m["aud"] = c.remote.issuer + PathToken }),
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "audience must be this server's issuer alone"},
		{"client_id is another client", func(testing.TB) string { return c.idjag(paymentsID, nil) },
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "issued for another client"},
		{"no client_id", forged(func(m map[string]any) { delete(m, "client_id") }), nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "lacks jti, iat or client_id"},
		{"no jti", forged(func(m map[string]any) { delete(m, "jti") }), nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "lacks jti, iat or client_id"},
		{"no iat", forged(func(m map[string]any) { delete(m, "iat") }), nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "lacks jti, iat or client_id"},
		{"exp too far ahead", forged(func(m map[string]any) { m["exp"] = c.home.clock.Now().Add(2 * time.Hour).Unix() }),
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "too far in the future"},
		{"untrusted issuer", func(tb testing.TB) string {
			return signAs(tb, third, jose.TypIDJAG, c.forgedIDJAG(func(m map[string]any) { m["iss"] = third.issuer }))
		}, nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "not trusted for ID-JAGs"},
		{"home's iss, another server's key", func(tb testing.TB) string {
			return signAs(tb, third, jose.TypIDJAG, c.forgedIDJAG(nil))
		}, nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "unknown key"},
		{"typ at+jwt", func(tb testing.TB) string { return signAs(tb, c.home, jose.TypAccessToken, c.forgedIDJAG(nil)) },
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "wrong typ"},
		{"typ JWT", func(tb testing.TB) string { return signAs(tb, c.home, jose.TypJWT, c.forgedIDJAG(nil)) },
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "wrong typ"},
		{"an access token of home", func(testing.TB) string { return c.agentToken(researchID) },
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "wrong typ"},
		{"an access token of home for remote", func(tb testing.TB) string { return c.home.userToken(c.remote.issuer, "files:read") },
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "wrong typ"},
		{"an ID-JAG remote issued itself", func(tb testing.TB) string {
			return signAs(tb, c.remote, jose.TypIDJAG, c.forgedIDJAG(func(m map[string]any) { m["iss"] = c.remote.issuer }))
		}, nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "issued itself"},
		{"a JWT-SVID of the federated client", func(tb testing.TB) string { return svidFor(tb, c.home.ca, researchID, c.remote) },
			nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "presents ID-JAGs only"},
		{"scope wider than the ID-JAG's", func(testing.TB) string { return c.idjag(researchID, nil) },
			url.Values{"scope": {"files:read files:write"}}, http.StatusBadRequest, oauth.CodeInvalidScope, "exceeds the original grant"},
		{"scope unknown at remote", forged(func(m map[string]any) { m["scope"] = "files:read tasks:nuke" }),
			url.Values{"scope": {"tasks:nuke"}}, http.StatusBadRequest, oauth.CodeInvalidScope, "is not known"},
		{"resource the ID-JAG does not grant", func(testing.TB) string { return c.idjag(researchID, nil) },
			url.Values{"resource": {notesURI}}, http.StatusBadRequest, oauth.CodeInvalidTarget, "not granted by the ID-JAG"},
		{"act deeper than allowed", forged(func(m map[string]any) {
			act := map[string]any{"sub": "x"}
			for range MaxActorDepth {
				act = map[string]any{"sub": "x", "act": act}
			}
			m["act"] = act
		}), nil, http.StatusBadRequest, oauth.CodeInvalidGrant, "longer than 8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(c.remoteIssued.got)
			status, body := c.redeem(c.home.ca, researchID, tt.grant(t), tt.extra, nil)
			if d, _ := body["error_description"].(string); status != tt.status || body["error"] != tt.code ||
				body["access_token"] != nil || !strings.Contains(d, tt.reason) {
				t.Fatalf("got %d %v, want %d %s (%s)", status, body, tt.status, tt.code, tt.reason)
			}
			if len(c.remoteIssued.got) != before {
				t.Fatal("a refused request was reported as issued")
			}
		})
	}

	t.Run("replayed", func(t *testing.T) {
		grant := c.idjag(researchID, nil)
		if status, body := c.redeem(c.home.ca, researchID, grant, nil, nil); status != http.StatusOK {
			t.Fatalf("first use: %d %v", status, body)
		}
		status, body := c.redeem(c.home.ca, researchID, grant, nil, nil)
		if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
			t.Fatalf("replay: %d %v", status, body)
		}
	})

	t.Run("a refusal does not spend the ID-JAG", func(t *testing.T) {
		grant := c.idjag(researchID, nil)
		if status, body := c.redeem(c.home.ca, researchID, grant, url.Values{"scope": {"files:write"}}, nil); status != http.StatusBadRequest {
			t.Fatalf("wider scope: %d %v", status, body)
		}
		if status, body := c.redeem(c.home.ca, researchID, grant, nil, nil); status != http.StatusOK {
			t.Fatalf("after a refusal: %d %v", status, body)
		}
	})

	t.Run("expired", func(t *testing.T) {
		grant := c.idjag(researchID, nil)
		c.remote.clock.Advance(IDJAGLifetime + assertionLeeway + time.Second)
		status, body := c.redeem(c.home.ca, researchID, grant, nil, nil)
		if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant || !strings.Contains(body["error_description"].(string), "expired") {
			t.Fatalf("expired: %d %v", status, body)
		}
	})
}

// TestIDJAGTrust: remote takes ID-JAGs only from issuers marked for them,
// and home's tokens are not subject tokens there when it says so.
func TestIDJAGTrust(t *testing.T) {
	c := newChain(t, func(cfg *Config) {
		home := cfg.TrustedIssuers[0]
		cfg.TrustedIssuers = []TrustedIssuer{{Issuer: home.Issuer, Keys: home.Keys}}
	})
	status, body := c.redeem(c.home.ca, researchID, c.idjag(researchID, nil), nil, nil)
	if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
		t.Fatalf("an issuer trusted for subject tokens only: %d %v", status, body)
	}
	if md := c.remote.srv.Metadata(); md.AuthorizationGrantProfilesSupported != nil {
		t.Fatalf("remote advertises %v without an ID-JAG issuer", md.AuthorizationGrantProfilesSupported)
	}

	// With IDJAG and NoSubjectTokens: an ID-JAG or an access token of
	// home's is no subject token at remote.
	c = newChain(t)
	for name, subject := range map[string]string{
		"ID-JAG":       c.idjag(researchID, nil),
		"access token": c.home.userToken(c.remote.issuer, "files:read"),
	} {
		// remote's own agent exchanges it.
		svid := func() string { return svidFor(t, c.remoteCA, localID, c.remote) }
		status, body, _ := c.remote.post(PathToken, url.Values{
			"grant_type": {oauth.GrantTokenExchange}, "client_assertion_type": {oauth.AssertionJWTSPIFFE},
			"client_assertion": {svid()}, "subject_token": {subject}, "subject_token_type": {oauth.TokenTypeAccessToken},
			"actor_token": {svid()}, "actor_token_type": {oauth.TokenTypeJWT}, "resource": {filesURI},
		}, nil)
		if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidRequest {
			t.Fatalf("home's %s as subject token at remote: %d %v", name, status, body)
		}
	}
}

// TestIDJAGDPoP follows the binding matrix of SPECS.md §12.2.
func TestIDJAGDPoP(t *testing.T) {
	c := newChain(t)
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1, k2 := key(), key()
	proof := func(e *testEnv, k *ecdsa.PrivateKey) http.Header {
		p, err := dpop.NewProof(e.ctx, k, dpop.ProofParams{Method: http.MethodPost, URL: e.issuer + PathToken, Now: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"Dpop": {p}}
	}
	jkt, err := jose.Thumbprint(k1.Public())
	if err != nil {
		t.Fatal(err)
	}
	bound := func() string {
		status, body := c.requestIDJAG(researchID, c.agentToken(researchID), nil, proof(c.home, k1))
		if status != http.StatusOK {
			t.Fatalf("ID-JAG with a proof: %d %v", status, body)
		}
		grant := body["access_token"].(string)
		if g := decodeIDJAG(t, c.home, grant); g.Confirmation == nil || g.Confirmation.JKT != jkt {
			t.Fatalf("the ID-JAG is not bound to the proof's key: %+v", g.Confirmation)
		}
		if body["token_type"] != oauth.TokenTypeNA {
			t.Fatalf("token_type %v", body["token_type"])
		}
		return grant
	}

	t.Run("cnf and no proof", func(t *testing.T) {
		status, body := c.redeem(c.home.ca, researchID, bound(), nil, nil)
		if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
			t.Fatalf("%d %v", status, body)
		}
	})
	t.Run("cnf and a proof with another key", func(t *testing.T) {
		status, body := c.redeem(c.home.ca, researchID, bound(), nil, proof(c.remote, k2))
		if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
			t.Fatalf("%d %v", status, body)
		}
	})
	t.Run("cnf and its key", func(t *testing.T) {
		status, body := c.redeem(c.home.ca, researchID, bound(), nil, proof(c.remote, k1))
		if status != http.StatusOK || body["token_type"] != oauth.TokenTypeDPoP {
			t.Fatalf("%d %v", status, body)
		}
		if at := c.remote.verify(body["access_token"].(string), filesURI); at.Confirmation == nil || at.Confirmation.JKT != jkt {
			t.Fatalf("the access token is not bound: %+v", at.Confirmation)
		}
	})
	t.Run("no cnf and a proof", func(t *testing.T) {
		status, body := c.redeem(c.home.ca, researchID, c.idjag(researchID, nil), nil, proof(c.remote, k2))
		if status != http.StatusOK || body["token_type"] != oauth.TokenTypeDPoP {
			t.Fatalf("%d %v", status, body)
		}
	})
	t.Run("a cnf of another kind", func(t *testing.T) {
		grant := signAs(t, c.home, jose.TypIDJAG, c.forgedIDJAG(func(m map[string]any) { m["cnf"] = map[string]any{"x5t#S256": "abc"} }))
		status, body := c.redeem(c.home.ca, researchID, grant, nil, proof(c.remote, k1))
		if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
			t.Fatalf("%d %v", status, body)
		}
	})
}

// TestFederatedClients: workloads of federated trust domains authenticate
// with their JWT-SVIDs, and only those an entry admits.
func TestFederatedClients(t *testing.T) {
	c := newChain(t)
	cc := func(authority *ca.CA, id spiffeid.ID, extra url.Values) (int, map[string]any) {
		form := url.Values{
			"grant_type":            {oauth.GrantClientCredentials},
			"client_assertion_type": {oauth.AssertionJWTSPIFFE},
			"client_assertion":      {svidFor(t, authority, id, c.remote)},
		}
		for k, v := range extra {
			form[k] = v
		}
		status, body, _ := c.remote.post(PathToken, form, nil)
		return status, body
	}

	status, body := cc(c.home.ca, researchID, url.Values{"resource": {filesURI}, "scope": {"files:write"}})
	if status != http.StatusOK {
		t.Fatalf("client_credentials of a federated agent: %d %v", status, body)
	}
	if at := c.remote.verify(body["access_token"].(string), filesURI); at.Subject != researchID.String() || at.ClientID != researchID.String() || at.Actor != nil {
		t.Fatalf("token %+v", at)
	}
	// The same SVID as a jwt-bearer client assertion (iss = sub).
	form := url.Values{"grant_type": {oauth.GrantClientCredentials}, "resource": {filesURI},
		"client_assertion_type": {oauth.AssertionJWTBearer}, "client_assertion": {svidFor(t, c.home.ca, researchID, c.remote)}}
	if status, body, _ := c.remote.post(PathToken, form, nil); status != http.StatusOK {
		t.Fatalf("jwt-bearer client assertion: %d %v", status, body)
	}

	for _, tt := range []struct {
		name      string
		authority *ca.CA
		id        spiffeid.ID
		extra     url.Values
		status    int
		code      string
		reason    string
	}{
		{"a domain not listed", c.stranger, strangerID, nil, http.StatusUnauthorized, oauth.CodeInvalidClient, "not a client admitted from trust domain 'c.test'"},
		{"a workload no entry matches", c.home.ca, serviceID, nil, http.StatusUnauthorized, oauth.CodeInvalidClient, "not a client admitted"},
		{"not a whole path segment", c.home.ca, agentxID, nil, http.StatusUnauthorized, oauth.CodeInvalidClient, "not a client admitted"},
		{"a scope the entry does not list", c.home.ca, researchID, url.Values{"scope": {"notes:read"}}, http.StatusBadRequest, oauth.CodeInvalidScope, "may not request scope"},
		{"a grant the exact entry does not list", c.home.ca, paymentsID, nil, http.StatusBadRequest, oauth.CodeUnauthorizedClient, "may not use client_credentials"},
		{"token exchange", c.home.ca, researchID, url.Values{"grant_type": {oauth.GrantTokenExchange},
			"subject_token": {"x"}, "subject_token_type": {oauth.TokenTypeAccessToken}}, http.StatusBadRequest, oauth.CodeUnauthorizedClient, "may not use"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := cc(tt.authority, tt.id, tt.extra)
			if status != tt.status || body["error"] != tt.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}

	t.Run("an SVID signed by another domain's key", func(t *testing.T) {
		// A JWT-SVID naming a workload of home's domain, signed with
		// remote's own key: home's bundle does not verify it.
		forged := signAs(t, c.remote, jose.TypJWT, map[string]any{"sub": researchID.String(), "aud": c.remote.issuer,
			"exp": c.remote.clock.Now().Add(time.Minute).Unix(), "jti": "j1"})
		status, body, _ := c.remote.post(PathToken, url.Values{"grant_type": {oauth.GrantClientCredentials},
			"client_assertion_type": {oauth.AssertionJWTSPIFFE}, "client_assertion": {forged}}, nil)
		if status != http.StatusUnauthorized || body["error"] != oauth.CodeInvalidClient {
			t.Fatalf("%d %v", status, body)
		}
	})
	t.Run("a replayed SVID", func(t *testing.T) {
		svid := svidFor(t, c.home.ca, researchID, c.remote)
		form := url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_assertion_type": {oauth.AssertionJWTSPIFFE}, "client_assertion": {svid}}
		if status, body, _ := c.remote.post(PathToken, form, nil); status != http.StatusOK {
			t.Fatalf("first: %d %v", status, body)
		}
		if status, body, _ := c.remote.post(PathToken, form, nil); status != http.StatusUnauthorized || body["error"] != oauth.CodeInvalidClient {
			t.Fatalf("replay: %d %v", status, body)
		}
	})
	t.Run("no introspection", func(t *testing.T) {
		status, body, _ := c.remote.post(PathIntrospect, url.Values{"token": {"x"}, "client_assertion_type": {oauth.AssertionJWTSPIFFE},
			"client_assertion": {svidFor(t, c.home.ca, researchID, c.remote)}}, nil)
		if status != http.StatusBadRequest || body["error"] != oauth.CodeUnauthorizedClient {
			t.Fatalf("%d %v", status, body)
		}
	})
	t.Run("without FederatedSVIDs", func(t *testing.T) {
		plain := newTestEnv(t)
		status, body, _ := plain.post(PathToken, url.Values{"grant_type": {oauth.GrantClientCredentials},
			"client_assertion_type": {oauth.AssertionJWTSPIFFE}, "client_assertion": {svidFor(t, c.stranger, strangerID, plain)}}, nil)
		if status != http.StatusUnauthorized || body["error"] != oauth.CodeInvalidClient {
			t.Fatalf("%d %v", status, body)
		}
	})
}

// TestIDJAGMetadata: each side advertises what it does.
func TestIDJAGMetadata(t *testing.T) {
	c := newChain(t)
	home, remote, plain := c.home.srv.Metadata(), c.remote.srv.Metadata(), newTestEnv(t).srv.Metadata()
	if !slices.Equal(home.IdentityChainingRequestedTokenTypesSupported, []string{oauth.TokenTypeIDJAG}) || home.AuthorizationGrantProfilesSupported != nil {
		t.Fatalf("home: %v %v", home.IdentityChainingRequestedTokenTypesSupported, home.AuthorizationGrantProfilesSupported)
	}
	if !slices.Equal(remote.AuthorizationGrantProfilesSupported, []string{oauth.GrantProfileIDJAG}) || !slices.Contains(remote.GrantTypesSupported, oauth.GrantJWTBearer) ||
		remote.IdentityChainingRequestedTokenTypesSupported != nil {
		t.Fatalf("remote: %v %v", remote.AuthorizationGrantProfilesSupported, remote.GrantTypesSupported)
	}
	if plain.AuthorizationGrantProfilesSupported != nil || plain.IdentityChainingRequestedTokenTypesSupported != nil {
		t.Fatal("a server without ID-JAG settings advertises them")
	}
	// The wire names, exactly.
	for _, tt := range []struct {
		e      *testEnv
		member string
		want   string
	}{
		{c.home, "identity_chaining_requested_token_types_supported", "urn:ietf:params:oauth:token-type:id-jag"},
		{c.remote, "authorization_grant_profiles_supported", "urn:ietf:params:oauth:grant-profile:id-jag"},
	} {
		resp, err := http.Get(tt.e.issuer + PathOAuthMetadata)
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]any
		err = json.NewDecoder(resp.Body).Decode(&md)
		resp.Body.Close()
		if list, _ := md[tt.member].([]any); err != nil || len(list) != 1 || list[0] != tt.want {
			t.Fatalf("%s: %s is %v (%v)", tt.e.issuer, tt.member, md[tt.member], err)
		}
	}
}

// TestIDJAGConfig: New refuses settings that cannot work.
func TestIDJAGConfig(t *testing.T) {
	ctx := context.Background()
	authority, err := ca.New(ctx, ca.Config{TrustDomain: "spiffe://" + testTD, Journal: &ca.MemoryJournal{}})
	if err != nil {
		t.Fatal(err)
	}
	base := func() Config {
		return Config{Issuer: "https://as.example.org", Store: NewMemoryStore(nil), TrustDomain: testTD, SVIDs: authority}
	}
	keys := jose.StaticKeys(nil)
	for _, tt := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"ID-JAG audience is the server", func(c *Config) { c.IDJAGAudiences = []IDJAGAudience{{Issuer: c.Issuer}} }, "is this server"},
		{"ID-JAG audience twice", func(c *Config) {
			c.IDJAGAudiences = []IDJAGAudience{{Issuer: "https://b.example"}, {Issuer: "https://b.example"}}
		}, "twice"},
		{"ID-JAG audience not an issuer", func(c *Config) { c.IDJAGAudiences = []IDJAGAudience{{Issuer: "http://b.example"}} }, "https"},
		{"ID-JAG audience bad scope", func(c *Config) {
			c.IDJAGAudiences = []IDJAGAudience{{Issuer: "https://b.example", Scopes: []string{"a b"}}}
		}, "scope"},
		{"NoSubjectTokens without IDJAG", func(c *Config) {
			c.TrustedIssuers = []TrustedIssuer{{Issuer: "https://b.example", Keys: keys, NoSubjectTokens: true}}
		}, "trusted for nothing"},
		{"federated clients without FederatedSVIDs", func(c *Config) {
			c.FederatedClients = []FederatedClient{{SPIFFEID: "spiffe://b.test/agent/*"}}
		}, "FederatedSVIDs"},
		{"federated client of the own domain", func(c *Config) {
			c.FederatedSVIDs = authority
			c.FederatedClients = []FederatedClient{{SPIFFEID: "spiffe://example.org/agent/*"}}
		}, "this server's trust domain"},
		{"federated client not a SPIFFE ID", func(c *Config) {
			c.FederatedSVIDs = authority
			c.FederatedClients = []FederatedClient{{SPIFFEID: "https://b.test/agent"}}
		}, "not a SPIFFE ID"},
		{"federated client a bare trust domain", func(c *Config) {
			c.FederatedSVIDs = authority
			c.FederatedClients = []FederatedClient{{SPIFFEID: "spiffe://b.test"}}
		}, "names a trust domain"},
		{"federated client with token exchange", func(c *Config) {
			c.FederatedSVIDs = authority
			c.FederatedClients = []FederatedClient{{SPIFFEID: "spiffe://b.test/a", Grants: []string{oauth.GrantTokenExchange}}}
		}, "not for federated clients"},
		{"federated client twice", func(c *Config) {
			c.FederatedSVIDs = authority
			c.FederatedClients = []FederatedClient{{SPIFFEID: "spiffe://b.test/a"}, {SPIFFEID: "spiffe://b.test/a"}}
		}, "twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.set(&cfg)
			_, err := New(ctx, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestIDJAGRefusalsReported: every refused request of identity chaining
// reaches OnRefuseChaining with the authenticated client and the error
// sent, at both servers; a granted one does not.
func TestIDJAGRefusalsReported(t *testing.T) {
	type refusal struct{ client, grant, code string }
	var mu sync.Mutex
	var got []refusal
	record := func(_ context.Context, client, grant string, e *oauth.Error) {
		mu.Lock()
		got = append(got, refusal{client, grant, e.Code})
		mu.Unlock()
	}
	c := newChain(t, func(cfg *Config) { cfg.OnRefuseChaining = record })
	grant := c.idjag(researchID, nil)
	if status, body := c.redeem(c.home.ca, researchID, grant, nil, nil); status != http.StatusOK {
		t.Fatalf("first use: %d %v", status, body)
	}
	if len(got) != 0 {
		t.Fatalf("a granted request was reported refused: %v", got)
	}
	if status, _ := c.redeem(c.home.ca, researchID, grant, nil, nil); status != http.StatusBadRequest {
		t.Fatalf("replay: %d", status)
	}
	want := refusal{researchID.String(), oauth.GrantJWTBearer, oauth.CodeInvalidGrant}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("reported %v, want [%v]", got, want)
	}
}
