package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// userGrant runs the code flow of the public CLI client for alice towards
// resource and returns the token response (access and refresh token).
func (e *codeEnv) userGrant(t *testing.T, res, scope string) map[string]any {
	t.Helper()
	verifier := newVerifier(t)
	q := e.authParams(verifier)
	q.Set("resource", res)
	q.Set("scope", scope)
	status, tok := e.redeem(e.code(newBrowser(t), q), verifier, nil)
	if status != http.StatusOK || tok["refresh_token"] == nil {
		t.Fatalf("code redemption: %d %v", status, tok)
	}
	return tok
}

// exchangeAs has agent exchange subject (an access token addressed to it)
// for a token to res, acting with its JWT-SVID.
func (e *testEnv) exchangeAs(t *testing.T, agent spiffeid.ID, subject, res string) string {
	t.Helper()
	status, body, _ := e.post(PathToken, url.Values{
		"grant_type":            {oauth.GrantTokenExchange},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {e.svid(agent)},
		"subject_token":         {subject},
		"subject_token_type":    {oauth.TokenTypeAccessToken},
		"actor_token":           {e.svid(agent)},
		"actor_token_type":      {oauth.TokenTypeJWT},
		"resource":              {res},
	}, nil)
	if status != http.StatusOK {
		t.Fatalf("exchange by %s: %d %v", agent, status, body)
	}
	return body["access_token"].(string)
}

// heldToken is an access token and the audience it is for.
type heldToken struct {
	name, token, aud string
}

// accepted reports, for each of the three checkers a token meets, whether
// it accepts tok: the server's own verification, introspection by a
// confidential client, and a resource server of this repository
// (credentials/oauth/resource) wired to the server's revocation lookups
// the way the host wires its MCP servers and APIs.
func (e *codeEnv) accepted(t *testing.T, tok heldToken) (verify, introspect, rs bool) {
	t.Helper()
	_, err := e.srv.VerifyAccessToken(e.ctx, tok.token, tok.aud)
	verify = err == nil

	status, out, _ := e.post(PathIntrospect, url.Values{
		"token": {tok.token}, "client_id": {webClient}, "client_secret": {webSecret},
	}, nil)
	if status != http.StatusOK {
		t.Fatalf("%s: introspection: %d %v", tok.name, status, out)
	}
	introspect = out["active"] == true

	v, err := resource.New(resource.Config{
		Resource: tok.aud, MetadataURL: e.issuer + "/.well-known/oauth-protected-resource", Issuer: e.issuer,
		Keys: e.srv.Keys(), Revoked: e.srv.Revoked, SubjectRevoked: e.srv.SubjectRevoked, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "https://rs.example/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+tok.token)
	_, err = v.Authenticate(r)
	rs = err == nil
	return verify, introspect, rs
}

// wantAccepted checks every checker agrees with want about each token.
func (e *codeEnv) wantAccepted(t *testing.T, want bool, when string, toks ...heldToken) {
	t.Helper()
	for _, tok := range toks {
		v, i, r := e.accepted(t, tok)
		if v != want || i != want || r != want {
			t.Errorf("%s: %s accepted by VerifyAccessToken %v, introspection %v, resource server %v; want %v",
				when, tok.name, v, i, r, want)
		}
	}
}

// TestCascadingRevocation: every access token descends from a grant (a
// refresh-token family) or from the subject token it was exchanged for,
// and revoking an ancestor revokes it, whoever checks.
func TestCascadingRevocation(t *testing.T) {
	research, payments := researchID.String(), paymentsID.String()
	tests := []struct {
		name string
		// run builds tokens, revokes something, and returns the tokens
		// that must now be refused and those that must still work.
		run func(t *testing.T, e *codeEnv) (refused, kept []heldToken)
	}{
		{"refresh token reuse revokes the family's access tokens and their exchanges", func(t *testing.T, e *codeEnv) ([]heldToken, []heldToken) {
			tok := e.userGrant(t, research, "notes:read")
			at0 := heldToken{"access token from the code", tok["access_token"].(string), research}
			rt1 := tok["refresh_token"].(string)
			ex := heldToken{"token exchanged from it", e.exchangeAs(t, researchID, at0.token, notesURI), notesURI}
			status, next := e.refresh(cliClient, rt1)
			if status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, next)
			}
			at1 := heldToken{"access token from the refresh", next["access_token"].(string), research}
			ex1 := heldToken{"token exchanged from the refreshed one", e.exchangeAs(t, researchID, at1.token, payments), payments}
			ex2 := heldToken{"token exchanged from that", e.exchangeAs(t, paymentsID, ex1.token, notesURI), notesURI}
			other := e.userGrant(t, research, "notes:read")
			unrelated := heldToken{"another grant's token", other["access_token"].(string), research}
			e.wantAccepted(t, true, "before the reuse", at0, ex, at1, ex1, ex2, unrelated)

			if status, body := e.refresh(cliClient, rt1); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
				t.Fatalf("reused refresh token: %d %v", status, body)
			}
			return []heldToken{at0, ex, at1, ex1, ex2}, []heldToken{unrelated}
		}},
		{"revoking a subject token revokes its exchanges, transitively", func(t *testing.T, e *codeEnv) ([]heldToken, []heldToken) {
			tok := e.userGrant(t, research, "notes:read")
			at0 := heldToken{"subject token", tok["access_token"].(string), research}
			ex1 := heldToken{"exchanged token", e.exchangeAs(t, researchID, at0.token, payments), payments}
			ex2 := heldToken{"token exchanged from the exchanged token", e.exchangeAs(t, paymentsID, ex1.token, notesURI), notesURI}
			status, next := e.refresh(cliClient, tok["refresh_token"].(string))
			if status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, next)
			}
			sibling := heldToken{"the grant's next access token", next["access_token"].(string), research}
			siblingEx := heldToken{"its exchange", e.exchangeAs(t, researchID, sibling.token, notesURI), notesURI}
			e.wantAccepted(t, true, "before the revocation", at0, ex1, ex2, sibling, siblingEx)

			// The client that holds the subject token revokes it (RFC 7009).
			status, body, _ := e.post(PathRevoke, url.Values{"token": {at0.token}, "client_id": {cliClient}}, nil)
			if status != http.StatusOK {
				t.Fatalf("revoke: %d %v", status, body)
			}
			return []heldToken{at0, ex1, ex2}, []heldToken{sibling, siblingEx}
		}},
		{"revoking an exchanged token revokes what was exchanged from it, not its subject", func(t *testing.T, e *codeEnv) ([]heldToken, []heldToken) {
			tok := e.userGrant(t, research, "notes:read")
			at0 := heldToken{"subject token", tok["access_token"].(string), research}
			ex1 := heldToken{"exchanged token", e.exchangeAs(t, researchID, at0.token, payments), payments}
			ex2 := heldToken{"token exchanged from it", e.exchangeAs(t, paymentsID, ex1.token, notesURI), notesURI}
			e.wantAccepted(t, true, "before the revocation", at0, ex1, ex2)
			// research holds ex1 (its client_id) and revokes it.
			status, body, _ := e.post(PathRevoke, url.Values{
				"token": {ex1.token}, "client_assertion_type": {oauth.AssertionJWTSPIFFE}, "client_assertion": {e.svid(researchID)},
			}, nil)
			if status != http.StatusOK {
				t.Fatalf("revoke: %d %v", status, body)
			}
			return []heldToken{ex1, ex2}, []heldToken{at0}
		}},
		{"code reuse revokes the first redemption's tokens and their exchanges", func(t *testing.T, e *codeEnv) ([]heldToken, []heldToken) {
			verifier := newVerifier(t)
			q := e.authParams(verifier)
			q.Set("resource", research)
			q.Set("scope", "notes:read")
			code := e.code(newBrowser(t), q)
			status, tok := e.redeem(code, verifier, nil)
			if status != http.StatusOK {
				t.Fatalf("redeem: %d %v", status, tok)
			}
			at0 := heldToken{"access token", tok["access_token"].(string), research}
			ex := heldToken{"exchanged token", e.exchangeAs(t, researchID, at0.token, notesURI), notesURI}
			e.wantAccepted(t, true, "before the reuse", at0, ex)
			if status, body := e.redeem(code, verifier, nil); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
				t.Fatalf("code reuse: %d %v", status, body)
			}
			return []heldToken{at0, ex}, nil
		}},
		// An exchanged token lives a full AccessTokenTTL from its exchange,
		// so it outlives the token it came from; the cascade must not end
		// with its ancestors' lifetimes.
		{"the cascade holds after the ancestors expired", func(t *testing.T, e *codeEnv) ([]heldToken, []heldToken) {
			ttl := e.srv.cfg.AccessTokenTTL
			tok := e.userGrant(t, research, "notes:read")
			at0 := tok["access_token"].(string)
			rt1 := tok["refresh_token"].(string)
			e.clock.Advance(ttl - time.Minute)
			ex1 := e.exchangeAs(t, researchID, at0, payments)
			e.clock.Advance(ttl - time.Minute)
			ex2 := heldToken{"token exchanged from a token exchanged from an expired one", e.exchangeAs(t, paymentsID, ex1, notesURI), notesURI}
			e.clock.Advance(2 * revocationGrace) // at0 and ex1 have expired, with their records
			other := e.userGrant(t, research, "notes:read")
			unrelated := heldToken{"another grant's token", other["access_token"].(string), research}
			e.wantAccepted(t, true, "before the reuse", ex2, unrelated)
			if status, next := e.refresh(cliClient, rt1); status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, next)
			}
			if status, body := e.refresh(cliClient, rt1); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
				t.Fatalf("reused refresh token: %d %v", status, body)
			}
			return []heldToken{ex2}, []heldToken{unrelated}
		}},
		{"revoking a refresh token revokes the grant's access tokens (RFC 7009 section 2.1)", func(t *testing.T, e *codeEnv) ([]heldToken, []heldToken) {
			tok := e.userGrant(t, research, "notes:read")
			at0 := heldToken{"access token", tok["access_token"].(string), research}
			ex := heldToken{"exchanged token", e.exchangeAs(t, researchID, at0.token, notesURI), notesURI}
			e.wantAccepted(t, true, "before the revocation", at0, ex)
			status, body, _ := e.post(PathRevoke, url.Values{
				"token": {tok["refresh_token"].(string)}, "token_type_hint": {"refresh_token"}, "client_id": {cliClient},
			}, nil)
			if status != http.StatusOK {
				t.Fatalf("revoke: %d %v", status, body)
			}
			return []heldToken{at0, ex}, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCodeEnv(t)
			refused, kept := tt.run(t, e)
			e.wantAccepted(t, false, "after", refused...)
			e.wantAccepted(t, true, "after", kept...)
		})
	}
}

// TestRevocationRacingExchange: exchanges of a subject token running while
// it is revoked either fail or give a token that the revocation covers;
// none escapes it.
func TestRevocationRacingExchange(t *testing.T) {
	e := newCodeEnv(t)
	research := researchID.String()
	tok := e.userGrant(t, research, "notes:read")
	subject := tok["access_token"].(string)
	const racers = 12
	type result struct {
		status int
		token  string
	}
	results := make(chan result, racers)
	forms := make([]url.Values, racers)
	for i := range forms {
		forms[i] = url.Values{
			"grant_type":            {oauth.GrantTokenExchange},
			"client_assertion_type": {oauth.AssertionJWTSPIFFE},
			"client_assertion":      {e.svid(researchID)},
			"subject_token":         {subject},
			"subject_token_type":    {oauth.TokenTypeAccessToken},
			"resource":              {notesURI},
		}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, body, _ := e.post(PathToken, forms[i], nil)
			tok, _ := body["access_token"].(string)
			results <- result{status, tok}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		if status, body, _ := e.post(PathRevoke, url.Values{"token": {subject}, "client_id": {cliClient}}, nil); status != http.StatusOK {
			t.Errorf("revoke: %d %v", status, body)
		}
	}()
	close(start)
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusOK {
			continue
		}
		if _, err := e.srv.VerifyAccessToken(e.ctx, r.token, notesURI); err == nil {
			t.Error("a token exchanged while its subject token was revoked is still accepted")
		}
	}
}

// failingStore fails every Get in the namespace fail names, as a store
// that is down or answers garbage would.
type failingStore struct {
	Store
	fail atomic.Pointer[string]
}

func (s *failingStore) Get(ctx context.Context, ns, key string) ([]byte, int64, error) {
	if f := s.fail.Load(); f != nil && *f == ns {
		return nil, 0, errors.New("store unavailable")
	}
	return s.Store.Get(ctx, ns, key)
}

// TestRevocationCheckFailsClosed: when any record the revocation check
// reads (the token's own revocation, its lineage, an ancestor's
// revocation, the family) cannot be read, the token is refused by every
// checker, never accepted as unrevoked. The revocation cache is off, so
// that every check reads every record; TestRevocationCacheKeepsNoErrors
// does the same with the cache.
func TestRevocationCheckFailsClosed(t *testing.T) {
	fs := &failingStore{}
	e := newCodeEnv(t, cacheOff, func(c *Config) { fs.Store = c.Store; c.Store = fs })
	research := researchID.String()
	tok := e.userGrant(t, research, "notes:read")
	at0 := tok["access_token"].(string)
	ex := heldToken{"exchanged token", e.exchangeAs(t, researchID, at0, notesURI), notesURI}
	jti := e.verify(ex.token, notesURI).ID
	e.wantAccepted(t, true, "with the store working", ex)
	for _, ns := range []string{nsRevoked, nsLineage, nsFamilies} {
		t.Run(ns, func(t *testing.T) {
			fs.fail.Store(&ns)
			defer fs.fail.Store(nil)
			if _, err := e.srv.VerifyAccessToken(e.ctx, ex.token, notesURI); err == nil {
				t.Error("VerifyAccessToken accepted the token")
			}
			if revoked, err := e.srv.Revoked(e.ctx, jti); err == nil {
				t.Errorf("Revoked = %v without an error", revoked)
			}
			status, out, _ := e.post(PathIntrospect, url.Values{
				"token": {ex.token}, "client_id": {webClient}, "client_secret": {webSecret},
			}, nil)
			if status == http.StatusOK && out["active"] == true {
				t.Errorf("introspection: %d %v", status, out)
			}
			v, err := resource.New(resource.Config{
				Resource: notesURI, MetadataURL: e.issuer + "/.well-known/oauth-protected-resource", Issuer: e.issuer,
				Keys: e.srv.Keys(), Revoked: e.srv.Revoked, Now: e.clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodPost, "https://rs.example/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+ex.token)
			if _, err := v.Authenticate(r); err == nil {
				t.Error("the resource server accepted the token")
			}
			// An exchange of a token that cannot be checked is a server
			// error, not a token.
			status, out, _ = e.post(PathToken, url.Values{
				"grant_type":            {oauth.GrantTokenExchange},
				"client_assertion_type": {oauth.AssertionJWTSPIFFE},
				"client_assertion":      {e.svid(researchID)},
				"subject_token":         {at0},
				"subject_token_type":    {oauth.TokenTypeAccessToken},
				"resource":              {notesURI},
			}, nil)
			if status != http.StatusInternalServerError || out["error"] != oauth.CodeServerError {
				t.Errorf("exchange: %d %v, want 500 server_error", status, out)
			}
		})
	}
}

// TestLongestLineage: the longest chain of exchanges the server issues
// (one act level each, up to MaxActorDepth) is within the lineage bound:
// its last token is accepted, and revoking the first token of the chain
// revokes it.
func TestLongestLineage(t *testing.T) {
	e := newCodeEnv(t)
	research, payments := researchID.String(), paymentsID.String()
	tok := e.userGrant(t, research, "notes:read")
	root := heldToken{"the grant's access token", tok["access_token"].(string), research}
	last := root
	agents := []spiffeid.ID{researchID, paymentsID}
	for i := range MaxActorDepth {
		next := []string{payments, research}[i%2]
		last = heldToken{fmt.Sprintf("exchange %d", i+1), e.exchangeAs(t, agents[i%2], last.token, next), next}
	}
	e.wantAccepted(t, true, "the chain's last token", last)
	status, body, _ := e.post(PathRevoke, url.Values{"token": {root.token}, "client_id": {cliClient}}, nil)
	if status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, body)
	}
	e.wantAccepted(t, false, "after revoking the first", root, last)
}
