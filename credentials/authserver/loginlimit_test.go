package authserver

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLoginThrottling: after five wrong passwords for alice from one
// address, even her right password is refused there for the lockout (with
// 429 and no password check), bob can still sign in, and once the lockout
// has passed alice can too.
func TestLoginThrottling(t *testing.T) {
	e := newCodeEnv(t)
	b := newBrowser(t)
	q := e.authParams(newVerifier(t))
	for i := range DefaultMaxLoginFailures {
		if r := e.signIn(b, q, "alice", "wrong password"); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, r.status)
		}
	}
	r := e.signIn(b, q, "alice", alicePassword)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed sign-ins. Try again in 15 minutes.") {
		t.Fatalf("right password while locked: %d %s", r.status, r.body)
	}
	if r := e.signIn(newBrowser(t), e.authParams(newVerifier(t)), "bob", bobPassword); r.status != http.StatusOK {
		t.Fatalf("bob while alice is locked: %d", r.status)
	}
	e.clock.Advance(DefaultLoginLockout + time.Second)
	if r := e.signIn(b, e.authParams(newVerifier(t)), "alice", alicePassword); r.status != http.StatusOK || !strings.Contains(r.body, "consent") && !strings.Contains(r.body, "Allow") {
		t.Fatalf("alice after the lockout: %d", r.status)
	}
}

// TestLoginThrottlingPerAddress: one address trying many user names is
// locked out as a whole.
func TestLoginThrottlingPerAddress(t *testing.T) {
	e := newCodeEnv(t)
	b := newBrowser(t)
	q := e.authParams(newVerifier(t))
	for i := range loginFailuresPerAddress {
		user := "user" + strings.Repeat("x", i%20) + string(rune('a'+i/20))
		if r := e.signIn(b, q, user, "guess"); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, r.status)
		}
	}
	if r := e.signIn(b, q, "bob", bobPassword); r.status != http.StatusTooManyRequests {
		t.Fatalf("bob from the locked address: %d", r.status)
	}
}
