// Package agenthost is the root of the agenthost module: a Go host that runs
// AI agents as plugin processes and mediates every call they make through
// workload identity (SPIFFE/WIMSE), OAuth, human approval and a
// tamper-evident audit log.
//
// The root package holds no code. The tree is laid out by responsibility:
// credentials/ (identity and tokens), runtime/ (the host's composition root,
// config, storage), and cmd/agenthost (the CLI). layout_test.go enforces the
// import direction between them; readme_test.go runs the README's commands
// against a real host.
package agenthost
