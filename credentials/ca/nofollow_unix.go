//go:build unix

package ca

import "syscall"

// noFollow makes opening the journal fail on a symbolic link.
const noFollow = syscall.O_NOFOLLOW
