package main

import "syscall"

// sysProcAttr makes a server this program starts get SIGTERM should this
// program die without stopping it, so no server outlives a run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
