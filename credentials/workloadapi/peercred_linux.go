package workloadapi

import (
	"io/fs"
	"syscall"
)

// checkPlatform reports whether peer credentials can be read here.
func checkPlatform() error { return nil }

// fileOwner returns the uid that owns the file described by fi.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
