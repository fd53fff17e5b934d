// Command agenthost runs AI agents as plugin processes and mediates every
// call they make through workload identity, OAuth and audit.
package main

import (
	"os"

	"github.com/agenthost/agenthost/cmd/agenthost/internal/cli"
)

func main() { os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr)) }
