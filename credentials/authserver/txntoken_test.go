package authserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

const (
	secretClientID = "web-backend"
	hostID         = "spiffe://example.org/host"
)

// txnRequest is a Txn-Token request by research, authenticated with its
// JWT-SVID, for alice's access token addressed to research (scope
// notes:read notes:write). extra replaces parameters; a nil value removes
// one.
func txnRequest(e *testEnv, extra url.Values) url.Values {
	f := url.Values{
		"grant_type":            {oauth.GrantTokenExchange},
		"requested_token_type":  {oauth.TokenTypeTxnToken},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {e.svid(researchID)},
		"audience":              {testTD},
		"scope":                 {"notes:read"},
		"subject_token":         {e.userToken(researchID.String(), "notes:read", "notes:write")},
		"subject_token_type":    {oauth.TokenTypeAccessToken},
		"request_context":       {`{"req_ip":"192.0.2.7"}`},
		"request_details":       {`{"tool":"notes/search","amount":3}`},
	}
	for k, v := range extra {
		if v == nil {
			delete(f, k)
			continue
		}
		f[k] = v
	}
	return f
}

// txnOpts are the options a workload of the trust domain verifies the
// server's Txn-Tokens with.
func (e *testEnv) txnOpts() txntoken.VerifyOptions {
	return txntoken.VerifyOptions{Keys: e.srv.Keys(), TrustDomain: testTD, Issuer: e.issuer, Now: e.clock.Now}
}

// txnToken asks for a Txn-Token over HTTP and fails the test unless one
// is issued.
func (e *testEnv) txnToken(t testing.TB, extra url.Values) (string, *txntoken.Claims) {
	t.Helper()
	status, body, _ := e.post(PathToken, txnRequest(e, extra), nil)
	if status != http.StatusOK {
		t.Fatalf("txn-token request: %d %v", status, body)
	}
	tok, _ := body["access_token"].(string)
	c, err := txntoken.Verify(e.ctx, tok, e.txnOpts())
	if err != nil {
		t.Fatalf("txntoken.Verify: %v", err)
	}
	return tok, c
}

// replaceAs has agent present old as the subject token of a replacement
// request.
func replaceAs(e *testEnv, agent spiffeid.ID, old string, extra url.Values) url.Values {
	f := txnRequest(e, url.Values{
		"client_assertion":   {e.svid(agent)},
		"subject_token":      {old},
		"subject_token_type": {oauth.TokenTypeTxnToken},
		"request_context":    nil,
		"request_details":    nil,
	})
	for k, v := range extra {
		if v == nil {
			delete(f, k)
			continue
		}
		f[k] = v
	}
	return f
}

// chainOf returns rctx.req_wl_chain.
func chainOf(t testing.TB, c *txntoken.Claims) []string {
	t.Helper()
	raw, ok := c.RequestContext.Member(RctxWorkloadChain)
	if !ok {
		t.Fatalf("rctx %s has no %s", c.RequestContext, RctxWorkloadChain)
	}
	var chain []string
	if err := json.Unmarshal(raw, &chain); err != nil {
		t.Fatalf("rctx.%s: %v", RctxWorkloadChain, err)
	}
	return chain
}

func member(t testing.TB, o txntoken.Object, name string) string {
	t.Helper()
	raw, ok := o.Member(name)
	if !ok {
		return ""
	}
	return string(raw)
}

func withSecretClient(grants ...string) envOption {
	return func(c *Config) {
		hash, err := webSecretHash()
		if err != nil {
			panic(err)
		}
		c.Clients = append(c.Clients, StaticClient{ID: secretClientID, AuthMethod: oauth.AuthClientSecretPost,
			SecretHash: hash, GrantTypes: grants, Scopes: []string{"notes:read"}})
	}
}

// TestTxnTokenOverHTTP: a workload of the trust domain, authenticated by
// its JWT-SVID, exchanges the access token it received for a Txn-Token
// that workloads verify with the server's JWKS and the trust domain name.
func TestTxnTokenOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var txnIssued []IssuedTxnToken
	accessIssued := 0
	e := newTestEnv(t, func(c *Config) {
		c.OnIssueTxnToken = func(_ context.Context, it IssuedTxnToken) error {
			mu.Lock()
			defer mu.Unlock()
			txnIssued = append(txnIssued, it)
			return nil
		}
		c.OnIssue = func(context.Context, Issued) error {
			mu.Lock()
			defer mu.Unlock()
			accessIssued++
			return nil
		}
	})
	status, body, hdr := e.post(PathToken, txnRequest(e, nil), nil)
	if status != http.StatusOK {
		t.Fatalf("status %d %v", status, body)
	}
	if body["issued_token_type"] != oauth.TokenTypeTxnToken || body["token_type"] != oauth.TokenTypeNA ||
		body["expires_in"] != float64(60) {
		t.Fatalf("response %v", body)
	}
	for _, k := range []string{"refresh_token", "id_token"} {
		if _, ok := body[k]; ok {
			t.Errorf("response has %s", k)
		}
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", hdr.Get("Cache-Control"))
	}
	tok := body["access_token"].(string)

	// A workload elsewhere verifies with the published JWKS.
	resp, err := http.Get(e.issuer + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	keys, err := jose.ParseKeySet(jwks, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	c, err := txntoken.Verify(e.ctx, tok, txntoken.VerifyOptions{Keys: jose.StaticKeys(keys), TrustDomain: testTD, Now: e.clock.Now})
	if err != nil {
		t.Fatalf("verify with the JWKS: %v", err)
	}
	if c.Subject != "alice" || c.Scope != "notes:read" || c.RequestingWorkload != researchID.String() ||
		c.Audience != testTD || c.Issuer != e.issuer || c.Txn == "" || c.ExpiresAt-c.IssuedAt != 60 {
		t.Fatalf("claims %+v", c)
	}
	if got := c.TransactionContext.String(); got != `{"amount":3,"tool":"notes/search"}` {
		t.Errorf("tctx %s", got)
	}
	if member(t, c.RequestContext, "req_ip") != `"192.0.2.7"` ||
		member(t, c.RequestContext, RctxAuthn) != `"`+oauth.AuthSPIFFEJWT+`"` ||
		member(t, c.RequestContext, RctxSubjectSource) != `"`+SubjectSourceToken+`"` ||
		!slices.Equal(chainOf(t, c), []string{researchID.String()}) {
		t.Errorf("rctx %s", c.RequestContext)
	}
	// Other trust domains refuse it; so does the in-process shortcut
	// with the server's own options.
	if _, err := txntoken.Verify(e.ctx, tok, txntoken.VerifyOptions{Keys: e.srv.Keys(), TrustDomain: "other.org", Now: e.clock.Now}); !errors.Is(err, txntoken.ErrAudience) {
		t.Errorf("verified for other.org: %v", err)
	}
	if _, err := txntoken.Verify(e.ctx, tok, e.srv.TxnTokenVerifyOptions()); err != nil {
		t.Errorf("TxnTokenVerifyOptions: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(txnIssued) != 1 || txnIssued[0].Claims != *c || txnIssued[0].TokenHash != txntoken.TokenHash(tok) ||
		txnIssued[0].GrantType != oauth.GrantTokenExchange || txnIssued[0].SubjectTokenType != oauth.TokenTypeAccessToken {
		t.Fatalf("audit hook got %+v", txnIssued)
	}
	// userToken issued one access token through issueAccessToken; the
	// Txn-Token is not reported as an access token.
	if accessIssued != 1 {
		t.Errorf("OnIssue called %d times, want 1 (the subject token only)", accessIssued)
	}
}

// TestTxnTokenLifetime: the TTL is a Config field, capped by the subject
// token's own expiry, and longer than txntoken.MaxTTL is refused.
func TestTxnTokenLifetime(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.TxnTokenTTL = 30 * time.Second })
	status, body, _ := e.post(PathToken, txnRequest(e, nil), nil)
	if status != http.StatusOK || body["expires_in"] != float64(30) {
		t.Fatalf("TTL 30s: %d %v", status, body)
	}

	e = newTestEnv(t)
	subject := e.userToken(researchID.String(), "notes:read")
	e.clock.Advance(DefaultAccessTokenTTL - 20*time.Second)
	_, c := e.txnToken(t, url.Values{"subject_token": {subject}})
	if c.ExpiresAt-c.IssuedAt != 20 {
		t.Errorf("lifetime %ds, want 20 (the subject token's remaining life)", c.ExpiresAt-c.IssuedAt)
	}

	for _, ttl := range []time.Duration{txntoken.MaxTTL + time.Second, -time.Second} {
		_, err := New(context.Background(), Config{Issuer: "https://as.example", Store: NewMemoryStore(nil), TxnTokenTTL: ttl})
		if err == nil {
			t.Errorf("TxnTokenTTL %s accepted", ttl)
		}
	}
}

// TestTxnTokenRefused: every request the TTS must refuse, with the error
// it gets.
func TestTxnTokenRefused(t *testing.T) {
	otherTTS := func(e *testEnv) string {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		now := e.clock.Now()
		tok, err := txntoken.Sign(e.ctx, k, "rogue", txntoken.Claims{Issuer: e.issuer, IssuedAt: now.Unix(),
			ExpiresAt: now.Add(time.Minute).Unix(), Audience: testTD, Txn: "t", Subject: "alice", Scope: "notes:read",
			RequestingWorkload: researchID.String()})
		if err != nil {
			e.t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name   string
		opts   []envOption
		form   func(e *testEnv) url.Values
		status int
		code   string
		// reason, when set, is in the error description.
		reason string
	}{
		// Who may ask.
		{"client secret", []envOption{withSecretClient(oauth.GrantTokenExchange)}, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"client_assertion_type": nil, "client_assertion": nil,
				"client_id": {secretClientID}, "client_secret": {webSecret}})
		}, 400, oauth.CodeUnauthorizedClient, ""},
		{"private_key_jwt static client", []envOption{func(c *Config) {
			c.Clients[0].GrantTypes = append(c.Clients[0].GrantTypes, oauth.GrantTokenExchange)
		}}, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"client_assertion_type": {oauth.AssertionJWTBearer}, "client_assertion": {e.clientAssertion(nil)}})
		}, 400, oauth.CodeUnauthorizedClient, ""},
		{"workload of another trust domain", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"client_assertion": {foreignSVID(e)}})
		}, 401, oauth.CodeInvalidClient, ""},
		{"workload not in TxnTokenWorkloads", []envOption{func(c *Config) {
			c.TxnTokenWorkloads = []string{paymentsID.String()}
		}}, func(e *testEnv) url.Values { return txnRequest(e, nil) }, 400, oauth.CodeUnauthorizedClient, ""},
		{"workload outside a TxnTokenWorkloads prefix", []envOption{func(c *Config) {
			c.TxnTokenWorkloads = []string{"spiffe://example.org/agent/pay/*"}
		}}, func(e *testEnv) url.Values { return txnRequest(e, nil) }, 400, oauth.CodeUnauthorizedClient, ""},

		// Audience.
		{"no audience", nil, func(e *testEnv) url.Values { return txnRequest(e, url.Values{"audience": nil}) }, 400, oauth.CodeInvalidRequest, ""},
		{"audience as a SPIFFE ID", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"audience": {"spiffe://" + testTD}})
		}, 400, oauth.CodeInvalidTarget, ""},
		{"audience of another trust domain", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"audience": {"other.org"}})
		}, 400, oauth.CodeInvalidTarget, ""},
		{"audience in upper case", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"audience": {"EXAMPLE.ORG"}})
		}, 400, oauth.CodeInvalidTarget, ""},
		{"audience a resource", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"audience": {notesURI}})
		}, 400, oauth.CodeInvalidTarget, ""},
		{"two audiences", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"audience": {testTD, "other.org"}})
		}, 400, oauth.CodeInvalidTarget, ""},
		{"a resource", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"resource": {notesURI}})
		}, 400, oauth.CodeInvalidTarget, ""},

		// Scope.
		{"no scope", nil, func(e *testEnv) url.Values { return txnRequest(e, url.Values{"scope": nil}) }, 400, oauth.CodeInvalidRequest, ""},
		{"scope wider than the subject token's", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"scope": {"notes:read payments:transfer"}})
		}, 400, oauth.CodeInvalidScope, ""},
		{"subject token without scope", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"subject_token": {e.userToken(researchID.String())}})
		}, 400, oauth.CodeInvalidScope, ""},
		{"JWT-SVID subject token (scope unknown)", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"subject_token": {e.svid(researchID)}, "subject_token_type": {oauth.TokenTypeJWT}})
		}, 400, oauth.CodeInvalidScope, "cannot be determined"},
		{"malformed scope", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"scope": {"notes:read  notes:write"}})
		}, 400, oauth.CodeInvalidScope, ""},

		// Subject token.
		{"no subject token", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"subject_token": nil})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"refresh token subject", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"subject_token": {"opaque-refresh-token"}, "subject_token_type": {oauth.TokenTypeRefreshToken}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"self-signed subject", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"subject_token_type": {TokenTypeSelfSigned}})
		}, 400, oauth.CodeInvalidRequest, oauth.TokenTypeTxnToken},
		{"unsigned JSON subject", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"subject_token": {`{"sub":"alice","scope":"notes:read"}`}, "subject_token_type": {TokenTypeUnsignedJSON}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"expired subject token", nil, func(e *testEnv) url.Values {
			f := txnRequest(e, nil)
			e.clock.Advance(DefaultAccessTokenTTL + time.Second)
			f.Set("client_assertion", e.svid(researchID))
			return f
		}, 400, oauth.CodeInvalidRequest, ""},
		{"revoked subject token", nil, func(e *testEnv) url.Values {
			f := txnRequest(e, nil)
			c := e.verify(f.Get("subject_token"), researchID.String())
			if err := e.srv.revokeAccessToken(e.ctx, c.ID, time.Unix(c.ExpiresAt, 0)); err != nil {
				e.t.Fatal(err)
			}
			return f
		}, 400, oauth.CodeInvalidRequest, ""},
		{"subject token for another audience", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"subject_token": {e.userToken(notesURI, "notes:read")}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"Txn-Token presented as an access token", nil, func(e *testEnv) url.Values {
			old, _ := e.txnToken(e.t, nil)
			return txnRequest(e, url.Values{"subject_token": {old}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"access token presented as a Txn-Token", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"subject_token_type": {oauth.TokenTypeTxnToken}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"Txn-Token of another service", nil, func(e *testEnv) url.Values {
			return replaceAs(e, researchID, otherTTS(e), nil)
		}, 400, oauth.CodeInvalidRequest, ""},
		{"actor token", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"actor_token": {e.svid(researchID)}, "actor_token_type": {oauth.TokenTypeJWT}})
		}, 400, oauth.CodeInvalidRequest, ""},

		// request_context and request_details.
		{"request_details not JSON", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"request_details": {`{"amount":3`}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"request_details base64url-encoded (drafts ≤ -06)", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"request_details": {base64.RawURLEncoding.EncodeToString([]byte(`{"amount":3}`))}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"request_details an array", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"request_details": {`[{"amount":3}]`}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"request_details with duplicate members", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"request_details": {`{"amount":3,"amount":300}`}})
		}, 400, oauth.CodeInvalidRequest, ""},
		{"request_context not JSON", nil, func(e *testEnv) url.Values {
			return txnRequest(e, url.Values{"request_context": {`req_ip=192.0.2.7`}})
		}, 400, oauth.CodeInvalidRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, tc.opts...)
			status, body, _ := e.post(PathToken, tc.form(e), nil)
			if status != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if body["access_token"] != nil {
				t.Fatal("a token was issued")
			}
			d, _ := body["error_description"].(string)
			if strings.Contains(d, "eyJ") || strings.Contains(d, "authserver:") {
				t.Errorf("description leaks a token or internals: %q", d)
			}
			if tc.reason != "" && !strings.Contains(d, tc.reason) {
				t.Errorf("description %q does not say %q", d, tc.reason)
			}
		})
	}
}

// TestTxnTokenWorkloadPolicy: TxnTokenWorkloads names workloads exactly
// or by a path prefix ending in "/*"; entries outside the trust domain,
// or that are no SPIFFE IDs, are configuration errors; and the check
// itself refuses a client of another trust domain however it
// authenticated.
func TestTxnTokenWorkloadPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		workloads []string
		research  bool
		payments  bool
	}{
		{"default: every workload", nil, true, true},
		{"exact", []string{researchID.String()}, true, false},
		{"prefix", []string{"spiffe://example.org/agent/*"}, true, true},
		{"the whole trust domain", []string{"spiffe://example.org/*"}, true, true},
		{"prefix is whole segments", []string{"spiffe://example.org/agent/res/*"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.TxnTokenWorkloads = tc.workloads })
			for _, w := range []struct {
				id   spiffeid.ID
				want bool
			}{{researchID, tc.research}, {paymentsID, tc.payments}} {
				status, body, _ := e.post(PathToken, txnRequest(e, url.Values{
					"client_assertion": {e.svid(w.id)},
					"subject_token":    {e.userToken(w.id.String(), "notes:read")},
				}), nil)
				if got := status == http.StatusOK; got != w.want {
					t.Errorf("%s: %d %v, want allowed=%v", w.id, status, body, w.want)
				}
			}
		})
	}
	for _, bad := range []string{"spiffe://other.org/agent/research", "spiffe://other.org/*", "research",
		"https://example.org/agent", "spiffe://example.org/agent/", "spiffe://example.org/agent/re*", "*"} {
		_, err := New(context.Background(), Config{Issuer: "https://as.example", Store: NewMemoryStore(nil),
			TrustDomain: testTD, TxnTokenWorkloads: []string{bad}})
		if err == nil {
			t.Errorf("TxnTokenWorkloads %q accepted", bad)
		}
	}

	e := newTestEnv(t)
	for _, c := range []*authenticated{
		{client: &client{ID: "spiffe://other.org/agent/research", Kind: kindAgent}, Method: oauth.AuthSPIFFEJWT},
		{client: &client{ID: researchID.String(), Kind: kindStatic}, Method: oauth.AuthSPIFFEJWT},
		{client: &client{ID: researchID.String(), Kind: kindAgent}, Method: oauth.AuthNone},
		{client: &client{ID: "not-a-spiffe-id", Kind: kindAgent}, Method: oauth.AuthSPIFFEJWT},
	} {
		if _, err := e.srv.txnWorkload(c); oauth.AsError(err).Code != oauth.CodeUnauthorizedClient {
			t.Errorf("%s (kind %d, %s): %v", c.ID, c.Kind, c.Method, err)
		}
	}
	if id, err := e.srv.txnWorkload(&authenticated{client: &client{ID: researchID.String(), Kind: kindAgent}, Method: oauth.AuthTLSClient}); err != nil || id != researchID.String() {
		t.Errorf("X.509-SVID client: %q %v", id, err)
	}
}

// TestTxnTokenReplacement: a Txn-Token presented as the subject token is
// replaced keeping txn, sub, aud and tctx, never with wider scope, never
// once expired, and the chain of requesting workloads grows in rctx.
func TestTxnTokenReplacement(t *testing.T) {
	t.Run("kept and narrowed", func(t *testing.T) {
		e := newTestEnv(t)
		old, oc := e.txnToken(t, url.Values{"scope": {"notes:read notes:write"}})
		e.clock.Advance(30 * time.Second)
		status, body, _ := e.post(PathToken, replaceAs(e, paymentsID, old, url.Values{
			"scope":           {"notes:read"},
			"request_details": {`{"amount":3.0,"page":2}`},
			"request_context": {`{"req_ip":"198.51.100.1"}`},
		}), nil)
		if status != http.StatusOK {
			t.Fatalf("replacement: %d %v", status, body)
		}
		if body["issued_token_type"] != oauth.TokenTypeTxnToken || body["token_type"] != oauth.TokenTypeNA {
			t.Fatalf("response %v", body)
		}
		nc, err := txntoken.Verify(e.ctx, body["access_token"].(string), e.txnOpts())
		if err != nil {
			t.Fatal(err)
		}
		if nc.Txn != oc.Txn || nc.Subject != oc.Subject || nc.Audience != oc.Audience || nc.Scope != "notes:read" ||
			nc.RequestingWorkload != paymentsID.String() || nc.IssuedAt != oc.IssuedAt+30 {
			t.Fatalf("replacement claims %+v (old %+v)", nc, oc)
		}
		if got := nc.TransactionContext.String(); got != `{"amount":3,"page":2,"tool":"notes/search"}` {
			t.Errorf("tctx %s", got)
		}
		if got := chainOf(t, nc); !slices.Equal(got, []string{researchID.String(), paymentsID.String()}) {
			t.Errorf("chain %v", got)
		}
		if member(t, nc.RequestContext, "req_ip") != `"198.51.100.1"` || member(t, nc.RequestContext, RctxSubjectSource) != `"token"` {
			t.Errorf("rctx %s", nc.RequestContext)
		}
		if err := txntoken.CheckReplacement(oc, nc, e.clock.Now()); err != nil {
			t.Errorf("CheckReplacement of what was issued: %v", err)
		}
	})

	refused := []struct {
		name   string
		form   func(e *testEnv, old string) url.Values
		before func(e *testEnv)
		code   string
	}{
		{"widened scope", func(e *testEnv, old string) url.Values {
			return replaceAs(e, paymentsID, old, url.Values{"scope": {"notes:read notes:write"}})
		}, nil, oauth.CodeInvalidScope},
		{"changed tctx amount", func(e *testEnv, old string) url.Values {
			return replaceAs(e, paymentsID, old, url.Values{"request_details": {`{"amount":300}`}})
		}, nil, oauth.CodeInvalidRequest},
		{"expired Txn-Token", func(e *testEnv, old string) url.Values {
			return replaceAs(e, paymentsID, old, nil)
		}, func(e *testEnv) { e.clock.Advance(txntoken.DefaultTTL) }, oauth.CodeInvalidRequest},
		{"wrong audience", func(e *testEnv, old string) url.Values {
			return replaceAs(e, paymentsID, old, url.Values{"audience": {"other.org"}})
		}, nil, oauth.CodeInvalidTarget},
		{"Txn-Token presented as an ID token", func(e *testEnv, old string) url.Values {
			return replaceAs(e, paymentsID, old, url.Values{"subject_token_type": {oauth.TokenTypeIDToken}})
		}, nil, oauth.CodeInvalidRequest},
		{"Txn-Token presented as a JWT-SVID", func(e *testEnv, old string) url.Values {
			return replaceAs(e, paymentsID, old, url.Values{"subject_token_type": {oauth.TokenTypeJWT}})
		}, nil, oauth.CodeInvalidRequest},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			old, _ := e.txnToken(t, nil)
			if tc.before != nil {
				tc.before(e)
			}
			status, body, _ := e.post(PathToken, tc.form(e, old), nil)
			if status != http.StatusBadRequest || body["error"] != tc.code || body["access_token"] != nil {
				t.Fatalf("got %d %v, want 400 %s", status, body, tc.code)
			}
		})
	}

	t.Run("chain is capped", func(t *testing.T) {
		e := newTestEnv(t)
		tok, _ := e.txnToken(t, nil)
		for i := 1; ; i++ {
			status, body, _ := e.post(PathToken, replaceAs(e, paymentsID, tok, nil), nil)
			if i < MaxTxnTokenChain {
				if status != http.StatusOK {
					t.Fatalf("replacement %d: %d %v", i, status, body)
				}
				tok = body["access_token"].(string)
				continue
			}
			if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidRequest {
				t.Fatalf("replacement %d beyond the cap: %d %v", i, status, body)
			}
			break
		}
	})
}

// TestTxnTokenIsNotAnAccessToken: a Txn-Token is refused wherever an
// access token is expected, and an access token is never a Txn-Token
// (SPECS.md §6.5, X.1).
func TestTxnTokenIsNotAnAccessToken(t *testing.T) {
	e := newTestEnv(t)
	txn, _ := e.txnToken(t, nil)
	// A token of typ txntoken+jwt signed by the server that also carries
	// every claim of an access token for research: only the typ tells
	// it apart.
	now := e.clock.Now()
	accessClaims := map[string]any{"iss": e.issuer, "sub": "alice", "aud": researchID.String(), "client_id": "webapp",
		"jti": "j-txn", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "scope": "notes:read",
		"txn": "t", "req_wl": researchID.String()}
	typOnly, err := e.srv.keys.sign(e.ctx, jose.TypTxnToken, accessClaims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.keys.sign(e.ctx, jose.TypAccessToken, accessClaims); err != nil {
		t.Fatal(err)
	}

	for _, tok := range []struct{ name, token string }{{"Txn-Token", txn}, {"Txn-Token with access token claims", typOnly}} {
		for _, aud := range []string{"", testTD, researchID.String()} {
			_, err := e.srv.VerifyAccessToken(e.ctx, tok.token, aud)
			if err == nil || oauth.AsError(err).Code != oauth.CodeInvalidToken {
				t.Errorf("VerifyAccessToken(aud %q) accepted a %s: %v", aud, tok.name, err)
			}
			if tok.token == typOnly && !strings.Contains(oauth.AsError(err).Description, "wrong typ") {
				t.Errorf("%s refused for another reason than its typ: %v", tok.name, err)
			}
		}

		status, out, _ := e.post(PathIntrospect, url.Values{
			"token": {tok.token}, "client_assertion_type": {oauth.AssertionJWTBearer}, "client_assertion": {e.clientAssertion(nil)},
		}, nil)
		if status != http.StatusOK || out["active"] != false || len(out) != 1 {
			t.Errorf("introspection of a %s: %d %v", tok.name, status, out)
		}

		for _, res := range []string{researchID.String(), testTD} {
			rs, err := resource.New(resource.Config{Resource: res, MetadataURL: e.issuer + "/.well-known/oauth-protected-resource",
				Issuer: e.issuer, Keys: e.srv.Keys(), Revoked: e.srv.Revoked, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodPost, "https://rs.example/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+tok.token)
			if _, err := rs.Authenticate(r); err == nil {
				t.Errorf("resource server %s accepted a %s as bearer", res, tok.name)
			}
		}

		for _, typ := range []string{oauth.TokenTypeAccessToken, oauth.TokenTypeIDToken, oauth.TokenTypeJWT, oauth.TokenTypeTxnToken} {
			status, body, _ := e.post(PathToken, exchange(e, url.Values{"subject_token": {tok.token}, "subject_token_type": {typ}}), nil)
			if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidRequest {
				t.Errorf("%s exchanged for an access token as %s: %d %v", tok.name, typ, status, body)
			}
		}
	}
	status, body, _ := e.post(PathToken, ccAgent(e, url.Values{"grant_type": {oauth.GrantJWTBearer}, "assertion": {txn}}), nil)
	if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
		t.Errorf("Txn-Token as jwt-bearer assertion: %d %v", status, body)
	}
	status, body, _ = e.post(PathToken, ccAgent(e, url.Values{"client_assertion": {txn}}), nil)
	if status != http.StatusUnauthorized || body["error"] != oauth.CodeInvalidClient {
		t.Errorf("Txn-Token as client assertion: %d %v", status, body)
	}

	// And the other way round, also for an access token that carries
	// every claim of a Txn-Token.
	at := e.userToken(testTD, "notes:read")
	if _, err := txntoken.Verify(e.ctx, at, e.txnOpts()); !errors.Is(err, txntoken.ErrWrongType) {
		t.Errorf("txntoken.Verify of an access token: %v", err)
	}
	accessClaims["aud"] = testTD
	atOnly, err := e.srv.keys.sign(e.ctx, jose.TypAccessToken, accessClaims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txntoken.Verify(e.ctx, atOnly, e.txnOpts()); !errors.Is(err, txntoken.ErrWrongType) {
		t.Errorf("txntoken.Verify of an access token with Txn-Token claims: %v", err)
	}
	if status, body, _ := e.post(PathToken, replaceAs(e, researchID, atOnly, nil), nil); status != http.StatusBadRequest ||
		body["error"] != oauth.CodeInvalidRequest {
		t.Errorf("access token with Txn-Token claims replaced: %d %v", status, body)
	}
	_, cc := e.agentToken(researchID, url.Values{"resource": {notesURI}})
	if _, err := txntoken.Verify(e.ctx, cc["access_token"].(string), e.txnOpts()); !errors.Is(err, txntoken.ErrWrongType) {
		t.Errorf("txntoken.Verify of a client_credentials token: %v", err)
	}
}

// TestTxnTokenNotLogged: logs and audit records hold the token's hash,
// never the token.
func TestTxnTokenNotLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	e := newTestEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	tok, c := e.txnToken(t, nil)
	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	if !strings.Contains(logs, txntoken.TokenHash(tok)) || !strings.Contains(logs, c.Txn) {
		t.Errorf("issuance not logged with txn and hash: %s", logs)
	}
	if strings.Contains(logs, tok) || strings.Contains(logs, strings.Split(tok, ".")[2]) {
		t.Error("the token was logged")
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestTxnTokenAuditFailure: when the audit hook fails, no token is handed
// out.
func TestTxnTokenAuditFailure(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.OnIssueTxnToken = func(context.Context, IssuedTxnToken) error { return errors.New("audit log unavailable") }
	})
	status, body, _ := e.post(PathToken, txnRequest(e, nil), nil)
	if status != http.StatusInternalServerError || body["error"] != oauth.CodeServerError || body["access_token"] != nil {
		t.Fatalf("%d %v", status, body)
	}
	if _, _, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Subject: "alice", Scope: []string{"notes:read"}, RequestingWorkload: hostID}); err == nil {
		t.Fatal("IssueTxnToken succeeded while the audit hook fails")
	}
}

// TestTxnTokenRefusalReported: a refused Txn-Token request of an
// authenticated client reaches OnRefuseTxnToken with the client and the
// error it got, for the host to audit.
func TestTxnTokenRefusalReported(t *testing.T) {
	type refusal struct{ client, code string }
	var got []refusal
	e := newTestEnv(t, func(c *Config) {
		c.OnRefuseTxnToken = func(_ context.Context, client string, err *oauth.Error) {
			got = append(got, refusal{client, err.Code})
		}
	})
	status, body, _ := e.post(PathToken, txnRequest(e, url.Values{"scope": {"notes:read notes:write admin"}}), nil)
	if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidScope {
		t.Fatalf("a wider scope: %d %v", status, body)
	}
	if len(got) != 1 || got[0].client != researchID.String() || got[0].code != oauth.CodeInvalidScope {
		t.Fatalf("reported refusals %+v, want one invalid_scope for %s", got, researchID)
	}
	if status, _, _ := e.post(PathToken, txnRequest(e, nil), nil); status != http.StatusOK || len(got) != 1 {
		t.Fatalf("an issued token: %d, refusals %+v", status, got)
	}
}

// TestIssueTxnToken: the host mints Txn-Tokens in process, vouching for
// the subject itself or capped by a subject token, under the same rules.
func TestIssueTxnToken(t *testing.T) {
	details, err := txntoken.CallContext("payments/transfer", json.RawMessage(`{"payee":"bob","amount":3}`), map[string]any{"amount": 3})
	if err != nil {
		t.Fatal(err)
	}
	reqCtx, _ := txntoken.NewObject(map[string]any{"task": "42", RctxSubjectSource: "token"})

	t.Run("operator", func(t *testing.T) {
		var audited []IssuedTxnToken
		e := newTestEnv(t, func(c *Config) {
			c.OnIssueTxnToken = func(_ context.Context, it IssuedTxnToken) error { audited = append(audited, it); return nil }
		})
		tok, c, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{
			Subject: "alice", Scope: []string{"payments:transfer", "admin:anything"}, RequestingWorkload: hostID,
			RequestContext: reqCtx, RequestDetails: details, Txn: "task-42",
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := txntoken.Verify(e.ctx, tok, e.txnOpts())
		if err != nil {
			t.Fatal(err)
		}
		if *v != *c || c.Txn != "task-42" || c.Subject != "alice" || c.Scope != "payments:transfer admin:anything" ||
			c.RequestingWorkload != hostID || c.TransactionContext != details {
			t.Fatalf("claims %+v", c)
		}
		// The TTS's assertion wins over the caller's rctx member.
		if member(t, c.RequestContext, RctxSubjectSource) != `"operator"` || member(t, c.RequestContext, "task") != `"42"` ||
			member(t, c.RequestContext, RctxAuthn) != `"`+AuthnInProcess+`"` || !slices.Equal(chainOf(t, c), []string{hostID}) {
			t.Errorf("rctx %s", c.RequestContext)
		}
		if err := c.CheckCall("payments/transfer", json.RawMessage(`{"amount":3.0,"payee":"bob"}`)); err != nil {
			t.Errorf("CheckCall: %v", err)
		}
		if len(audited) != 1 || audited[0].TokenHash != txntoken.TokenHash(tok) || audited[0].GrantType != "" || audited[0].SubjectTokenType != "" {
			t.Errorf("audited %+v", audited)
		}

		_, c2, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Subject: "alice", Scope: []string{"notes:read"}, RequestingWorkload: hostID})
		if err != nil || c2.Txn == "" || c2.Txn == c.Txn || !c2.TransactionContext.IsZero() {
			t.Errorf("new transaction: %+v %v", c2, err)
		}
	})

	t.Run("subject token", func(t *testing.T) {
		e := newTestEnv(t)
		at := e.userToken(notesURI, "notes:read", "notes:write")
		_, c, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Scope: []string{"notes:read"}, RequestingWorkload: hostID, SubjectToken: at})
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "alice" || member(t, c.RequestContext, RctxSubjectSource) != `"token"` {
			t.Errorf("claims %+v rctx %s", c, c.RequestContext)
		}
		old, oc, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Subject: "alice", Scope: []string{"notes:read", "notes:write"},
			RequestingWorkload: hostID, SubjectToken: at, RequestDetails: details})
		if err != nil {
			t.Fatal(err)
		}
		_, nc, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Scope: []string{"notes:write"},
			RequestingWorkload: researchID.String(), SubjectToken: old})
		if err != nil {
			t.Fatalf("replacement: %v", err)
		}
		if nc.Txn != oc.Txn || nc.Subject != "alice" || nc.TransactionContext != details ||
			!slices.Equal(chainOf(t, nc), []string{hostID, researchID.String()}) {
			t.Errorf("replacement %+v rctx %s", nc, nc.RequestContext)
		}
		// In process, a replacement that names no scope keeps its token's.
		_, kc, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{RequestingWorkload: researchID.String(), SubjectToken: old})
		if err != nil || kc.Scope != "notes:read notes:write" || kc.Txn != oc.Txn {
			t.Errorf("replacement without a scope: %+v, %v", kc, err)
		}
	})

	t.Run("replacing an operator's token", func(t *testing.T) {
		e := newTestEnv(t)
		old, _, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Subject: "alice", Scope: []string{"notes:read"}, RequestingWorkload: hostID})
		if err != nil {
			t.Fatal(err)
		}
		// Over HTTP, by a workload the operator's task called.
		status, body, _ := e.post(PathToken, replaceAs(e, researchID, old, nil), nil)
		if status != http.StatusOK {
			t.Fatalf("replacement: %d %v", status, body)
		}
		nc, err := txntoken.Verify(e.ctx, body["access_token"].(string), e.txnOpts())
		if err != nil {
			t.Fatal(err)
		}
		if member(t, nc.RequestContext, RctxSubjectSource) != `"operator"` {
			t.Errorf("subject_source not kept: rctx %s", nc.RequestContext)
		}
		// The operator's scope is the cap from then on.
		status, body, _ = e.post(PathToken, replaceAs(e, researchID, old, url.Values{"scope": {"notes:read notes:write"}}), nil)
		if status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidScope {
			t.Errorf("widened over HTTP: %d %v", status, body)
		}
		_, _, err = e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Scope: []string{"notes:read", "admin"}, RequestingWorkload: hostID, SubjectToken: old})
		if oauth.AsError(err).Code != oauth.CodeInvalidScope {
			t.Errorf("widened in process: %v", err)
		}
	})

	refused := []struct {
		name string
		req  func(e *testEnv) TxnTokenRequest
		code string
	}{
		{"no scope", func(e *testEnv) TxnTokenRequest {
			return TxnTokenRequest{Subject: "alice", RequestingWorkload: hostID}
		}, oauth.CodeInvalidRequest},
		{"malformed scope token", func(e *testEnv) TxnTokenRequest {
			return TxnTokenRequest{Subject: "alice", Scope: []string{"notes read"}, RequestingWorkload: hostID}
		}, oauth.CodeInvalidScope},
		{"no subject", func(e *testEnv) TxnTokenRequest {
			return TxnTokenRequest{Scope: []string{"notes:read"}, RequestingWorkload: hostID}
		}, oauth.CodeInvalidRequest},
		{"no workload", func(e *testEnv) TxnTokenRequest {
			return TxnTokenRequest{Subject: "alice", Scope: []string{"notes:read"}}
		}, oauth.CodeInvalidRequest},
		{"workload of another trust domain", func(e *testEnv) TxnTokenRequest {
			return TxnTokenRequest{Subject: "alice", Scope: []string{"notes:read"}, RequestingWorkload: "spiffe://other.org/host"}
		}, oauth.CodeInvalidRequest},
		{"scope wider than the subject token's", func(e *testEnv) TxnTokenRequest {
			return TxnTokenRequest{Scope: []string{"notes:write"}, RequestingWorkload: hostID, SubjectToken: e.userToken(notesURI, "notes:read")}
		}, oauth.CodeInvalidScope},
		{"subject differs from the subject token's", func(e *testEnv) TxnTokenRequest {
			return TxnTokenRequest{Subject: "bob", Scope: []string{"notes:read"}, RequestingWorkload: hostID, SubjectToken: e.userToken(notesURI, "notes:read")}
		}, oauth.CodeInvalidRequest},
		{"revoked subject token", func(e *testEnv) TxnTokenRequest {
			at := e.userToken(notesURI, "notes:read")
			c := e.verify(at, notesURI)
			if err := e.srv.revokeAccessToken(e.ctx, c.ID, time.Unix(c.ExpiresAt, 0)); err != nil {
				e.t.Fatal(err)
			}
			return TxnTokenRequest{Scope: []string{"notes:read"}, RequestingWorkload: hostID, SubjectToken: at}
		}, oauth.CodeInvalidRequest},
		{"garbage subject token", func(e *testEnv) TxnTokenRequest {
			return TxnTokenRequest{Scope: []string{"notes:read"}, RequestingWorkload: hostID, SubjectToken: "a.b.c"}
		}, oauth.CodeInvalidRequest},
		{"replacement changing txn", func(e *testEnv) TxnTokenRequest {
			old, _ := e.txnToken(e.t, nil)
			return TxnTokenRequest{Txn: "another", Scope: []string{"notes:read"}, RequestingWorkload: hostID, SubjectToken: old}
		}, oauth.CodeInvalidRequest},
		{"replacement widening scope", func(e *testEnv) TxnTokenRequest {
			old, _ := e.txnToken(e.t, nil)
			return TxnTokenRequest{Scope: []string{"notes:read", "notes:write"}, RequestingWorkload: hostID, SubjectToken: old}
		}, oauth.CodeInvalidScope},
		{"replacement changing tctx", func(e *testEnv) TxnTokenRequest {
			old, _ := e.txnToken(e.t, nil)
			d, _ := txntoken.NewObject(map[string]any{"amount": 4})
			return TxnTokenRequest{Scope: []string{"notes:read"}, RequestingWorkload: hostID, SubjectToken: old, RequestDetails: d}
		}, oauth.CodeInvalidRequest},
		{"expired Txn-Token", func(e *testEnv) TxnTokenRequest {
			old, _ := e.txnToken(e.t, nil)
			e.clock.Advance(time.Minute)
			return TxnTokenRequest{Scope: []string{"notes:read"}, RequestingWorkload: hostID, SubjectToken: old}
		}, oauth.CodeInvalidRequest},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			tok, c, err := e.srv.IssueTxnToken(e.ctx, tc.req(e))
			if err == nil || tok != "" || c != nil {
				t.Fatalf("issued: %+v", c)
			}
			if got := oauth.AsError(err).Code; got != tc.code {
				t.Fatalf("code %s (%v), want %s", got, err, tc.code)
			}
		})
	}

	t.Run("no trust domain", func(t *testing.T) {
		s, err := New(context.Background(), Config{Issuer: "https://as.example", Store: NewMemoryStore(nil)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.IssueTxnToken(context.Background(), TxnTokenRequest{Subject: "alice", Scope: []string{"x"},
			RequestingWorkload: hostID}); err == nil {
			t.Fatal("issued without a trust domain")
		}
	})
}

// BenchmarkIssueTxnToken measures the Txn-Tokens the host mints in
// process: a new transaction it vouches for (a task begun by the
// operator), one on the caller's access token (a hosted MCP server's
// tools/call), and a replacement binding one call (each tool call of a
// task).
func BenchmarkIssueTxnToken(b *testing.B) {
	e := newTestEnv(b)
	details, _ := txntoken.CallContext("payments/transfer", json.RawMessage(`{"payee":"bob","amount":3}`), map[string]any{"amount": 3})
	run := func(b *testing.B, req TxnTokenRequest) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := e.srv.IssueTxnToken(e.ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("operator", func(b *testing.B) {
		run(b, TxnTokenRequest{Subject: "alice", Scope: []string{"payments:transfer"}, RequestingWorkload: hostID, RequestDetails: details})
	})
	b.Run("access-token", func(b *testing.B) {
		at := e.userToken(researchID.String(), "notes:read", "notes:write")
		run(b, TxnTokenRequest{SubjectToken: at, Scope: []string{"notes:read"}, RequestingWorkload: hostID, RequestDetails: details})
	})
	b.Run("replacement", func(b *testing.B) {
		task, _, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Subject: "alice", Scope: []string{"tasks:run"}, RequestingWorkload: hostID})
		if err != nil {
			b.Fatal(err)
		}
		run(b, TxnTokenRequest{SubjectToken: task, RequestingWorkload: researchID.String(), RequestDetails: details})
	})
}

// BenchmarkIssueTxnTokenHTTP measures a Txn-Token request over HTTP,
// subject access token included; minting the client's JWT-SVID is not
// timed.
func BenchmarkIssueTxnTokenHTTP(b *testing.B) {
	e := newTestEnv(b)
	subject := e.userToken(researchID.String(), "notes:read", "notes:write")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		f := txnRequest(e, url.Values{"subject_token": {subject}})
		b.StartTimer()
		if status, body, _ := e.post(PathToken, f, nil); status != http.StatusOK {
			b.Fatalf("%d %v", status, body)
		}
	}
}

// TestIssueTxnTokenRemembersSubjects: a subject token IssueTxnToken has
// verified is not verified again while it is valid, yet an access token
// revoked since is refused, and an expired one, Txn-Token or access token,
// is refused.
func TestIssueTxnTokenRemembersSubjects(t *testing.T) {
	e := newTestEnv(t)
	at := e.userToken(researchID.String(), "notes:read")
	task, _, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{Subject: "alice", Scope: []string{"notes:read"}, RequestingWorkload: hostID})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // verified, then remembered
		if _, c, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{SubjectToken: task, RequestingWorkload: researchID.String()}); err != nil || c.Scope != "notes:read" {
			t.Fatalf("replacement: %+v, %v", c, err)
		}
		if _, c, err := e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{SubjectToken: at, Scope: []string{"notes:read"}, RequestingWorkload: hostID}); err != nil || c.Subject != "alice" {
			t.Fatalf("on the access token: %+v, %v", c, err)
		}
	}
	if len(e.srv.txn.cache.m) != 2 {
		t.Fatalf("%d subject tokens remembered, want 2", len(e.srv.txn.cache.m))
	}
	if err := e.srv.RevokeSubject(e.ctx, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{SubjectToken: at, Scope: []string{"notes:read"}, RequestingWorkload: hostID})
	if oauth.AsError(err).Code != oauth.CodeInvalidRequest || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a remembered access token revoked since: %v", err)
	}
	e.clock.Advance(DefaultTxnTokenTTL)
	_, _, err = e.srv.IssueTxnToken(e.ctx, TxnTokenRequest{SubjectToken: task, RequestingWorkload: researchID.String()})
	if oauth.AsError(err).Code != oauth.CodeInvalidRequest || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("a remembered Txn-Token expired since: %v", err)
	}
}
