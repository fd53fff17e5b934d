package consent_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/consent/consenttest"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// requests is the asking side on e's server and store, as the payments
// agent's CIBA client.
func (e *env) requests() *consent.Requests {
	e.t.Helper()
	r, err := consent.NewRequests(consent.RequestsConfig{Server: e.as.Load(), ClientID: paymentsAgent.String(),
		Store: e.cfg.Store, Pages: e.pages.Load(), Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func transferCall(t *testing.T, args string) consent.Call {
	t.Helper()
	d, err := txntoken.ArgsDigest(json.RawMessage(args))
	if err != nil {
		t.Fatal(err)
	}
	return consent.Call{Subject: "alice", Requester: "payer", Tool: "payments/transfer", Arguments: json.RawMessage(args), ArgsDigest: d}
}

// TestRequestsOnePerCall: asking again for the same call (a retry, or the
// call made again after a restart) gives the request already waiting; a
// call with other arguments, another user or another client asks anew.
// Once decided, the next ask of the call is a new request.
func TestRequestsOnePerCall(t *testing.T) {
	e := newEnv(t)
	r := e.requests()
	call := transferCall(t, transferArgs)
	first, err := r.Ask(e.ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	if first.Resumed || first.ID == "" || first.URL != e.pageURL(first.AuthReqID) || first.BindingMessage != "agenthost: payments/transfer 20 to bob" {
		t.Fatalf("first request: %+v", first)
	}
	// A restart: new server, new pages, same store.
	e.restart()
	r = e.requests()
	again, err := r.Ask(e.ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Resumed || again.AuthReqID != first.AuthReqID || again.URL != first.URL {
		t.Fatalf("the same call asked anew: %+v, first %+v", again, first)
	}
	for name, c := range map[string]consent.Call{
		"other arguments": transferCall(t, `{"amount":21,"currency":"EUR","to":"bob"}`),
		"other client":    func() consent.Call { c := call; c.ClientID = "ide"; return c }(),
		"other requester": func() consent.Call { c := call; c.Requester = "assistant"; return c }(),
	} {
		p, err := r.Ask(e.ctx, c)
		if err != nil || p.Resumed || p.AuthReqID == first.AuthReqID {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
	if _, err := r.Collect(e.ctx, again); !errors.Is(err, consent.ErrPending) {
		t.Fatalf("collect before the decision: %v", err)
	}
	if _, err := consenttest.NewBrowser("alice", alicePassword).Approve(e.ctx, again.URL); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Second) // past the polling interval
	g, err := r.Collect(e.ctx, again)
	if err != nil || g.Approver != "alice" || g.ID != first.ID {
		t.Fatalf("collect after approval: %+v, %v", g, err)
	}
	if err := consent.MatchesCall(g.AuthorizationDetails, call.Tool, call.ArgsDigest); err != nil {
		t.Fatalf("the grant does not name the call: %v", err)
	}
	if err := consent.MatchesCall(g.AuthorizationDetails, call.Tool, transferCall(t, `{"amount":2000,"currency":"EUR","to":"bob"}`).ArgsDigest); err == nil {
		t.Fatal("the grant matched other arguments")
	}
	// Decided: the call made again is a new request.
	next, err := r.Ask(e.ctx, call)
	if err != nil || next.Resumed || next.AuthReqID == first.AuthReqID {
		t.Fatalf("after the decision: %+v, %v", next, err)
	}
	// Claimed once only.
	if err := r.Claim(e.ctx, g.ID, map[string]any{"task": "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.requests().Claim(e.ctx, g.ID, nil); !errors.Is(err, consent.ErrUsed) {
		t.Fatalf("second claim: %v", err)
	}
}

// TestRequestsConcurrentAsk: of many first asks of one call at once, all
// wait for one request.
func TestRequestsConcurrentAsk(t *testing.T) {
	e := newEnv(t)
	r := e.requests()
	call := transferCall(t, transferArgs)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			p, err := r.Ask(e.ctx, call)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = p.AuthReqID
		})
	}
	wg.Wait()
	kept, err := r.Ask(e.ctx, call)
	if err != nil || !kept.Resumed {
		t.Fatalf("%+v, %v", kept, err)
	}
	for i, id := range ids {
		if id != kept.AuthReqID {
			t.Errorf("ask %d got its own request", i)
		}
	}
}

// TestRequestsExpiredAsksAnew: a request nobody decided in time is not
// waited for: the call made again asks anew, and collecting the old one
// says it expired.
func TestRequestsExpiredAsksAnew(t *testing.T) {
	e := newEnv(t)
	r := e.requests()
	call := transferCall(t, transferArgs)
	old, err := r.Ask(e.ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(old.Expires.Sub(e.clock.Now()) + time.Second)
	if _, err := r.Collect(e.ctx, old); !errors.Is(err, consent.ErrExpired) {
		t.Fatalf("collect of an expired request: %v", err)
	}
	p, err := r.Ask(e.ctx, call)
	if err != nil || p.Resumed || p.AuthReqID == old.AuthReqID {
		t.Fatalf("after expiry: %+v, %v", p, err)
	}
}

// TestRequestsDenied: a denial is ErrDenied, and the call asks anew.
func TestRequestsDenied(t *testing.T) {
	e := newEnv(t)
	r := e.requests()
	call := transferCall(t, transferArgs)
	p, err := r.Ask(e.ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := consenttest.NewBrowser("alice", alicePassword).Deny(e.ctx, p.URL); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Second)
	if _, err := r.Collect(e.ctx, p); !errors.Is(err, consent.ErrDenied) {
		t.Fatalf("collect of a denied request: %v", err)
	}
	if next, err := r.Ask(e.ctx, call); err != nil || next.Resumed {
		t.Fatalf("after the denial: %+v, %v", next, err)
	}
}
