//go:build !linux

package sandboxtest

// Try reports that no attempt can be made here: plugins are not contained
// on this system, so every escape would succeed.
func Try(Targets) []Result {
	return []Result{{Attempt: "contain a plugin", Escaped: true, Error: "no sandbox on this system"}}
}
