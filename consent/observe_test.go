package consent_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/consent/consenttest"
)

// TestRequestsOnDecided: each request found decided is reported once, with
// its outcome and how long it waited since it was asked; one still
// pending is not.
func TestRequestsOnDecided(t *testing.T) {
	e := newEnv(t)
	type report struct {
		outcome string
		waited  time.Duration
	}
	var got []report
	r, err := consent.NewRequests(consent.RequestsConfig{Server: e.as.Load(), ClientID: paymentsAgent.String(),
		Store: e.cfg.Store, Pages: e.pages.Load(), Now: e.clock.Now,
		OnDecided: func(_ context.Context, outcome string, waited time.Duration) {
			got = append(got, report{outcome, waited})
		}})
	if err != nil {
		t.Fatal(err)
	}
	browser := consenttest.NewBrowser("alice", alicePassword)

	approved, err := r.Ask(e.ctx, transferCall(t, `{"amount":1,"currency":"EUR","to":"bob"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Collect(e.ctx, approved); !errors.Is(err, consent.ErrPending) {
		t.Fatalf("collect before the decision: %v", err)
	}
	if _, err := browser.Approve(e.ctx, approved.URL); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Second)
	if _, err := r.Collect(e.ctx, approved); err != nil {
		t.Fatalf("collect after approval: %v", err)
	}

	denied, err := r.Ask(e.ctx, transferCall(t, `{"amount":2,"currency":"EUR","to":"bob"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := browser.Deny(e.ctx, denied.URL); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(20 * time.Second)
	if _, err := r.Collect(e.ctx, denied); !errors.Is(err, consent.ErrDenied) {
		t.Fatalf("collect of a denied request: %v", err)
	}

	expired, err := r.Ask(e.ctx, transferCall(t, `{"amount":3,"currency":"EUR","to":"bob"}`))
	if err != nil {
		t.Fatal(err)
	}
	late := expired.Expires.Sub(e.clock.Now()) + time.Second
	e.clock.Advance(late)
	if _, err := r.Collect(e.ctx, expired); !errors.Is(err, consent.ErrExpired) {
		t.Fatalf("collect of an expired request: %v", err)
	}

	want := []report{{consent.OutcomeApproved, 10 * time.Second}, {consent.OutcomeDenied, 20 * time.Second},
		{consent.OutcomeExpired, late}}
	if !slices.Equal(got, want) {
		t.Fatalf("reported %+v, want %+v", got, want)
	}
}
