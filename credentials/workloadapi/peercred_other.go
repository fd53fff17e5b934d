//go:build !linux

package workloadapi

import (
	"fmt"
	"io/fs"
	"runtime"
)

// checkPlatform reports that peer credentials cannot be read here, so no
// socket can identify its caller.
func checkPlatform() error {
	return fmt.Errorf("%w: %s", ErrUnsupportedPlatform, runtime.GOOS)
}

// fileOwner reports that the owner is unknown on this platform.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
