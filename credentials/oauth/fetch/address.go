package fetch

import (
	"context"
	"net/netip"
	"syscall"
)

// specialPrefixes are the special-purpose ranges (RFC 6890 and the IANA
// special-purpose address registries) that a fetch must not reach unless
// private targets are allowed. Loopback, RFC 1918 / RFC 4193, link-local,
// multicast and unspecified addresses are caught by the netip predicates in
// [publicAddr].
var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, CGNAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (RFC 5737)
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (RFC 7526)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (RFC 5737)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (RFC 5737)
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and limited broadcast (RFC 1112, RFC 919)
	netip.MustParsePrefix("::/96"),           // IPv4-compatible, deprecated (RFC 4291)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64 (RFC 8215)
	netip.MustParsePrefix("100::/64"),        // discard-only (RFC 6666)
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, Teredo (RFC 2928, RFC 4380)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation (RFC 3849)
	netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
	netip.MustParsePrefix("fec0::/10"),       // site-local, deprecated (RFC 3879)
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 (RFC 6052)
	sixToFour   = netip.MustParsePrefix("2002::/16")    // 6to4 (RFC 3056)
)

// publicAddr reports whether a is a globally routable unicast address that
// a fetch may connect to. IPv4-mapped, NAT64 and 6to4 addresses are judged
// by the IPv4 address they carry.
func publicAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("").Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
		a.IsUnspecified() || a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast() {
		return false
	}
	for _, p := range specialPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64Prefix.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return true
}

// checkDial is the dialer's ControlContext: it runs after name resolution
// with the address the socket is about to connect to.
func checkDial(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &addrError{addr: address}
	}
	if !publicAddr(ap.Addr()) {
		return &addrError{addr: ap.Addr().String()}
	}
	return nil
}
