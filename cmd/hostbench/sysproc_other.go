//go:build !linux

package main

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; the servers
// are stopped explicitly (and the bare server also exits when its stdin
// closes).
func sysProcAttr() *syscall.SysProcAttr { return nil }
