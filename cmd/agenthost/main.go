package main

import (
	"os"

	"github.com/agenthost/agenthost/cmd/agenthost/internal/cli"
)

func main() {
	cli.InvokedAs(os.Args[0])
	os.Exit(cli.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
