package authserver

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// maxLimitedAddrs bounds the addresses an addrLimiter tracks at once.
const maxLimitedAddrs = 10000

// addrLimiter is a token bucket per client address: each address may make
// burst requests at once, and one more every interval. IPv6 addresses are
// grouped by /64, the block one host usually holds. Buckets live in memory:
// each host sharing a store limits on its own.
type addrLimiter struct {
	burst    float64
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newAddrLimiter(burst int, interval time.Duration, now func() time.Time) *addrLimiter {
	return &addrLimiter{burst: float64(burst), interval: interval, now: now, buckets: make(map[netip.Prefix]*bucket)}
}

// allow takes a token from addr's bucket. When there is none it returns
// false and how long until there is.
func (l *addrLimiter) allow(addr netip.Addr) (bool, time.Duration) {
	key := limitKey(addr)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxLimitedAddrs && !l.sweep(now) {
			// Every tracked address has used its bucket recently: refuse
			// new ones rather than forget the limit of old ones.
			return false, l.interval
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.interval))
	}
	b.tokens--
	return true, 0
}

func (l *addrLimiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+float64(elapsed)/float64(l.interval))
		b.last = now
	}
}

// sweep drops the buckets that have refilled completely (they hold no
// state a new bucket would not) and reports whether it freed any.
func (l *addrLimiter) sweep(now time.Time) bool {
	freed := false
	for k, b := range l.buckets {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.buckets, k)
			freed = true
		}
	}
	return freed
}

// limitKey is the block of addresses that share a bucket: the address for
// IPv4, its /64 for IPv6.
func limitKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{} // an invalid address: all such share one bucket
	}
	return p
}

// clientAddr is the address a request comes from: the connection's peer,
// unless that peer is a trusted proxy, in which case it is the right-most
// X-Forwarded-For entry that is not a trusted proxy (entries to its left
// were written by the client and prove nothing). Without trusted proxies
// X-Forwarded-For is never read.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok || !isTrusted(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			// Not written by a proxy we trust: keep the last address one
			// of them vouched for.
			return peer
		}
		if !isTrusted(hop, trusted) {
			return hop
		}
		peer = hop
	}
	return peer
}

// parseHop reads an address, with or without a port.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
