package main

import (
	"os"

	"github.com/agenthost/agenthost/cmd/agenthost/internal/cli"
)

func main() { os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr)) }
