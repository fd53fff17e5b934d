// Command agenthost runs AI agents as plugin processes and mediates every
// call they make through workload identity, OAuth and audit.
//
//	agenthost up --config agenthost.yaml   start the host
//	agenthost validate [FILE]              check a config; exit 2 on problems
//	agenthost status                       the host running on --data-dir
//	agenthost version
//
// The commands live in internal/cli.
package main
