//go:build race

package sandbox

// raceEnabled: this test binary runs under the race detector. Its runtime
// maps shadow memory as the program allocates, so a program that runs out of
// memory may be stopped by the race runtime's own allocation failure rather
// than by Go's.
const raceEnabled = true
