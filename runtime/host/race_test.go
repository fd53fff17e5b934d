//go:build race

package host

// raceEnabled: this test binary runs under the race detector, whose runtime
// needs far more memory than a tight sandbox limit gives a plugin.
const raceEnabled = true
