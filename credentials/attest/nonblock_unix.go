//go:build unix

package attest

import "syscall"

// openNonBlock makes opening a named pipe return at once instead of
// waiting for a writer; it has no effect on regular files.
const openNonBlock = syscall.O_NONBLOCK
