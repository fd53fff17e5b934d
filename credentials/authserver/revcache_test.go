package authserver

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// countingStore counts the Gets of a Store. It can also run a hook once
// after a Get of a record (to revoke something while a check is between
// its reads) or before a Put of a namespace (to check while a revocation
// is being written), and fail the next conditional Put of a namespace
// with ErrConflict (as a concurrent writer would).
type countingStore struct {
	Store
	gets      atomic.Int64
	afterGet  atomic.Pointer[getHook]
	beforePut atomic.Pointer[getHook]
	conflict  atomic.Pointer[string]
}

type getHook struct {
	ns, key string
	run     func()
}

func (s *countingStore) Get(ctx context.Context, ns, key string) ([]byte, int64, error) {
	s.gets.Add(1)
	v, version, err := s.Store.Get(ctx, ns, key)
	if h := s.afterGet.Load(); h != nil && h.ns == ns && h.key == key && s.afterGet.CompareAndSwap(h, nil) {
		h.run()
	}
	return v, version, err
}

func (s *countingStore) Put(ctx context.Context, ns, key string, value []byte, w Write) (int64, error) {
	if h := s.beforePut.Load(); h != nil && h.ns == ns && s.beforePut.CompareAndSwap(h, nil) {
		h.run()
	}
	if p := s.conflict.Load(); p != nil && *p == ns && w.IfVersion > 0 && s.conflict.CompareAndSwap(p, nil) {
		return 0, ErrConflict
	}
	return s.Store.Put(ctx, ns, key, value, w)
}

// newCountingEnv is a codeEnv whose store is wrapped in a countingStore.
func newCountingEnv(t *testing.T, opts ...envOption) (*codeEnv, *countingStore) {
	t.Helper()
	cs := &countingStore{}
	wrap := func(c *Config) { cs.Store = c.Store; c.Store = cs }
	return newCodeEnv(t, append([]envOption{wrap}, opts...)...), cs
}

// cacheOff turns the revocation cache off.
func cacheOff(c *Config) { c.RevocationCache = -1 }

// lookups asks what a resource server asks about tok: Revoked for its
// jti, then SubjectRevoked for its subject.
func (e *testEnv) lookups(t *testing.T, c *oauth.AccessTokenClaims) bool {
	t.Helper()
	revoked, err := e.srv.Revoked(e.ctx, c.ID)
	if err != nil {
		t.Fatalf("Revoked: %v", err)
	}
	if revoked {
		return true
	}
	revoked, err = e.srv.SubjectRevoked(e.ctx, c.Subject, time.Unix(c.IssuedAt, 0))
	if err != nil {
		t.Fatalf("SubjectRevoked: %v", err)
	}
	return revoked
}

// TestRevocationCacheSeesEveryRevocation: a token checked before, whose
// answer the cache holds, is refused by the very next check after any
// revocation that covers it, whichever way it was revoked and whoever
// checks.
func TestRevocationCacheSeesEveryRevocation(t *testing.T) {
	research := researchID.String()
	tests := []struct {
		name string
		// run builds tokens and returns the revocation to make, the
		// tokens it must revoke and those it must not.
		run func(t *testing.T, e *codeEnv, cs *countingStore) (revoke func(), refused, kept []heldToken)
	}{
		{"revocation endpoint, access token", func(t *testing.T, e *codeEnv, _ *countingStore) (func(), []heldToken, []heldToken) {
			at0 := heldToken{"access token", e.userGrant(t, research, "notes:read")["access_token"].(string), research}
			other := heldToken{"another grant's token", e.userGrant(t, research, "notes:read")["access_token"].(string), research}
			return func() {
				if status, body, _ := e.post(PathRevoke, url.Values{"token": {at0.token}, "client_id": {cliClient}}, nil); status != http.StatusOK {
					t.Fatalf("revoke: %d %v", status, body)
				}
			}, []heldToken{at0}, []heldToken{other}
		}},
		{"revocation endpoint, refresh token", func(t *testing.T, e *codeEnv, _ *countingStore) (func(), []heldToken, []heldToken) {
			tok := e.userGrant(t, research, "notes:read")
			at0 := heldToken{"access token", tok["access_token"].(string), research}
			ex := heldToken{"exchanged token", e.exchangeAs(t, researchID, at0.token, notesURI), notesURI}
			other := heldToken{"another grant's token", e.userGrant(t, research, "notes:read")["access_token"].(string), research}
			return func() {
				status, body, _ := e.post(PathRevoke, url.Values{
					"token": {tok["refresh_token"].(string)}, "token_type_hint": {"refresh_token"}, "client_id": {cliClient},
				}, nil)
				if status != http.StatusOK {
					t.Fatalf("revoke: %d %v", status, body)
				}
			}, []heldToken{at0, ex}, []heldToken{other}
		}},
		{"refresh token reuse", func(t *testing.T, e *codeEnv, _ *countingStore) (func(), []heldToken, []heldToken) {
			tok := e.userGrant(t, research, "notes:read")
			at0 := heldToken{"access token", tok["access_token"].(string), research}
			rt1 := tok["refresh_token"].(string)
			status, next := e.refresh(cliClient, rt1)
			if status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, next)
			}
			at1 := heldToken{"refreshed access token", next["access_token"].(string), research}
			ex := heldToken{"token exchanged from it", e.exchangeAs(t, researchID, at1.token, notesURI), notesURI}
			return func() {
				if status, body := e.refresh(cliClient, rt1); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
					t.Fatalf("reused refresh token: %d %v", status, body)
				}
			}, []heldToken{at0, at1, ex}, nil
		}},
		{"refresh token used concurrently", func(t *testing.T, e *codeEnv, cs *countingStore) (func(), []heldToken, []heldToken) {
			tok := e.userGrant(t, research, "notes:read")
			at0 := heldToken{"access token", tok["access_token"].(string), research}
			return func() {
				ns := nsRefresh
				cs.conflict.Store(&ns)
				if status, body := e.refresh(cliClient, tok["refresh_token"].(string)); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
					t.Fatalf("refresh losing a race: %d %v", status, body)
				}
			}, []heldToken{at0}, nil
		}},
		{"authorization code reuse", func(t *testing.T, e *codeEnv, _ *countingStore) (func(), []heldToken, []heldToken) {
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
			return func() {
				if status, body := e.redeem(code, verifier, nil); status != http.StatusBadRequest || body["error"] != oauth.CodeInvalidGrant {
					t.Fatalf("code reuse: %d %v", status, body)
				}
			}, []heldToken{at0, ex}, nil
		}},
		{"an exchanged token's ancestor", func(t *testing.T, e *codeEnv, _ *countingStore) (func(), []heldToken, []heldToken) {
			tok := e.userGrant(t, research, "notes:read")
			at0 := heldToken{"subject token", tok["access_token"].(string), research}
			ex1 := heldToken{"exchanged token", e.exchangeAs(t, researchID, at0.token, paymentsID.String()), paymentsID.String()}
			ex2 := heldToken{"token exchanged from that", e.exchangeAs(t, paymentsID, ex1.token, notesURI), notesURI}
			status, next := e.refresh(cliClient, tok["refresh_token"].(string))
			if status != http.StatusOK {
				t.Fatalf("refresh: %d %v", status, next)
			}
			sibling := heldToken{"the grant's next access token", next["access_token"].(string), research}
			return func() {
				if status, body, _ := e.post(PathRevoke, url.Values{"token": {at0.token}, "client_id": {cliClient}}, nil); status != http.StatusOK {
					t.Fatalf("revoke: %d %v", status, body)
				}
			}, []heldToken{at0, ex1, ex2}, []heldToken{sibling}
		}},
		{"RevokeSubject", func(t *testing.T, e *codeEnv, _ *countingStore) (func(), []heldToken, []heldToken) {
			at0 := heldToken{"alice's token", e.userGrant(t, research, "notes:read")["access_token"].(string), research}
			ex := heldToken{"exchanged for alice", e.exchangeAs(t, researchID, at0.token, notesURI), notesURI}
			_, body := e.agentToken(researchID, url.Values{"resource": {notesURI}})
			agent := heldToken{"the agent's own token", body["access_token"].(string), notesURI}
			return func() {
				if err := e.srv.RevokeSubject(e.ctx, "alice", "test"); err != nil {
					t.Fatal(err)
				}
			}, []heldToken{at0, ex}, []heldToken{agent}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, cs := newCountingEnv(t)
			revoke, refused, kept := tt.run(t, e, cs)
			all := append(append([]heldToken(nil), refused...), kept...)
			claims := map[string]*oauth.AccessTokenClaims{}
			e.wantAccepted(t, true, "before", all...)
			for _, tok := range all {
				claims[tok.name] = e.verify(tok.token, tok.aud)
			}
			// Every answer is cached now: checking again reads nothing.
			before := cs.gets.Load()
			for _, tok := range all {
				e.verify(tok.token, tok.aud)
				if e.lookups(t, claims[tok.name]) {
					t.Fatalf("%s: revoked before the revocation", tok.name)
				}
			}
			if n := cs.gets.Load() - before; n != 0 {
				t.Fatalf("checks of cached tokens read the store %d times", n)
			}

			revoke()
			for _, tok := range refused {
				if _, err := e.srv.VerifyAccessToken(e.ctx, tok.token, tok.aud); err == nil {
					t.Errorf("%s: VerifyAccessToken accepts it after the revocation", tok.name)
				}
				if !e.lookups(t, claims[tok.name]) {
					t.Errorf("%s: Revoked and SubjectRevoked say not revoked after the revocation", tok.name)
				}
			}
			e.wantAccepted(t, false, "after", refused...)
			e.wantAccepted(t, true, "after", kept...)
		})
	}
}

// lineageChain issues, without HTTP, alice's access token under a new
// refresh-token family and two tokens exchanged from it in turn, and
// returns the family and the three tokens.
func (e *testEnv) lineageChain(t testing.TB) (family string, at0, ex1, ex2 issuedToken) {
	t.Helper()
	rt := &refreshRecord{ClientID: cliClient, Subject: "alice"}
	if err := e.srv.newFamily(e.ctx, rt); err != nil {
		t.Fatal(err)
	}
	issue := func(aud, parent string) issuedToken {
		g := accessGrant{Subject: "alice", ClientID: cliClient, Scopes: []string{"notes:read"}, Audience: []string{aud}}
		if parent == "" {
			g.Family = rt.Family
		}
		g.Parent = parent
		it, err := e.srv.issueAccessToken(e.ctx, nil, g)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	at0 = issue(researchID.String(), "")
	ex1 = issue(paymentsURI, at0.ID)
	ex2 = issue(notesURI, ex1.ID)
	return rt.Family, at0, ex1, ex2
}

// TestRevocationCacheReadsNothing: checking a token checked before reads
// nothing from the store, whatever its lineage; with the cache off every
// check reads it.
func TestRevocationCacheReadsNothing(t *testing.T) {
	for _, off := range []bool{false, true} {
		name := "cached"
		if off {
			name = "off"
		}
		t.Run(name, func(t *testing.T) {
			opts := []envOption{}
			if off {
				opts = append(opts, cacheOff)
			}
			e, cs := newCountingEnv(t, opts...)
			_, at0, _, ex2 := e.lineageChain(t)
			_, body := e.agentToken(researchID, url.Values{"resource": {notesURI}})
			agent := body["access_token"].(string)
			check := func() {
				for _, tok := range []struct{ token, aud string }{{at0.Token, researchID.String()}, {ex2.Token, notesURI}, {agent, notesURI}} {
					c := e.verify(tok.token, tok.aud)
					if e.lookups(t, c) {
						t.Fatal("revoked")
					}
				}
			}
			check()
			before := cs.gets.Load()
			check()
			n := cs.gets.Load() - before
			switch {
			case !off && n != 0:
				t.Errorf("the second check read the store %d times", n)
			case off && n == 0:
				t.Error("with the cache off the second check read nothing")
			}
		})
	}
}

// TestInvalidateRevocations: a revocation made by another server sharing
// the store reaches this one's cache through InvalidateRevocations; with
// the cache off it is seen at once.
func TestInvalidateRevocations(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(other *Server, family string, at0 issuedToken) error
	}{
		{"access token", func(o *Server, _ string, at0 issuedToken) error {
			return o.revokeAccessToken(context.Background(), at0.ID, at0.ExpiresAt)
		}},
		{"refresh-token family", func(o *Server, family string, _ issuedToken) error {
			return o.revokeFamily(context.Background(), family)
		}},
		{"subject", func(o *Server, _ string, _ issuedToken) error {
			return o.RevokeSubject(context.Background(), "alice", "test")
		}},
	}
	for _, off := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.name
			if off {
				name += ", cache off"
			}
			t.Run(name, func(t *testing.T) {
				opts := []envOption{}
				if off {
					opts = append(opts, cacheOff)
				}
				e, _ := newCountingEnv(t, opts...)
				family, at0, _, ex2 := e.lineageChain(t)
				c := e.verify(ex2.Token, notesURI)
				if e.lookups(t, c) {
					t.Fatal("revoked before the revocation")
				}
				// Another server on the same store revokes.
				other, err := New(e.ctx, e.srv.cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := tt.revoke(other, family, at0); err != nil {
					t.Fatal(err)
				}
				if !off {
					// Nothing told this server yet: its cache still answers.
					// This is why a shared store must deliver invalidations.
					if e.lookups(t, c) {
						t.Fatal("the cache did not answer (the test no longer shows what it is meant to)")
					}
					e.srv.InvalidateRevocations()
				}
				if !e.lookups(t, c) {
					t.Error("Revoked and SubjectRevoked say not revoked")
				}
				if _, err := e.srv.VerifyAccessToken(e.ctx, ex2.Token, notesURI); err == nil {
					t.Error("VerifyAccessToken accepts the token")
				}
			})
		}
	}
}

// TestRevocationDuringCheck: a revocation made while a check is between
// its store reads (after reading the record it changes) leaves nothing in
// the cache that hides it from the next check.
func TestRevocationDuringCheck(t *testing.T) {
	tests := []struct {
		name string
		// ns and key name the record the revocation changes, and it is
		// made right after the check read it.
		ns, key func(family string, at0 issuedToken) string
		revoke  func(e *testEnv, family string, at0 issuedToken) error
	}{
		{"family", nsOf(nsFamilies), func(family string, _ issuedToken) string { return family },
			func(e *testEnv, family string, _ issuedToken) error { return e.srv.revokeFamily(e.ctx, family) }},
		{"ancestor", nsOf(nsRevoked), func(_ string, at0 issuedToken) string { return at0.ID },
			func(e *testEnv, _ string, at0 issuedToken) error {
				return e.srv.revokeAccessToken(e.ctx, at0.ID, at0.ExpiresAt)
			}},
		{"subject", nsOf(nsSubjects), func(string, issuedToken) string { return "alice" },
			func(e *testEnv, _ string, _ issuedToken) error { return e.srv.RevokeSubject(e.ctx, "alice", "test") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, cs := newCountingEnv(t)
			family, at0, _, ex2 := e.lineageChain(t)
			var revokeErr error
			cs.afterGet.Store(&getHook{ns: tt.ns(family, at0), key: tt.key(family, at0),
				run: func() { revokeErr = tt.revoke(e.testEnv, family, at0) }})
			c, err := e.srv.VerifyAccessToken(e.ctx, ex2.Token, notesURI)
			if revokeErr != nil {
				t.Fatal(revokeErr)
			}
			if cs.afterGet.Load() != nil {
				t.Fatal("the revocation did not run during the check")
			}
			if err != nil {
				// The check read the record after the write: fine, but
				// not what this test is about.
				t.Fatalf("the check saw the revocation made during it: %v", err)
			}
			if !e.lookups(t, c) {
				t.Error("Revoked and SubjectRevoked say not revoked after the revocation")
			}
			if _, err := e.srv.VerifyAccessToken(e.ctx, ex2.Token, notesURI); err == nil {
				t.Error("VerifyAccessToken accepts the token after the revocation")
			}
		})
	}
}

// TestCheckDuringRevocation: a check made while a revocation is being
// written (before its store write) leaves nothing in the cache that hides
// the revocation from the next check.
func TestCheckDuringRevocation(t *testing.T) {
	tests := []struct {
		name   string
		ns     string
		revoke func(e *testEnv, family string, at0 issuedToken) error
	}{
		{"family", nsFamilies, func(e *testEnv, family string, _ issuedToken) error { return e.srv.revokeFamily(e.ctx, family) }},
		{"ancestor", nsRevoked, func(e *testEnv, _ string, at0 issuedToken) error {
			return e.srv.revokeAccessToken(e.ctx, at0.ID, at0.ExpiresAt)
		}},
		{"subject", nsSubjects, func(e *testEnv, _ string, _ issuedToken) error { return e.srv.RevokeSubject(e.ctx, "alice", "test") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, cs := newCountingEnv(t)
			family, at0, _, ex2 := e.lineageChain(t)
			var checkErr error
			cs.beforePut.Store(&getHook{ns: tt.ns, run: func() {
				_, checkErr = e.srv.VerifyAccessToken(e.ctx, ex2.Token, notesURI)
			}})
			if err := tt.revoke(e.testEnv, family, at0); err != nil {
				t.Fatal(err)
			}
			if cs.beforePut.Load() != nil {
				t.Fatal("no check ran during the revocation")
			}
			if checkErr != nil {
				t.Fatalf("the check before the write: %v", checkErr)
			}
			if _, err := e.srv.VerifyAccessToken(e.ctx, ex2.Token, notesURI); err == nil {
				t.Error("VerifyAccessToken accepts the token after the revocation")
			}
		})
	}
}

func nsOf(ns string) func(string, issuedToken) string {
	return func(string, issuedToken) string { return ns }
}

// TestRevocationCacheKeepsNoErrors: a check that cannot read a record it
// needs fails, and goes on failing until the store answers; a failure is
// never kept as an answer. A token checked for the first time reads every
// record; one checked before reads all but its lineage record, which
// never changes, after a revocation anywhere.
func TestRevocationCacheKeepsNoErrors(t *testing.T) {
	fs := &failingStore{}
	e := newCodeEnv(t, func(c *Config) { fs.Store = c.Store; c.Store = fs })
	_, _, _, checked := e.lineageChain(t)
	e.verify(checked.Token, notesURI)
	for _, tc := range []struct {
		ns    string
		fresh bool
	}{
		{nsRevoked, true}, {nsLineage, true}, {nsFamilies, true}, {nsSubjects, true},
		{nsRevoked, false}, {nsFamilies, false}, {nsSubjects, false},
	} {
		name := tc.ns + ", checked before"
		if tc.fresh {
			name = tc.ns + ", first check"
		}
		t.Run(name, func(t *testing.T) {
			tok := checked
			if tc.fresh {
				_, _, _, tok = e.lineageChain(t)
			}
			// As after a revocation anywhere (which also makes the
			// subject's answer be read again).
			e.srv.InvalidateRevocations()
			fs.fail.Store(&tc.ns)
			for range 2 {
				if _, err := e.srv.VerifyAccessToken(e.ctx, tok.Token, notesURI); err == nil {
					t.Fatal("VerifyAccessToken accepted the token")
				}
			}
			if _, err := e.srv.Revoked(e.ctx, tok.ID); err == nil && tc.ns != nsSubjects {
				t.Fatal("Revoked answered")
			}
			fs.fail.Store(nil)
			e.verify(tok.Token, notesURI)
		})
	}
}

// TestRevocationCacheBounded: the cache keeps at most RevocationCache
// answers, and revocations are seen whatever it dropped.
func TestRevocationCacheBounded(t *testing.T) {
	const size = 4
	e := newCodeEnv(t, func(c *Config) { c.RevocationCache = size })
	var toks []string
	for range 3 * size {
		_, body := e.agentToken(researchID, url.Values{"resource": {notesURI}})
		tok := body["access_token"].(string)
		e.verify(tok, notesURI)
		toks = append(toks, tok)
		if n := e.srv.revocations.tokens.len(); n > size {
			t.Fatalf("the cache holds %d token answers; the bound is %d", n, size)
		}
	}
	for _, tok := range []string{toks[0], toks[len(toks)-1]} {
		c := e.verify(tok, notesURI)
		if err := e.srv.revokeAccessToken(e.ctx, c.ID, time.Unix(c.ExpiresAt, 0)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.VerifyAccessToken(e.ctx, tok, notesURI); err == nil {
			t.Error("a revoked token is accepted")
		}
	}
}

// TestRevocationCacheRace: while many goroutines check a token, it is
// revoked; no check that starts after the revocation returned finds it
// unrevoked.
func TestRevocationCacheRace(t *testing.T) {
	e := newCodeEnv(t)
	revocations := []func(family string, at0 issuedToken) error{
		func(_ string, at0 issuedToken) error { return e.srv.revokeAccessToken(e.ctx, at0.ID, at0.ExpiresAt) },
		func(family string, _ issuedToken) error { return e.srv.revokeFamily(e.ctx, family) },
		func(string, issuedToken) error { return e.srv.RevokeSubject(e.ctx, "alice", "test") },
	}
	for round := range 3 * len(revocations) {
		// Past the last subject revocation, so alice's new tokens are
		// not revoked from the start.
		e.clock.Advance(2 * time.Second)
		family, at0, _, ex2 := e.lineageChain(t)
		c := e.verify(ex2.Token, notesURI)
		var (
			revoked, stop atomic.Bool
			after         atomic.Int64
			wg            sync.WaitGroup
		)
		for range 8 {
			wg.Go(func() {
				for !stop.Load() {
					done := revoked.Load()
					_, err := e.srv.VerifyAccessToken(e.ctx, ex2.Token, notesURI)
					r1, err1 := e.srv.Revoked(e.ctx, c.ID)
					r2, err2 := e.srv.SubjectRevoked(e.ctx, c.Subject, time.Unix(c.IssuedAt, 0))
					if err1 != nil || err2 != nil {
						t.Errorf("lookup failed: %v, %v", err1, err2)
						return
					}
					if done {
						if err == nil || !(r1 || r2) {
							t.Errorf("round %d: a check after the revocation: VerifyAccessToken error %v, Revoked %v, SubjectRevoked %v", round, err, r1, r2)
							return
						}
						after.Add(1)
					}
				}
			})
		}
		time.Sleep(time.Millisecond)
		if err := revocations[round%len(revocations)](family, at0); err != nil {
			t.Fatal(err)
		}
		revoked.Store(true)
		deadline := time.Now().Add(10 * time.Second)
		for after.Load() < 50 && time.Now().Before(deadline) && !t.Failed() {
			time.Sleep(100 * time.Microsecond)
		}
		stop.Store(true)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

// BenchmarkRevoked measures what a resource server asks on every request
// (Revoked, then SubjectRevoked) about a token two exchanges away from
// its grant, with the cache and without. store-gets/op is how many store
// reads each asks for (about 40µs each on SQLite).
func BenchmarkRevoked(b *testing.B) {
	for _, bc := range []struct {
		name     string
		cache    int
		parallel bool
	}{
		{"cached", 0, false},
		{"off", -1, false},
		{"cached-parallel", 0, true},
		{"off-parallel", -1, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cs := &countingStore{}
			e := newTestEnv(b, func(c *Config) { cs.Store = c.Store; c.Store = cs; c.RevocationCache = bc.cache })
			_, _, _, ex2 := e.lineageChain(b)
			iat := e.clock.Now()
			check := func() {
				// Error, not Fatal: RunParallel calls this off the
				// benchmark's goroutine.
				if r, err := e.srv.Revoked(e.ctx, ex2.ID); err != nil || r {
					b.Errorf("Revoked = %v, %v", r, err)
				}
				if r, err := e.srv.SubjectRevoked(e.ctx, "alice", iat); err != nil || r {
					b.Errorf("SubjectRevoked = %v, %v", r, err)
				}
			}
			check()
			before := cs.gets.Load()
			b.ResetTimer()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						check()
					}
				})
			} else {
				for b.Loop() {
					check()
				}
			}
			b.ReportMetric(float64(cs.gets.Load()-before)/float64(b.N), "store-gets/op")
		})
	}
}
