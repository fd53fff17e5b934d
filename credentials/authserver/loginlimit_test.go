package authserver

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
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

// TestLoginKeysFollowTheClientAddress: the sign-in counters are kept per
// client address as registration limits see it: an IPv6 address counts as
// its /64 (moving within the block earns no fresh counters), and
// X-Forwarded-For counts only from a trusted proxy, which otherwise would
// put every client behind it on one counter.
func TestLoginKeysFollowTheClientAddress(t *testing.T) {
	s := &Server{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	keys := func(remote, xff string) (string, string) {
		r := httptest.NewRequest(http.MethodPost, "https://as.example/login", nil)
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return s.loginKeys(r, "alice")
	}
	tests := []struct {
		name              string
		remoteA, xffA     string
		remoteB, xffB     string
		sameCounterWanted bool
	}{
		{name: "one IPv6 /64", remoteA: "[2001:db8:1:2::1]:1", remoteB: "[2001:db8:1:2:ffff::9]:2", sameCounterWanted: true},
		{name: "two IPv6 /64s", remoteA: "[2001:db8:1:2::1]:1", remoteB: "[2001:db8:1:3::1]:1"},
		{name: "IPv4-mapped IPv6 is the IPv4 address", remoteA: "192.0.2.1:1", remoteB: "[::ffff:192.0.2.1]:2", sameCounterWanted: true},
		{name: "two clients behind a trusted proxy", remoteA: "10.1.1.1:1", xffA: "203.0.113.1", remoteB: "10.1.1.1:1", xffB: "203.0.113.2"},
		{name: "one client through two trusted proxies", remoteA: "10.1.1.1:1", xffA: "203.0.113.1", remoteB: "10.2.2.2:1", xffB: "203.0.113.1, 10.3.3.3", sameCounterWanted: true},
		{name: "X-Forwarded-For from an untrusted peer", remoteA: "192.0.2.1:1", xffA: "203.0.113.1", remoteB: "192.0.2.1:1", xffB: "203.0.113.2", sameCounterWanted: true},
		{name: "a client cannot pick its address by writing the left part", remoteA: "10.1.1.1:1", xffA: "203.0.113.1", remoteB: "10.1.1.1:1", xffB: "198.51.100.9, 203.0.113.1", sameCounterWanted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairA, addrA := keys(tt.remoteA, tt.xffA)
			pairB, addrB := keys(tt.remoteB, tt.xffB)
			if (pairA == pairB) != tt.sameCounterWanted || (addrA == addrB) != tt.sameCounterWanted {
				t.Errorf("same pair counter %v, same address counter %v; want %v", pairA == pairB, addrA == addrB, tt.sameCounterWanted)
			}
		})
	}
}
