//go:build !linux

package attest

import (
	"context"
	"fmt"
	"runtime"
)

// collect reports that process evidence is only read from the Linux proc
// filesystem.
func (c *Collector) collect(_ context.Context, req Request) (Evidence, error) {
	return Evidence{}, fmt.Errorf("%w: cannot read pid %d on %s (Linux only)", ErrUnsupported, req.PID, runtime.GOOS)
}
