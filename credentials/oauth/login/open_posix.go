//go:build unix

package login

import "syscall"

// noFollow makes Load refuse a session file that is a symbolic link.
const noFollow = syscall.O_NOFOLLOW
