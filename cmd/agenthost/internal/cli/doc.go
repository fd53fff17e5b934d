// Package cli is the agenthost command line: one file per command, built on
// cobra (the only package of the project that imports it). Commands are thin:
// `up` hands the config to runtime/host, `validate` to runtime/config, and
// commands that talk to a running host find it through the --data-dir it
// holds.
package cli
