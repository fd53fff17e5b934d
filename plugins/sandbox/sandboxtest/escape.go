// Package sandboxtest is what a test plugin runs to try to escape its
// sandbox: each attempt an attacker's plugin would make (read the host's
// files and environment, reach its sockets and network listeners, signal or
// trace it, write where it reads, see its processes, gain privileges), with
// the outcome of each. Tests of the sandbox and of the host run it from
// inside a real plugin and require every attempt to fail.
package sandboxtest

import "fmt"

// Targets are what the plugin tries to reach; the test that starts it
// knows them (the host's pid, its data directory, its sockets).
type Targets struct {
	// Files to read (the CA journal, the database).
	Files []string `json:"files,omitempty"`
	// Dirs to list.
	Dirs []string `json:"dirs,omitempty"`
	// WriteDirs to create a file in; a file there is one the host sees.
	WriteDirs []string `json:"write_dirs,omitempty"`
	// WriteFiles to open for writing (the plugin's own binary).
	WriteFiles []string `json:"write_files,omitempty"`
	// SharedDirs are directories the host shares with the plugin (its
	// socket directory), as the plugin sees them: it may create sockets
	// there, never a symbolic link the host would follow.
	SharedDirs []string `json:"shared_dirs,omitempty"`
	// Descriptors are numbers of files the host process holds open
	// without close-on-exec (as a library may leave them); the plugin must
	// not be able to read through them.
	Descriptors []int `json:"descriptors,omitempty"`
	// HostPID is the host process: its environment, signals, ptrace,
	// whether it is visible at all.
	HostPID int `json:"host_pid,omitempty"`
	// Sockets are unix sockets of the host to connect to (the admin API,
	// another workload's socket).
	Sockets []string `json:"sockets,omitempty"`
	// HTTPSockets are unix sockets serving HTTP; a GET of HTTPPath on
	// them must not answer 2xx.
	HTTPSockets []string `json:"http_sockets,omitempty"`
	HTTPPath    string   `json:"http_path,omitempty"`
	// TCP are host:port addresses to connect to (the host's listener, a
	// service beyond it).
	TCP []string `json:"tcp,omitempty"`
}

// Result is one attempt.
type Result struct {
	Attempt string `json:"attempt"`
	Target  string `json:"target,omitempty"`
	// Escaped is true when the attempt succeeded: a hole.
	Escaped bool `json:"escaped"`
	// Error is what the plugin got back.
	Error string `json:"error,omitempty"`
}

func (r Result) String() string {
	verdict := "refused"
	if r.Escaped {
		verdict = "ESCAPED"
	}
	return fmt.Sprintf("%s %s: %s (%s)", r.Attempt, r.Target, verdict, r.Error)
}

// Escaped returns the attempts that succeeded.
func Escaped(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if r.Escaped {
			out = append(out, r)
		}
	}
	return out
}
