package federation

import "time"

// SetAfter replaces the timer of the refresh loops of s, so a test decides
// when a wait ends. Call it before Run.
func SetAfter(s *Set, after func(time.Duration) (<-chan time.Time, func() bool)) {
	s.after = after
}
